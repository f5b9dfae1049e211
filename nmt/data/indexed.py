"""Token ids of many sentences in flat arrays, memory-mapped from disk: a corpus, prepared.

The layout follows fairseq's memory-mapped indexed datasets. A prepared folder holds, for each
side (`src`, `tgt`):

    <side>.ids       every sentence's token ids back to back: uint16 when the vocabulary fits,
                     else int32
    <side>.offsets   int64; sentence i is ids[offsets[i]:offsets[i + 1]]
    <side>.lengths   int32 sentence lengths: what the length filter and batching read, without
                     touching the ids

and, when the corpus came with word alignments, a third such side, `links`: each sentence's
(target piece, source piece) links back to back (`nmt.data.alignments.piece_links`), its
"length" twice its number of links. `header.json` holds the format version, the counts and
dtypes, a SHA-256 per file, and where the data came from. `open_pairs` checks all of it before
mapping a file, so a truncated, altered or half-written folder is refused (`CorruptData`), never
read. A sentence is a view into the mapped array; nothing is copied into Python lists, so a
process holds only the pages it touches.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from nmt.utils.fileio import file_sha256

FORMAT_VERSION = 1
SIDES = ("src", "tgt")
LINKS = "links"
KINDS = ("ids", "offsets", "lengths")
HEADER = "header.json"


class CorruptData(Exception):
    """A prepared folder that must not be used: incomplete, truncated, altered, or of another
    format version. The message says which."""


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest dtype that holds every id of a vocabulary: uint16 up to 65536 pieces."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.int32)


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    """(S + 1,) int64 start of each sentence in the flat ids, and the end of the last one."""
    return np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths, dtype=np.int64)])


class IndexedTokens:
    """The token ids of many sentences: one flat array, cut by offsets.

    Args:
        ids: (N,) all sentences' ids back to back.
        offsets: (S + 1,) int64; sentence i is ids[offsets[i]:offsets[i + 1]].
        lengths: (S,) int32 sentence lengths.
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> None:
        self.ids, self.offsets, self.lengths = ids, offsets, lengths

    @classmethod
    def from_lists(cls, sequences: Sequence[Sequence[int]]) -> IndexedTokens:
        """In memory, from id lists (tests, small data)."""
        lengths = np.fromiter(map(len, sequences), np.int32, len(sequences))
        ids = np.fromiter(itertools.chain.from_iterable(sequences), np.int32, int(lengths.sum()))
        return cls(ids, offsets_of(lengths), lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> np.ndarray:
        """The ids of sentence `index` (a view, not a copy)."""
        return self.ids[self.offsets[index] : self.offsets[index + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[index] for index in range(len(self)))


@dataclass(frozen=True)
class IndexedPairs:
    """Sentence pairs: row i of `src` translates to row i of `tgt`.

    Attributes:
        src, tgt: the two sides, equally long.
        empty_pairs: pairs of the original files left out because a side was empty.
        links: row i's piece links, flat (target piece, source piece) pairs, when the corpus
            came with word alignments (else None).
    """

    src: IndexedTokens
    tgt: IndexedTokens
    empty_pairs: int = 0
    links: IndexedTokens | None = None

    @classmethod
    def from_lists(cls, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]]) -> IndexedPairs:
        """In memory, from id lists (tests, small data)."""
        return cls(IndexedTokens.from_lists(src_ids), IndexedTokens.from_lists(tgt_ids))

    def __len__(self) -> int:
        return len(self.src)


class IndexedWriter:
    """Writes a prepared folder chunk by chunk (the corpus is never whole in memory), hashing
    the ids on the way. `finish` writes the header last: a folder without one is incomplete.

    Args:
        folder: an existing, empty folder.
        dtypes: the ids' dtype of each side (see `id_dtype`): `src` and `tgt`, and `links` when
            there are alignments.
    """

    def __init__(self, folder: Path, dtypes: dict[str, np.dtype]) -> None:
        self.folder, self.dtypes = folder, dtypes
        self._files = {side: open(folder / f"{side}.ids", "wb") for side in dtypes}
        self._hashes = {side: hashlib.sha256() for side in dtypes}
        self._tokens = dict.fromkeys(dtypes, 0)
        self._lengths: dict[str, list[np.ndarray]] = {side: [] for side in dtypes}

    def __enter__(self) -> IndexedWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for file in self._files.values():
            file.close()

    def add(self, side: str, ids: np.ndarray, lengths: np.ndarray) -> None:
        """Appends sentences to one side: their ids back to back, and their lengths."""
        data = ids.astype(self.dtypes[side], copy=False).tobytes()
        self._files[side].write(data)
        self._hashes[side].update(data)
        self._tokens[side] += len(ids)
        self._lengths[side].append(lengths.astype(np.int32, copy=False))

    def finish(self, empty_pairs: int, made_from: dict[str, str]) -> None:
        """Writes the lengths, offsets and header (call once, after the last `add`)."""
        files: dict[str, dict[str, Any]] = {}
        for side in self.dtypes:
            self._files[side].close()
            files[f"{side}.ids"] = {
                "dtype": self.dtypes[side].name,
                "count": self._tokens[side],
                "sha256": self._hashes[side].hexdigest(),
            }
            lengths = np.concatenate([np.zeros(0, np.int32), *self._lengths[side]])
            for name, array in ((f"{side}.lengths", lengths), (f"{side}.offsets", offsets_of(lengths))):
                data = array.tobytes()
                (self.folder / name).write_bytes(data)
                files[name] = {
                    "dtype": array.dtype.name,
                    "count": len(array),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
        header = {
            "format": FORMAT_VERSION,
            "pairs": files["src.lengths"]["count"],
            "empty_pairs": empty_pairs,
            "made_from": made_from,
            "files": files,
        }
        (self.folder / HEADER).write_text(json.dumps(header, indent=2) + "\n")


def open_pairs(folder: Path) -> IndexedPairs:
    """Maps a prepared folder after checking its header and every file's size and checksum.

    Raises:
        CorruptData: saying what is wrong; nothing of the folder is used.
    """
    path = folder / HEADER
    if not path.is_file():
        raise CorruptData(f"no {HEADER} (an unfinished or damaged folder)")
    try:
        header = json.loads(path.read_text())
        if header["format"] != FORMAT_VERSION:
            raise CorruptData(f"format version {header['format']}, this version of nmt reads {FORMAT_VERSION}")
        pairs, files = header["pairs"], header["files"]
        sides = (*SIDES, LINKS) if f"{LINKS}.ids" in files else SIDES
        if set(files) != {f"{side}.{kind}" for side in sides for kind in KINDS} or any(
            (files[f"{side}.lengths"]["count"], files[f"{side}.offsets"]["count"]) != (pairs, pairs + 1)
            for side in sides
        ):
            raise CorruptData(f"{HEADER} does not describe {len(sides)} sides of {pairs} sentences")
        arrays = {name: _map(folder / name, entry) for name, entry in files.items()}
        tokens = {side: IndexedTokens(*(arrays[f"{side}.{kind}"] for kind in KINDS)) for side in sides}
        return IndexedPairs(tokens["src"], tokens["tgt"], int(header["empty_pairs"]), tokens.get(LINKS))
    except (KeyError, TypeError, ValueError) as error:  # a JSONDecodeError is a ValueError
        raise CorruptData(f"{HEADER} is malformed ({type(error).__name__}: {error})") from None


def _map(path: Path, entry: dict[str, Any]) -> np.ndarray:
    dtype, count = np.dtype(entry["dtype"]), entry["count"]
    if not path.is_file():
        raise CorruptData(f"{path.name} is missing")
    size, expected = path.stat().st_size, count * dtype.itemsize
    if size != expected:
        raise CorruptData(f"{path.name} has {size} bytes, its header says {expected} (truncated?)")
    if file_sha256(path) != entry["sha256"]:
        raise CorruptData(f"{path.name} does not match its checksum (altered or damaged)")
    if count == 0:  # an empty file cannot be mapped
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,)).view(np.ndarray)
