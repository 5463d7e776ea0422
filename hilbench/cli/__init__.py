"""The `bench` command line (Typer + Rich). Holds no logic of its own."""
