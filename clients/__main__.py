"""`python -m clients chat ...` / `python -m clients batch ...`: the two client programs."""

from __future__ import annotations

import sys

USAGE = "usage: python -m clients {chat,batch} [options]   (each has --help)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("chat", "batch"):
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] == "chat":
        from clients.chat import main as program
    else:
        from clients.batch import main as program
    return program(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
