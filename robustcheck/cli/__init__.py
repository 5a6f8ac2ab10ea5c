"""Subcommands of `python -m robustcheck`: one module per command, each with `main(argv) -> int`."""
