"""Command lines: each module has ``main(argv=None) -> int`` and runs nothing at import."""

from __future__ import annotations

import argparse
import sys


def parse_input_size(text: str) -> tuple[int, int]:
    """``--input-size``: ``S`` or ``HxW`` (e.g. ``224`` or ``112x336``) as (height, width).

    Raises:
        ValueError: not one or two positive whole numbers.
    """
    height, _, width = text.lower().partition("x")
    try:
        size = int(height), int(width or height)
    except ValueError:
        size = (0, 0)
    if min(size) < 1:
        raise ValueError(f"--input-size {text!r}: give S or HxW in pixels, e.g. 224 or 112x336.")
    return size


def run_subcommand(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse ``argv`` and run the chosen sub-command's ``run(args) -> int``; a ``ValueError``
    becomes ``error: ...`` on stderr and exit status 2."""
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
