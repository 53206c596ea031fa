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

variable "users" {
  description = "IAM users and the managed policies each one gets"
  type = map(object({
    policies = list(string)
    path     = optional(string, "/")
  }))
  default = {
    alice = { policies = ["ReadOnly", "Billing"] }
    bob   = { policies = ["ReadOnly"], path = "/contractors/" }
  }
}

locals {
  # The pattern from Terraform's flatten() docs: one element per (user, policy) pair.
  user_policies = flatten([
    for user, cfg in var.users : [
      for policy in cfg.policies : {
        user   = user
        policy = policy
      }
    ]
  ])
}

resource "aws_iam_policy" "managed" {
  for_each = toset(distinct(local.user_policies[*].policy))

  name = "acme-${lower(each.key)}"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = each.key == "Billing" ? ["aws-portal:ViewBilling"] : ["iam:Get*", "iam:List*"]
      Resource = "*"
    }]
  })
}

resource "aws_iam_user" "this" {
  for_each = var.users

  name = each.key
  path = each.value.path
}

resource "aws_iam_user_policy_attachment" "this" {
  for_each = {
    for up in local.user_policies : "${up.user}.${up.policy}" => up
  }

  user       = aws_iam_user.this[each.value.user].name
  policy_arn = aws_iam_policy.managed[each.value.policy].arn
}

resource "aws_iam_access_key" "this" {
  for_each = aws_iam_user.this

  user = each.value.name
}

output "attachments" {
  value = keys(aws_iam_user_policy_attachment.this)
}

output "access_key_ids" {
  value = { for name, key in aws_iam_access_key.this : name => key.id }
}

output "alice_key_id" {
  value = aws_iam_access_key.this["alice"].id
}

output "secrets" {
  value     = { for name, key in aws_iam_access_key.this : name => key.secret }
  sensitive = true
}
