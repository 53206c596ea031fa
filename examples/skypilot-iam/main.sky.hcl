# The IAM set-up from the AWS guide, as reviewed code:
# - the minimal policy a skyform or cluster-launcher user needs,
# - the `skypilot-v1` role that every cluster node assumes, with its instance profile,
# - a dedicated IAM user with an access key.

provider "aws" {}

variable "user_name" {
  description = "The dedicated IAM user that launches clusters."
  type        = string
  default     = "skypilot-launcher"
}

data "aws_caller_identity" "current" {}

locals {
  account = data.aws_caller_identity.current.account_id
  role    = "skypilot-v1"
}

resource "aws_iam_policy" "minimal" {
  name        = "minimal-skypilot-policy"
  description = "Least privilege to launch and manage clusters"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = "ec2:RunInstances", Resource = "arn:aws:ec2:*::image/ami-*" },
      {
        Effect = "Allow"
        Action = "ec2:RunInstances"
        Resource = [
          "arn:aws:ec2:*:${local.account}:instance/*",
          "arn:aws:ec2:*:${local.account}:network-interface/*",
          "arn:aws:ec2:*:${local.account}:subnet/*",
          "arn:aws:ec2:*:${local.account}:volume/*",
          "arn:aws:ec2:*:${local.account}:security-group/*",
        ]
      },
      {
        Effect   = "Allow"
        Action   = ["ec2:TerminateInstances", "ec2:DeleteTags", "ec2:StartInstances", "ec2:CreateTags", "ec2:StopInstances"]
        Resource = "arn:aws:ec2:*:${local.account}:instance/*"
      },
      { Effect = "Allow", Action = ["ec2:Describe*"], Resource = "*" },
      {
        Effect   = "Allow"
        Action   = ["ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress"]
        Resource = "arn:aws:ec2:*:${local.account}:*"
      },
      {
        Effect    = "Allow"
        Action    = "iam:CreateServiceLinkedRole"
        Resource  = "*"
        Condition = { StringEquals = { "iam:AWSServiceName" = "spot.amazonaws.com" } }
      },
      {
        Effect   = "Allow"
        Action   = ["iam:GetRole", "iam:PassRole"]
        Resource = ["arn:aws:iam::${local.account}:role/${local.role}"]
      },
      {
        Effect   = "Allow"
        Action   = ["iam:GetInstanceProfile"]
        Resource = "arn:aws:iam::${local.account}:instance-profile/${local.role}"
      },
    ]
  })
}

resource "aws_iam_role" "skypilot" {
  name        = local.role
  description = "Assumed by every cluster node"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = { managed-by = "skyform" }
}

resource "aws_iam_role_policy_attachment" "skypilot" {
  role       = aws_iam_role.skypilot.name
  policy_arn = aws_iam_policy.minimal.arn
}

resource "aws_iam_instance_profile" "skypilot" {
  name = local.role
  role = aws_iam_role.skypilot.name
}

resource "aws_iam_user" "launcher" {
  name = var.user_name
  tags = { purpose = "cluster launcher" }
}

resource "aws_iam_user_policy_attachment" "launcher" {
  user       = aws_iam_user.launcher.name
  policy_arn = aws_iam_policy.minimal.arn
}

resource "aws_iam_access_key" "launcher" {
  user = aws_iam_user.launcher.name
}

output "role_arn" {
  value = aws_iam_role.skypilot.arn
}

output "instance_profile_arn" {
  value = aws_iam_instance_profile.skypilot.arn
}

output "access_key_id" {
  value = aws_iam_access_key.launcher.id
}

output "secret_access_key" {
  value     = aws_iam_access_key.launcher.secret
  sensitive = true
}
