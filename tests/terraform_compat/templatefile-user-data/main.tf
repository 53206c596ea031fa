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

variable "server_port" {
  description = "The port the server will use for HTTP requests"
  type        = number
  default     = 8080
}

variable "packages" {
  type    = list(string)
  default = ["nginx", "jq"]
}

resource "aws_instance" "web" {
  ami           = "ami-0fb653ca2d3203ac1"
  instance_type = "t2.micro"

  user_data = templatefile("${path.module}/templates/user-data.sh.tftpl", {
    server_port = var.server_port
    packages    = var.packages
    greeting    = "Hello, World"
  })

  tags = {
    Name = "terraform-example"
  }
}

resource "aws_instance" "worker" {
  ami           = "ami-0fb653ca2d3203ac1"
  instance_type = "t2.micro"

  user_data = <<-EOF
              #!/bin/bash
              echo "${var.server_port}" > /tmp/port
              nohup busybox httpd -f -p ${var.server_port} &
              EOF

  tags = {
    Name = "terraform-example-worker"
  }
}
