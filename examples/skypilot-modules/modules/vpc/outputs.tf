output "vpc_id" {
  value = aws_vpc.this.id
}

output "subnet_ids" {
  description = "Subnet ids by zone letter."
  value       = { for zone, s in aws_subnet.this : zone => s.id }
}

output "security_group_id" {
  value = aws_security_group.nodes.id
}
