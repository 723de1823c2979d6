"""`python -m heistwatch` runs the CLI."""

from heistwatch.cli.main import main

main()
