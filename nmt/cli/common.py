"""What every console tool shares: a `UserError` ends in one `error: ...` line and exit status 2."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import IO, TypeVar

from nmt.utils.errors import UserError
from nmt.utils.fileio import atomic_path

T = TypeVar("T")


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


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every tool that decodes with a checkpoint: batch budget, device, precision
    and compilation, each defaulting to the run's own setting where it has one."""
    from nmt.utils.precision import PRECISIONS  # torch: imported by the tools that decode with it only

    parser.add_argument("--max-tokens", type=positive_int, default=4000, help="source tokens per batch")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto (bf16 where the hardware runs it natively, else fp32), or the matmuls' precision "
        "under autocast; default: the run's decode_precision",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="the decoder step and the log normalizer through torch.compile (a C++ compiler needed on "
        "the CPU); default: the run's decode_compile",
    )


def open_output(path: str | None, stack: ExitStack) -> IO[str]:
    """A text stream for `path`, written atomically: it replaces the file only when `stack`
    closes without an error (standard output when `path` is None)."""
    if path is None:
        return sys.stdout
    return stack.enter_context(open(stack.enter_context(atomic_path(path)), "w", encoding="utf-8"))


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to `size` consecutive items: a tool reads and processes a large input a chunk at
    a time, so it streams."""
    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def add_length_arguments(parser: argparse.ArgumentParser) -> None:
    """The bucketing options of BLEU by source length (`nmt.analysis.length.length_buckets`)."""
    parser.add_argument("--bucket-width", type=positive_int, default=10, help="source lengths per bucket")
    parser.add_argument(
        "--min-bucket",
        type=positive_int,
        default=50,
        help="merge neighbouring buckets until each has this many sentences",
    )
