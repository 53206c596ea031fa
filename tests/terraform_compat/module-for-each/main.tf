terraform {
  required_version = ">= 1.3"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = "us-east-1"
}

variable "networks" {
  description = "One VPC per environment"
  type = map(object({
    cidr           = string
    public_subnets = list(string)
    enable_igw     = optional(bool, true)
  }))
  default = {
    staging = {
      cidr           = "10.1.0.0/16"
      public_subnets = ["10.1.1.0/24", "10.1.2.0/24"]
    }
    production = {
      cidr           = "10.2.0.0/16"
      public_subnets = ["10.2.1.0/24", "10.2.2.0/24", "10.2.3.0/24"]
    }
  }
}

module "vpc" {
  source   = "./modules/vpc"
  for_each = var.networks

  name           = "${each.key}-vpc"
  cidr           = each.value.cidr
  public_subnets = each.value.public_subnets
  enable_igw     = each.value.enable_igw

  tags = {
    Terraform   = "true"
    Environment = each.key
  }
}

output "vpc_ids" {
  value = { for name, vpc in module.vpc : name => vpc.vpc_id }
}

output "public_subnets" {
  value = module.vpc["production"].public_subnets
}
