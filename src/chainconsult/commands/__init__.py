"""Groups of `chainconsult` commands that live apart from cli.py, which registers them."""
