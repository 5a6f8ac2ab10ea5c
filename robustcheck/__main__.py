"""`python -m robustcheck <command> ...`: a dispatcher over the modules in robustcheck/cli/.

Each command is one module `robustcheck/cli/<command>.py` (dashes become underscores) with a
`main(argv: list[str]) -> int`; adding a command adds a module, nothing here.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import robustcheck.cli


def commands() -> list[str]:
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(robustcheck.cli.__path__))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    known = commands()
    if not args or args[0] in ("-h", "--help"):
        print(f"usage: python -m robustcheck <command> [args]\ncommands: {', '.join(known)}")
        return 0 if args else 2
    if args[0] not in known:
        print(f"robustcheck: unknown command {args[0]!r} (commands: {', '.join(known)})", file=sys.stderr)
        return 2
    module = importlib.import_module(f"robustcheck.cli.{args[0].replace('-', '_')}")
    return int(module.main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
