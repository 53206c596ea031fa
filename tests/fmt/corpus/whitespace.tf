locals {
	key	=	"tab"   
  m = {
  "é" = 1
  ab = 2 # c
  }
}
