"""CLI command modules. Each defines `register(app: typer.Typer)`; cli.py finds them."""
