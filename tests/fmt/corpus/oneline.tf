resource "aws_s3_bucket" "b" {}
resource "aws_s3_bucket" "c" { }
variable "v" { type = string }
locals { x = 1 }
terraform {
  required_providers { aws = { source = "hashicorp/aws" } }
}
module "m" { source = "./m" }
