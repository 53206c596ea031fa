resource "aws_instance" "web" {
  ami = "ami-123"
  user_data = <<-EOT
    #!/bin/bash
      echo "hello ${var.name}"
    echo ${var.a+1}
    EOT
  instance_type = "t3.micro"
  policy = <<EOF2
{
  "Version": "2012-10-17"
}
EOF2
  count = 1
}

output "text" {
  value = <<EOT
plain ${upper("x")} text
  %{ if var.on }on%{ endif }
EOT
}
