"""CLI command modules. Each defines `register(app: typer.Typer)` and `COMMANDS`, the top-level
verbs it adds to; cli.py finds them and imports only those a command line names."""
