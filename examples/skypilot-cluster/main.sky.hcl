# The guide's full picture in one reviewed configuration: the skypilot-v1 role and instance
# profile every node carries, a security group in the VPC the launcher chooses by its Name tag,
# and a 2-node cluster in that VPC. The cluster belongs to the identity that launched it.

provider "aws" {}

variable "vpc_name" {
  description = "The Name tag of the VPC to launch into (the guide's aws.vpc_name)."
  type        = string
  default     = "skypilot-private"
}

variable "image_id" {
  description = "The AMI of every node (region-specific)."
  type        = string
}

variable "instance_type" {
  description = "The instance type of every node."
  type        = string
  default     = "m6i.large"
}

variable "num_nodes" {
  description = "How many nodes, the head included."
  type        = number
  default     = 2
}

data "aws_vpc" "chosen" {
  tags = { Name = var.vpc_name }
}

data "aws_subnets" "chosen" {
  vpc_id = data.aws_vpc.chosen.id
}

resource "aws_iam_role" "skypilot" {
  name        = "skypilot-v1"
  description = "Assumed by every cluster node"
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

resource "aws_security_group" "cluster" {
  name        = "skypilot-cluster"
  description = "SSH from inside the VPC, everything between nodes"
  vpc_id      = data.aws_vpc.chosen.id

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.chosen.cidr_block]
  }

  ingress {
    from_port = 0
    to_port   = 0
    protocol  = "-1"
    self      = true
  }
}

resource "aws_cluster" "train" {
  name                 = "train"
  num_nodes            = var.num_nodes
  instance_type        = var.instance_type
  image_id             = var.image_id
  subnet_id            = data.aws_subnets.chosen.ids[0]
  security_group_ids   = [aws_security_group.cluster.id]
  iam_instance_profile = aws_iam_instance_profile.skypilot.name
  tags                 = { project = "training" }
}

output "head_private_ip" {
  value = aws_cluster.train.private_ips[0]
}

output "instance_ids" {
  value = aws_cluster.train.instance_ids
}

output "owner" {
  value = aws_cluster.train.owner
}
