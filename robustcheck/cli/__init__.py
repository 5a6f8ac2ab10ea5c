"""Subcommands of `python -m robustcheck`, one module each (see robustcheck/__main__.py)."""
