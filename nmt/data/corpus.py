"""Reading parallel text files with checks that name the file and line on failure."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from nmt.errors import UserError


def read_lines(path: str | Path) -> list[str]:
    """Reads a UTF-8 text file (optionally gzipped) into lines without their newline.

    Raises:
        UserError: if the file is missing or a line is not valid UTF-8 (the message names
            the file and the 1-based line number).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise UserError(f"{path}: cannot read ({error})") from None
    return decode_lines(data, str(path))


def decode_lines(data: bytes, name: str) -> list[str]:
    """Splits UTF-8 bytes into lines; `name` (a path, or <stdin>) goes into the error message.

    Raises:
        UserError: naming the 1-based line that is not valid UTF-8.
    """
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    lines = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            lines.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as error:
            raise UserError(f"{name}:{number}: invalid UTF-8 at byte {error.start} of the line") from None
    return lines


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> tuple[list[str], list[str]]:
    """Reads two line-aligned files.

    Raises:
        UserError: if either file is unreadable or their line counts differ.
    """
    src_lines, tgt_lines = read_lines(src_path), read_lines(tgt_path)
    if len(src_lines) != len(tgt_lines):
        raise UserError(
            f"parallel files differ in length: {src_path} has {len(src_lines)} lines, "
            f"{tgt_path} has {len(tgt_lines)}"
        )
    return src_lines, tgt_lines


def drop_empty_pairs(src_lines: list[str], tgt_lines: list[str]) -> tuple[list[str], list[str], int]:
    """Removes training pairs where either side is empty or whitespace only.

    Returns:
        The kept source lines, the kept target lines, and how many pairs were dropped.
    """
    kept = [(s, t) for s, t in zip(src_lines, tgt_lines) if s.strip() and t.strip()]
    return [s for s, _ in kept], [t for _, t in kept], len(src_lines) - len(kept)
