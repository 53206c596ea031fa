# The guide's full picture in one reviewed configuration: the skypilot-v1 role and instance
# profile every node carries, with the guide's minimal policy attached (built with
# aws_iam_policy_document, so it names the role and profile it creates); a security group in
# the VPC the launcher chooses by its Name tag; and a 2-node GPU-training cluster in that VPC's
# private subnets, on the newest Deep Learning AMI, packed into a cluster placement group, with
# IMDSv2 only. GPU capacity is scarce, so the cluster names alternatives: two instance types
# and the private subnets of three zones, on spot first and on-demand when no zone has spot
# room for the whole cluster. Every node lands in one subnet. The cluster belongs to the
# identity that launched it.

provider "aws" {}

variable "vpc_name" {
  description = "The Name tag of the VPC to launch into (the guide's aws.vpc_name)."
  type        = string
  default     = "skypilot-private"
}

variable "image_id" {
  description = "The AMI of every node; the newest Deep Learning AMI on Ubuntu when null."
  type        = string
  default     = null
}

variable "instance_types" {
  description = "The GPU instance types to try, in order; every node gets the first that has room for all of them."
  type        = list(string)
  default     = ["p4d.24xlarge", "p3.16xlarge"]
}

variable "use_spot" {
  description = "Launch on spot first (a fraction of the on-demand price; AWS may reclaim nodes, which the next apply heals)."
  type        = bool
  default     = true
}

variable "num_nodes" {
  description = "How many nodes, the head included."
  type        = number
  default     = 2
}

variable "placement_strategy" {
  description = "cluster (one network segment, lowest latency: for training), spread or partition; null launches without a placement group."
  type        = string
  default     = "cluster"
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_vpc" "chosen" {
  tags = { Name = var.vpc_name }
}

# The VPC's private subnets (the skypilot-vpc example tags them tier = private).
data "aws_subnets" "private" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.chosen.id]
  }

  filter {
    name   = "tag:tier"
    values = ["private"]
  }
}

# AWS's Deep Learning AMIs (GPU drivers, CUDA) are published by this account.
data "aws_ami" "deep_learning" {
  most_recent = true
  owners      = ["898082745236"]

  filter {
    name   = "name"
    values = ["Deep Learning*Ubuntu*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  ec2 = "arn:${data.aws_partition.current.partition}:ec2:*:${data.aws_caller_identity.current.account_id}"
}

data "aws_iam_policy_document" "assume_from_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "skypilot" {
  name               = "skypilot-v1"
  description        = "Assumed by every cluster node"
  assume_role_policy = data.aws_iam_policy_document.assume_from_ec2.json
}

resource "aws_iam_instance_profile" "skypilot" {
  name = "skypilot-v1"
  role = aws_iam_role.skypilot.name
}

# The guide's minimal policy. It names the role and profile above, whose ARNs are known only
# once they exist: the document is read during the apply, after them.
data "aws_iam_policy_document" "minimal" {
  statement {
    sid       = "LaunchFromAnyImage"
    actions   = ["ec2:RunInstances"]
    resources = ["arn:${data.aws_partition.current.partition}:ec2:*::image/ami-*"]
  }

  statement {
    sid       = "LaunchInto"
    actions   = ["ec2:RunInstances"]
    resources = [for kind in ["instance", "network-interface", "subnet", "volume", "security-group"] : "${local.ec2}:${kind}/*"]
  }

  statement {
    sid       = "ManageInstances"
    actions   = ["ec2:TerminateInstances", "ec2:DeleteTags", "ec2:StartInstances", "ec2:CreateTags", "ec2:StopInstances"]
    resources = ["${local.ec2}:instance/*"]
  }

  statement {
    sid       = "Describe"
    actions   = ["ec2:Describe*"]
    resources = ["*"]
  }

  statement {
    sid       = "SecurityGroups"
    actions   = ["ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress"]
    resources = ["${local.ec2}:*"]
  }

  # The first spot request in an account creates AWSServiceRoleForEC2Spot.
  statement {
    sid       = "SpotServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["spot.amazonaws.com"]
    }
  }

  statement {
    sid       = "PassTheNodeRole"
    actions   = ["iam:GetRole", "iam:PassRole"]
    resources = [aws_iam_role.skypilot.arn]
  }

  statement {
    sid       = "ReadTheNodeProfile"
    actions   = ["iam:GetInstanceProfile"]
    resources = [aws_iam_instance_profile.skypilot.arn]
  }
}

resource "aws_iam_policy" "minimal" {
  name        = "minimal-skypilot-policy"
  description = "Least privilege to launch and manage clusters"
  policy      = data.aws_iam_policy_document.minimal.json
}

# Nodes launch further clusters (controllers do), so the role holds the policy too.
resource "aws_iam_role_policy_attachment" "skypilot" {
  role       = aws_iam_role.skypilot.name
  policy_arn = aws_iam_policy.minimal.arn
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

# A cluster placement group holds instances of one zone only (it cannot span zones), but it
# is not tied to a zone until its first instance launches. The cluster's failover never has
# nodes in two zones at once (an attempt that fails part-way is terminated, and gone, before
# the next zone), so the group is empty whenever the cluster moves. That an emptied group
# then takes the next zone is how AWS describes the rule, not something moto can check. The
# price: all nodes on one network segment is a higher capacity bar, so more places may be
# tried; set placement_strategy = null when finding any capacity matters more than the
# latency between nodes.
resource "aws_placement_group" "train" {
  count    = var.placement_strategy == null ? 0 : 1
  name     = "train"
  strategy = var.placement_strategy
}

resource "aws_cluster" "train" {
  name                 = "train"
  num_nodes            = var.num_nodes
  instance_types       = var.instance_types
  use_spot             = var.use_spot
  on_demand_fallback   = true
  image_id             = coalesce(var.image_id, data.aws_ami.deep_learning.id)
  subnet_ids           = data.aws_subnets.private.ids
  security_group_ids   = [aws_security_group.cluster.id]
  iam_instance_profile = aws_iam_instance_profile.skypilot.name
  placement_group      = one(aws_placement_group.train[*].name)
  tags                 = { project = "training" }

  # IMDSv2 only: a request forged through a node's web service cannot read the role's keys.
  metadata_options {
    http_tokens                 = "required"
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 2
  }
}

output "head_private_ip" {
  value = aws_cluster.train.private_ips[0]
}

output "instance_ids" {
  value = aws_cluster.train.instance_ids
}

# Where the cluster found room: the zone and market (spot, on-demand, or mixed once a
# reclaimed spot node came back on-demand). `skyform state show aws_cluster.train` shows the
# instance type chosen.
output "placed" {
  value = {
    zone   = aws_cluster.train.availability_zone
    market = aws_cluster.train.market
  }
}

output "image" {
  value = aws_cluster.train.image_id
}

output "owner" {
  value = aws_cluster.train.owner
}
