terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = "us-east-1"
}

data "aws_caller_identity" "current" {}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

variable "node_count" {
  type    = number
  default = 2

  validation {
    condition     = var.node_count >= 1 && var.node_count <= 8
    error_message = "node_count must be between 1 and 8."
  }
}

resource "aws_security_group" "cluster" {
  name        = "training-cluster"
  description = "Nodes of the training cluster talk to each other"
  vpc_id      = data.aws_vpc.default.id

  ingress {
    from_port = 0
    to_port   = 0
    protocol  = "-1"
    self      = true
  }
}

resource "aws_cluster" "training" {
  name               = "training"
  image_id           = "ami-0abcdef1234567890"
  instance_type      = "t3.large"
  num_nodes          = var.node_count
  subnet_id          = data.aws_subnets.default.ids[0]
  security_group_ids = [aws_security_group.cluster.id]

  tags = {
    Owner = data.aws_caller_identity.current.account_id
  }
}

output "head" {
  value = aws_cluster.training.head_instance_id
}

output "node_ips" {
  value = aws_cluster.training.private_ips
}
