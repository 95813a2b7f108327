"""Command lines: each module has ``main(argv=None) -> int`` and runs nothing at import."""

from __future__ import annotations

import argparse
import sys


def run_subcommand(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse ``argv`` and run the chosen sub-command's ``run(args) -> int``; a ``ValueError``
    becomes ``error: ...`` on stderr and exit status 2."""
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
