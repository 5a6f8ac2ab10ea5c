"""`python -m robustcheck <command> [options]`: one module per command in robustcheck/cli/.

A command `foo-bar` lives in robustcheck/cli/foo_bar.py, which defines `HELP` (one line) and
`main(argv: list[str]) -> int`; commands are discovered, so adding one touches no other file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from robustcheck import cli


def commands() -> dict[str, str]:
    """Command name -> module name."""
    return {info.name.replace("_", "-"): f"robustcheck.cli.{info.name}"
            for info in pkgutil.iter_modules(cli.__path__) if not info.name.startswith("_")}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    known = commands()
    if not args or args[0] in ("-h", "--help") or args[0] not in known:
        lines = ["usage: python -m robustcheck <command> [options]", "", "commands:"]
        for name, module in sorted(known.items()):
            lines.append(f"  {name:18} {getattr(importlib.import_module(module), 'HELP', '')}")
        print("\n".join(lines), file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        if args and args[0] not in ("-h", "--help"):
            print(f"\nunknown command {args[0]!r}", file=sys.stderr)
            return 2
        return 0
    return int(importlib.import_module(known[args[0]]).main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
