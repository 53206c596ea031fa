# A file comment
// Another style
/* A block comment
   over lines */

resource "aws_vpc" "main" { # trailing on a block
  cidr_block = "10.0.0.0/16" # the range
  enable_dns_support = true    # dns
  enable_dns_hostnames = true // hostnames

  # Indented comment
      # over-indented comment
  tags = {
    Name = "main" /* inline block comment */
    Env = "dev"
  } # after the map
  /* before */ instance_tenancy = "default"
}
  # trailing file comment
