# A private VPC for clusters, in the spirit of the AWS guide: the launcher picks it by its
# Name tag (aws.vpc_name in the guide), nodes get only internal IPs in three private subnets,
# one per zone so that a cluster can fail over between zones, that reach the internet through
# a NAT gateway, and one security group lets SSH in from inside the VPC and everything out.

provider "aws" {}

variable "vpc_name" {
  description = "The Name tag the cluster launcher chooses the VPC by."
  type        = string
  default     = "skypilot-private"
}

variable "cidr" {
  description = "The VPC's IPv4 range."
  type        = string
  default     = "10.20.0.0/16"
}

data "aws_availability_zones" "available" {}

locals {
  zones = data.aws_availability_zones.available.names
}

resource "aws_vpc" "private" {
  cidr_block           = var.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.vpc_name, managed-by = "skyform" }
}

# Three private subnets, one per zone, carved out of the VPC's range.
resource "aws_subnet" "a" {
  vpc_id            = aws_vpc.private.id
  cidr_block        = cidrsubnet(var.cidr, 4, 0)
  availability_zone = local.zones[0]
  tags              = { Name = "${var.vpc_name}-a", tier = "private" }
}

resource "aws_subnet" "b" {
  vpc_id            = aws_vpc.private.id
  cidr_block        = cidrsubnet(var.cidr, 4, 1)
  availability_zone = local.zones[1]
  tags              = { Name = "${var.vpc_name}-b", tier = "private" }
}

resource "aws_subnet" "c" {
  vpc_id            = aws_vpc.private.id
  cidr_block        = cidrsubnet(var.cidr, 4, 2)
  availability_zone = local.zones[2]
  tags              = { Name = "${var.vpc_name}-c", tier = "private" }
}

# A public subnet holds the NAT gateway; the internet gateway is its default route.
resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.private.id
  cidr_block        = cidrsubnet(var.cidr, 4, 15)
  availability_zone = local.zones[0]
  tags              = { Name = "${var.vpc_name}-public", tier = "public" }
}

resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.private.id
  tags   = { Name = var.vpc_name }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.private.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }

  tags = { Name = "${var.vpc_name}-public" }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

# Nodes keep private IPs only (map_public_ip_on_launch stays false) and reach package mirrors
# through the NAT gateway, whose fixed public address is an Elastic IP.
resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = { Name = "${var.vpc_name}-nat" }
}

resource "aws_nat_gateway" "out" {
  subnet_id     = aws_subnet.public.id
  allocation_id = aws_eip.nat.id
  tags          = { Name = var.vpc_name }

  timeouts {
    create = "10m"
    delete = "10m"
  }
}

# The private table's default route is its own resource, so the table has no route blocks.
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.private.id
  tags   = { Name = "${var.vpc_name}-private" }
}

resource "aws_route" "private_default" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.out.id
}

resource "aws_route_table_association" "a" {
  subnet_id      = aws_subnet.a.id
  route_table_id = aws_route_table.private.id
}

resource "aws_route_table_association" "b" {
  subnet_id      = aws_subnet.b.id
  route_table_id = aws_route_table.private.id
}

resource "aws_route_table_association" "c" {
  subnet_id      = aws_subnet.c.id
  route_table_id = aws_route_table.private.id
}

resource "aws_security_group" "nodes" {
  name        = "${var.vpc_name}-nodes"
  description = "Cluster nodes: SSH from inside the VPC, all traffic between nodes"
  vpc_id      = aws_vpc.private.id

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.cidr]
    description = "ssh"
  }

  ingress {
    from_port = 0
    to_port   = 0
    protocol  = "-1"
    self      = true
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

output "vpc_id" {
  value = aws_vpc.private.id
}

output "subnet_ids" {
  value = [aws_subnet.a.id, aws_subnet.b.id, aws_subnet.c.id]
}

output "nat_public_ip" {
  value = aws_eip.nat.public_ip
}

output "security_group_id" {
  value = aws_security_group.nodes.id
}
