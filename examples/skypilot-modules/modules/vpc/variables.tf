variable "name" {
  description = "The Name tag of the VPC, and the prefix of everything in it."
  type        = string
}

variable "cidr" {
  description = "The VPC's range."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.cidr))
    error_message = "cidr must be an IPv4 range such as 10.20.0.0/16."
  }
}

variable "subnets" {
  description = "A subnet range per zone letter (a, b, ...)."
  type        = map(string)
}
