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

variable "instance_type" {
  type    = string
  default = "t3.micro"

  validation {
    condition     = can(regex("^t3\\.", var.instance_type))
    error_message = "Only t3 instance types are allowed."
  }
}

resource "aws_vpc" "main" {
  cidr_block = "10.30.0.0/16"

  tags = {
    Name = "lifecycle-vpc"
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_subnet" "app" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.30.1.0/24"

  tags = {
    Name = "lifecycle-app"
  }
}

resource "aws_security_group" "app" {
  name   = "lifecycle-app"
  vpc_id = aws_vpc.main.id

  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [aws_vpc.main.cidr_block]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_instance" "app" {
  ami                    = "ami-0c55b159cbfafe1f0"
  instance_type          = var.instance_type
  subnet_id              = aws_subnet.app.id
  vpc_security_group_ids = [aws_security_group.app.id]

  tags = {
    Name = "lifecycle-app"
  }

  lifecycle {
    ignore_changes = [
      tags["LastDeployedBy"],
      user_data,
    ]

    replace_triggered_by = [
      aws_security_group.app.id
    ]

    precondition {
      condition     = startswith(var.instance_type, "t3.")
      error_message = "The instance type must be burstable."
    }

    postcondition {
      condition     = self.private_ip != ""
      error_message = "The instance must have a private IP."
    }
  }
}

check "vpc_cidr" {
  assert {
    condition     = aws_vpc.main.cidr_block == "10.30.0.0/16"
    error_message = "The VPC's CIDR block changed."
  }
}
