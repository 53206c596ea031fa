locals {
  sum = var.a+var.b*2
  neg = -1
  diff = var.a - -var.b
  cond = var.on ? "yes" : "no"
  not = !var.off
  cmp = var.a>=2 && var.b!=3 || var.c<1
  list = [ 1,2 , 3 ]
  obj = { a = 1, b = "two" }
  empty_obj = { }
  empty_list = []
  splat = aws_instance.web[*].id
  index = var.m["key"][0]
  call = merge( var.a , var.b )
  expand = concat(var.lists...)
  tmpl = "${var.a}-${var.b+1}"
  escaped = "$${not} %%{not}"
  for_list = [for s in var.list: upper(s) if s!=""]
  for_map = {for k,v in var.map: k=>v}
  for_lit = [for x in [1, 2]: x]
  nested = "${ { a = 1 }.a }"
  multi = [
    "a",
    "b",
  ]
  objects = [{
    a = 1
    }, {
    b = 2
  }]
  chained = flatten([
    for k, v in var.map : [
      for x in v : {
        key = k
        val = x
      }
    ]
  ])
  long = (
    var.a +
    var.b
  )
}
