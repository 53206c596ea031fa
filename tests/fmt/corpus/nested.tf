resource "aws_security_group" "sg" {
name = "sg"
ingress {
from_port = 22
to_port = 22
protocol = "tcp"
cidr_blocks = ["10.0.0.0/8","192.168.0.0/16"]
}
dynamic "egress" {
  for_each = var.rules
  content {
        from_port = egress.value.from
    to_port = egress.value.to
  }
}
lifecycle {
  create_before_destroy = true
  ignore_changes = [tags, description]
}
}
