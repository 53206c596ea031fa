variable "region" {
description = "Where"
  type = string
    default     =   "us-east-1"
  sensitive=false
}

locals {
  a = 1
  long_name = 2
  map = { "quoted-key" = 3 }

  after_blank = 4
  x = 5
  # a comment line ends the group
  yy = 6
  zzz = 7
}

resource "aws_iam_role" "r" {
  name = "r"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Action = "sts:AssumeRole"
        Effect = "Allow"
        Sid = ""
        Principal = {
          Service = "ec2.amazonaws.com"
        }
      },
    ]
  })
  description = lookup(
    var.descriptions,
    "r",
    "none"
  )
  tags = {
    Name = "r"
  }
  path = "/"
  max_session_duration = 3600
}
