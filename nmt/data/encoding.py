"""Encoding a corpus once per (corpus, tokenizers), in worker processes, cached on disk.

`encode_corpus` streams the two files, has worker processes encode chunks of pairs with
sentencepiece, and writes the ids into a prepared folder (`nmt.data.indexed`) under
`<cache_dir>/<key>/`. The key hashes both files' bytes, both tokenizer models and the format
version, so a change of any encodes anew; every later run memory-maps the folder in seconds. A
folder that fails its checks is logged and rebuilt, never used. The parallel-file checks happen
on the way: unequal line counts and invalid UTF-8 stop with an error naming the file (and line);
pairs with an empty side are left out and counted.

Word alignments of the pairs (a Pharaoh file, line by line beside them) travel the same way: the
workers map each pair's word links onto its pieces (`nmt.data.alignments.piece_links`) and the
folder gets a third side, `links`; the key then hashes the alignment file too.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.pool import Pool
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from nmt.data.alignments import parse_pharaoh, piece_links, word_of_each_piece
from nmt.data.corpus import is_complete, iter_parallel
from nmt.data.indexed import (
    FORMAT_VERSION,
    LINKS,
    SIDES,
    CorruptData,
    IndexedPairs,
    IndexedWriter,
    id_dtype,
    open_pairs,
)
from nmt.data.sources import SplitFiles
from nmt.data.tokenizer import Tokenizer
from nmt.utils.errors import UserError
from nmt.utils.fileio import atomic_directory, discard_directory, file_fingerprint

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

CHUNK_PAIRS = 10_000  # pairs a worker encodes at a time: large enough to amortize the hand-over

# One encoded chunk: (flat ids, lengths) per side (`links` last, when aligned), the pairs left out
# as empty, and the aligned pairs whose pieces did not match their words (left without links).
EncodedChunk = tuple[list[tuple[np.ndarray, np.ndarray]], int, int]


def default_workers() -> int:
    """min(4, CPU count): encoding scales with processes, but 4 keep a training machine usable."""
    return min(4, os.cpu_count() or 1)


def encode_corpus(
    files: SplitFiles,
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    cache_dir: Path,
    workers: int | None = None,
    alignments: Path | None = None,
) -> IndexedPairs:
    """The pairs of `files` with both sides non-empty, encoded (once) and memory-mapped.

    Args:
        files: the two line-aligned files (plain or gzipped).
        src_tokenizer: the model that encodes the source side.
        tgt_tokenizer: the model that encodes the target side.
        cache_dir: where prepared folders live, one per key.
        workers: encoding processes, at least 1 (None: `default_workers()`).
        alignments: a Pharaoh file of the pairs' word links, one line per pair (None: none).

    Raises:
        UserError: for unequal line counts, invalid UTF-8 or a bad alignment link, naming the
            file (and line).
    """
    workers = default_workers() if workers is None else workers
    folder = cache_dir / _cache_key(files, src_tokenizer, tgt_tokenizer, alignments)
    if folder.exists():
        try:
            pairs = open_pairs(folder)
        except CorruptData as error:
            log.warning("encoded corpus %s is unusable (%s): encoding it again", folder, error)
            discard_directory(folder)
        else:
            log.info("reusing encoded corpus %s (%d pairs)", folder, len(pairs))
            return pairs
    log.info("encoding %s and %s with %d worker processes into %s", files.src, files.tgt, workers, folder)
    start = time.monotonic()
    _build(files, (src_tokenizer, tgt_tokenizer), folder, workers, alignments)
    pairs = open_pairs(folder)
    log.info(
        "encoded %d pairs (%d with an empty side left out) in %.1f s",
        len(pairs),
        pairs.empty_pairs,
        time.monotonic() - start,
    )
    return pairs


def _cache_key(files: SplitFiles, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, alignments: Path | None) -> str:
    digest = hashlib.sha256(f"nmt encoded corpus, format {FORMAT_VERSION}".encode())
    for path in (files.src, files.tgt) if alignments is None else (files.src, files.tgt, alignments):
        digest.update(file_fingerprint(path).encode())
    for tokenizer in (src_tokenizer, tgt_tokenizer):
        digest.update(hashlib.sha256(tokenizer.model_bytes).digest())
    return digest.hexdigest()[:16]


def _build(
    files: SplitFiles, tokenizers: tuple[Tokenizer, Tokenizer], folder: Path, workers: int, alignments: Path | None
) -> None:
    """Encodes into a temporary folder beside `folder`, then renames it into place whole."""
    dtypes = {side: id_dtype(tokenizer.vocab_size) for side, tokenizer in zip(SIDES, tokenizers)}
    paths = [files.src, files.tgt]
    if alignments is not None:
        dtypes[LINKS], paths = np.dtype(np.int32), [*paths, alignments]
    empty = unmatched = 0
    with (
        atomic_directory(folder) as tmp,
        IndexedWriter(tmp, dtypes) as writer,
        _worker_pool(workers, [t.model_bytes for t in tokenizers]) as pool,
        tqdm(desc="encoding", unit=" pairs", unit_scale=True, disable=None) as bar,
    ):
        chunks = (
            (str(alignments), 1 + number * CHUNK_PAIRS, rows)
            for number, rows in enumerate(_chunks(iter_parallel(*paths), CHUNK_PAIRS))
        )
        for sides, left_out, mismatched in _in_order(pool, _encode_chunk, chunks, ahead=2 * workers):
            for side, (ids, lengths) in zip(dtypes, sides):
                writer.add(side, ids, lengths)
            empty, unmatched = empty + left_out, unmatched + mismatched
            bar.update(len(sides[0][1]) + left_out)
        writer.finish(empty, {side: str(path) for side, path in zip(dtypes, paths)})
    if unmatched:
        log.warning(
            "%s: %d aligned pairs split into other words than their whitespace tokens: trained without links",
            alignments,
            unmatched,
        )


@contextmanager
def _worker_pool(workers: int, models: list[bytes]) -> Iterator[Pool]:
    """A pool of encoding processes that, once the work is done, exit on their own (`close`,
    `join`). `Pool`'s own `with` kills them instead (`terminate`), and a worker killed while it
    holds the task queue's lock leaves the next one waiting for it forever: seen under submitit,
    whose SIGTERM handler the workers inherit, so they survive the kill. Only on an error are they
    terminated, with SIGTERM's default action restored in each (`_start_worker`)."""
    pool = multiprocessing.Pool(workers, _start_worker, (models,))
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()


def _chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _in_order(pool: Pool, function: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]:
    """`map(function, items)` on the pool's workers, in order, with at most `ahead` items in
    flight: the corpus is read only as fast as it is encoded (`Pool.imap` would read it all
    into the task queue)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.apply_async(function, (item,)))
        if len(pending) > ahead:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


_worker_tokenizers: list[Tokenizer] = []  # in each worker process: the source and target models


def _start_worker(models: list[bytes]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler (e.g. submitit's) would outlive terminate()
    _worker_tokenizers[:] = [Tokenizer.from_bytes(model, f"{side} model") for side, model in zip(SIDES, models)]


def _encode_chunk(task: tuple[str, int, list[tuple[str, ...]]]) -> EncodedChunk:
    """Leaves out pairs with an empty side, encodes the rest: (flat ids, lengths) per side, and
    the piece links of each pair when its rows carry an alignment line (`_links`).

    Args:
        task: the alignment file's name (for errors), the 1-based line number of the first row,
            and the rows: (source, target) or (source, target, alignment) lines.
    """
    alignments, first_line, rows = task
    kept = [(number, row) for number, row in enumerate(rows, start=first_line) if is_complete(row[0], row[1])]
    sides, encoded_sides = [], []
    for index, tokenizer in enumerate(_worker_tokenizers):
        encoded = tokenizer.encode([row[index] for _, row in kept])
        encoded_sides.append(encoded)
        sides.append(_flat(encoded, id_dtype(tokenizer.vocab_size)))
    unmatched = 0
    if rows and len(rows[0]) == 3:
        links = []
        for (number, row), *ids in zip(kept, *encoded_sides):
            found = _links(row, ids, f"{alignments}:{number}")
            unmatched += found is None
            links.append([] if found is None else found.ravel().tolist())
        sides.append(_flat(links, np.dtype(np.int32)))
    return sides, len(rows) - len(kept), unmatched


def _flat(sequences: list[list[int]], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, sequences), np.int32, len(sequences))
    return np.fromiter(itertools.chain.from_iterable(sequences), dtype, int(lengths.sum())), lengths


def _links(row: tuple[str, ...], ids: list[list[int]], where: str) -> np.ndarray | None:
    """One pair's (target piece, source piece) links, from its word links; None when the
    sentencepiece words of a side are not its whitespace tokens (rare, after normalization).

    Raises:
        UserError: naming `where` for a malformed link or one past the end of a sentence.
    """
    words = [len(line.split()) for line in row[:2]]
    word_links = parse_pharaoh(row[2], where).possible
    outside = [f"{i}-{j}" for i, j in sorted(word_links) if i >= words[0] or j >= words[1]]
    if outside:
        raise UserError(
            f"{where}: link {outside[0]} points past the sentence pair ({words[0]} source words, {words[1]} target "
            f"words; links count words from 0)"
        )
    piece_words = [word_of_each_piece(t.begins_word[side]) for t, side in zip(_worker_tokenizers, ids)]
    if any(len(found) == 0 or found[-1] + 1 != count for found, count in zip(piece_words, words)):
        return None
    return piece_links(word_links, *piece_words)
