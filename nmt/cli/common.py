"""What every console tool shares: a `UserError` ends in one `error: ...` line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from nmt.utils.errors import UserError


def run_tool(
    main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser, argv: list[str] | None
) -> None:
    """Parses `argv` and runs `main`; a `UserError` ends in one `error: ...` line and exit status 2."""
    args = parser.parse_args(argv)
    try:
        main(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value
