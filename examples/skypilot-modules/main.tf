# Two clusters' networks from one local module, and a training cluster in one of them: the VPC
# module is called once per environment with for_each, and makes one subnet per zone with a
# for_each of its own. Written as a Terraform user writes it, in *.tf files.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  default_tags {
    tags = {
      managed-by = "skyform"
      project    = "skypilot"
    }
  }
}

variable "networks" {
  description = "One VPC per environment: its range, and a subnet range per zone."
  type = map(object({
    cidr    = string
    subnets = map(string)
  }))
  default = {
    train = {
      cidr    = "10.20.0.0/16"
      subnets = { a = "10.20.0.0/20", b = "10.20.16.0/20" }
    }
    serve = {
      cidr    = "10.30.0.0/16"
      subnets = { a = "10.30.0.0/20" }
    }
  }
}

variable "image_id" {
  description = "The AMI of every node (region-specific)."
  type        = string
}

variable "num_nodes" {
  type    = number
  default = 2
}

module "vpc" {
  source   = "./modules/vpc"
  for_each = var.networks

  name    = "skypilot-${each.key}"
  cidr    = each.value.cidr
  subnets = each.value.subnets
}

resource "aws_iam_role" "skypilot" {
  name = "skypilot-v1"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_instance_profile" "skypilot" {
  name = "skypilot-v1"
  role = aws_iam_role.skypilot.name
}

resource "aws_cluster" "train" {
  name                 = "train"
  num_nodes            = var.num_nodes
  instance_type        = "m6i.large"
  image_id             = var.image_id
  subnet_id            = module.vpc["train"].subnet_ids["a"]
  security_group_ids   = [module.vpc["train"].security_group_id]
  iam_instance_profile = aws_iam_instance_profile.skypilot.name
}

output "vpc_ids" {
  value = { for name, net in module.vpc : name => net.vpc_id }
}

output "head_private_ip" {
  value = aws_cluster.train.private_ips[0]
}
