project_name        = "tutorial-app"
environment         = "test"
public_subnet_count = 3
