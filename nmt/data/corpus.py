"""Reading parallel text files with checks that name the file and line on failure.

Files are streamed line by line (plain or gzipped), so a corpus of millions of lines is checked
and encoded without ever being held in memory; `read_lines` / `read_parallel` collect the lines
of small files (validation and test sets).
"""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from nmt.utils.errors import UserError


def decode_stream(stream: Iterable[bytes], name: str) -> Iterator[str]:
    """Decodes UTF-8 lines (`\\n` or `\\r\\n` endings, removed); `name` (a path, or <stdin>) goes
    into the error message.

    Raises:
        UserError: naming the 1-based line that is not valid UTF-8.
    """
    for number, raw in enumerate(stream, start=1):
        try:
            yield raw.rstrip(b"\n").decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise UserError(f"{name}:{number}: invalid UTF-8 at byte {error.start} of the line") from None


def iter_lines(path: str | Path) -> Iterator[str]:
    """Streams the lines of a UTF-8 text file (gzipped when its name ends in `.gz`).

    Raises:
        UserError: if the file is missing or unreadable (e.g. a truncated gzip), or a line is not
            valid UTF-8 (the message names the file and the 1-based line number).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as stream:
            yield from decode_stream(stream, str(path))
    except (OSError, EOFError, zlib.error) as error:
        raise UserError(f"{path}: cannot read ({error})") from None


def read_lines(path: str | Path) -> list[str]:
    """All lines of a (small) text file; see `iter_lines`."""
    return list(iter_lines(path))


def iter_parallel(*paths: str | Path) -> Iterator[tuple[str, ...]]:
    """Streams the line tuples of line-aligned files (a source and a target file, and maybe a
    third that belongs to them, such as their word alignments).

    Raises:
        UserError: if a file is unreadable or the line counts differ (counted to the end of the
            longer file, so the message gives both counts).
    """
    streams = [iter_lines(path) for path in paths]
    count = 0
    for lines in itertools.zip_longest(*streams):
        if None in lines:
            counts = [count + (line is not None) + sum(1 for _ in stream) for line, stream in zip(lines, streams)]
            other = next(index for index, n in enumerate(counts) if n != counts[0])
            raise UserError(
                f"parallel files differ in length: {paths[0]} has {counts[0]} lines, {paths[other]} has {counts[other]}"
            )
        count += 1
        yield lines


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> tuple[list[str], list[str]]:
    """All line pairs of two (small) line-aligned files, as two lists; see `iter_parallel`."""
    pairs = list(iter_parallel(src_path, tgt_path))
    return [src for src, _ in pairs], [tgt for _, tgt in pairs]


def drop_empty_pairs(src_lines: list[str], tgt_lines: list[str]) -> tuple[list[str], list[str], int]:
    """Removes pairs where either side is empty or whitespace only.

    Returns:
        The kept source lines, the kept target lines, and how many pairs were dropped.
    """
    kept = [(s, t) for s, t in zip(src_lines, tgt_lines) if is_complete(s, t)]
    return [s for s, _ in kept], [t for _, t in kept], len(src_lines) - len(kept)


def is_complete(src_line: str, tgt_line: str) -> bool:
    """Both sides hold something besides whitespace (a pair worth training or validating on)."""
    return bool(src_line.strip() and tgt_line.strip())
