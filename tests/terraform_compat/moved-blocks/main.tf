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

# This configuration was refactored from before/main.tf: the single user became a for_each
# over a set, and the deploy role moved into a module. The moved blocks record the old
# addresses, so nothing is destroyed.

resource "aws_iam_user" "ci" {
  for_each = toset(["ci-deployer", "ci-reader"])

  name = each.key
  path = "/ci/"
}

moved {
  from = aws_iam_user.deployer
  to   = aws_iam_user.ci["ci-deployer"]
}

module "deploy" {
  source = "./modules/team"

  role_name = "ci-deploy-role"
}

moved {
  from = aws_iam_role.deploy
  to   = module.deploy.aws_iam_role.this
}
