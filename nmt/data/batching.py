"""Token sequences -> length-bucketed, padded batches.

Batches are built by a token budget: sentences of similar length are grouped (little padding),
a batch holds as many as fit in `max_tokens` padded tokens (counting the longer of source and
target) and at most `max_sentences`, and the batch order is shuffled each epoch from a seed.
Batching reads lengths alone (numpy arrays); a batch's ids are copied from the (memory-mapped)
corpus only when the batch is collated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import torch

from nmt.data.alignments import alignment_targets
from nmt.data.indexed import IndexedPairs
from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    """A padded batch. Source rows end with EOS; targets are shifted for teacher forcing.

    Attributes:
        src: (B, S) source ids, padded with PAD_ID.
        src_lengths: (B,) source lengths including EOS.
        tgt_in: (B, T) BOS + target ids (decoder inputs), or None when translating.
        tgt_out: (B, T) target ids + EOS (what the decoder must predict), or None.
        indices: position of each row in the dataset, to restore the original order.
        target_positions: (N,) the real (non-pad) positions of tgt_out, as indices into it
            flattened: where the loss needs logits. Found on the host when the batch is made,
            so that a batch on a GPU needs no synchronisation to find them.
        alignment: (B, T, S) what guided alignment pulls the attention of each target position
            towards (`nmt.data.alignments.alignment_targets`), when the pairs came with word
            alignments; else None.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor | None
    tgt_out: torch.Tensor | None
    indices: list[int]
    target_positions: torch.Tensor | None = None
    alignment: torch.Tensor | None = None

    @property
    def num_target_tokens(self) -> int:
        """Real (non-pad) target tokens, EOS included: the loss's normalizer."""
        return int((self.tgt_out != PAD_ID).sum()) if self.tgt_out is not None else 0

    def to(self, device: torch.device) -> Batch:
        """The batch with its tensors on `device` (lengths stay on the CPU, as packing needs)."""
        move = lambda t: t.to(device, non_blocking=True) if t is not None else None  # noqa: E731
        return Batch(
            move(self.src),
            self.src_lengths,
            move(self.tgt_in),
            move(self.tgt_out),
            self.indices,
            move(self.target_positions),
            move(self.alignment),
        )


def _frame(rows: Sequence[Sequence[int]], bos: bool, eos: bool) -> torch.Tensor:
    """(B, L) rows, each framed by BOS and/or EOS, padded with PAD_ID. A row is a list or an
    array (a view into memory-mapped ids): it is copied once, into the batch."""
    lengths = [len(row) for row in rows]
    out = np.full((len(rows), max(lengths) + bos + eos), PAD_ID, dtype=np.int64)
    for i, (row, length) in enumerate(zip(rows, lengths)):
        out[i, bos : bos + length] = row
        if eos:
            out[i, bos + length] = EOS_ID
    if bos:
        out[:, 0] = BOS_ID
    return torch.from_numpy(out)


def collate(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]] | None,
    indices: list[int],
    links: Sequence[Sequence[int]] | None = None,
) -> Batch:
    """Pads one batch of id sequences; EOS is appended to sources, BOS/EOS frame targets.
    `links` (each pair's flat piece links, with targets) become the batch's `alignment`."""
    src = _frame(src_ids, bos=False, eos=True)
    src_lengths = torch.tensor([len(ids) + 1 for ids in src_ids], dtype=torch.long)
    if tgt_ids is None:
        return Batch(src, src_lengths, None, None, indices)
    tgt_out = _frame(tgt_ids, bos=False, eos=True)
    alignment = None
    if links is not None:
        lengths = ([len(ids) for ids in side] for side in (src_ids, tgt_ids))
        alignment = alignment_targets(links, *lengths, (len(src_ids), tgt_out.size(1), src.size(1)))
    return Batch(
        src,
        src_lengths,
        _frame(tgt_ids, bos=True, eos=False),
        tgt_out,
        indices,
        torch.from_numpy(np.flatnonzero(tgt_out.numpy() != PAD_ID)),
        alignment,
    )


class Batches(Sequence[list[int]]):
    """Batches of example indices: one index array sorted by length, cut into consecutive runs.

    A list of lists would hold a Python int per example (about 36 bytes); this holds 4 bytes
    per example and builds a batch's list when it is asked for.

    Args:
        order: (N,) example indices, the members of each batch next to each other.
        bounds: (K + 1,) batch k is order[bounds[k]:bounds[k + 1]] ...
        sequence: (K,) ... and the i-th batch of the epoch is batch sequence[i].
    """

    def __init__(self, order: np.ndarray, bounds: np.ndarray, sequence: np.ndarray) -> None:
        self.order, self.bounds, self.sequence = order, bounds, sequence

    def __len__(self) -> int:
        return len(self.sequence)

    @overload
    def __getitem__(self, index: int) -> list[int]: ...

    @overload
    def __getitem__(self, index: slice) -> list[list[int]]: ...

    def __getitem__(self, index: int | slice) -> list[int] | list[list[int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        batch = self.sequence[index]
        return self.order[self.bounds[batch] : self.bounds[batch + 1]].tolist()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(mine == theirs for mine, theirs in zip(self, other))


def bucket_batches(
    src_lengths: Sequence[int] | np.ndarray,
    tgt_lengths: Sequence[int] | np.ndarray | None,
    max_tokens: int,
    max_sentences: int | None = None,
    rng: np.random.Generator | None = None,
) -> Batches:
    """Groups indices into batches of similar length within a padded-token budget.

    Examples are sorted by (source length, target length) and cut greedily: a batch takes the
    next example while rows x longest row stays within `max_tokens`. Works on length arrays
    alone (numpy), so millions of examples are batched in a fraction of a second.

    Source length first, though a padded target position costs more (a decoder step and the
    vocabulary projection): sorting by target length first trained `bahdanau` faster, but lost
    test BLEU over six seeds (the docs' speed page), so it was reverted.

    Args:
        src_lengths: source token counts per example.
        tgt_lengths: target token counts per example (None when translating).
        max_tokens: most padded tokens a batch may hold: rows x longest row (source or target,
            with the EOS/BOS added by `collate`). A single longer example gets a batch alone.
        max_sentences: most rows a batch may hold (None: no limit).
        rng: shuffles ties within a length and the batch order; None keeps a fixed order
            (sorted by length, for decoding).

    Returns:
        The batches of example indices.
    """
    src = np.asarray(src_lengths)
    tgt = np.zeros_like(src) if tgt_lengths is None else np.asarray(tgt_lengths)
    order = np.arange(len(src), dtype=np.int32 if len(src) < 2**31 else np.int64)  # int32: half the memory
    if rng is not None:
        rng.shuffle(order)
    for key in (tgt, src):  # least significant first: sorted by (source, target) length, ties kept in order
        order = order[np.argsort(_sort_key(key[order]), kind="stable")]
    bounds = _cut(np.maximum(src[order], tgt[order]) + 1, max_tokens, max_sentences)
    sequence = np.arange(len(bounds) - 1) if rng is None else rng.permutation(len(bounds) - 1)
    return Batches(order, bounds, sequence)


def _sort_key(lengths: np.ndarray) -> np.ndarray:
    """Lengths as 16-bit keys, which numpy sorts stably by radix, in linear time (where
    `lexsort` compares). Lengths saturate at 65535: such examples are alone in a batch anyway."""
    return np.minimum(lengths, np.iinfo(np.uint16).max).astype(np.uint16)


def _cut(rows: np.ndarray, max_tokens: int, max_sentences: int | None) -> np.ndarray:
    """Batch bounds over padded row lengths in batching order, greedily: a batch takes the next
    row while rows x longest row stays within `max_tokens` and rows within `max_sentences`.

    Rows of equal length come in runs (the examples are sorted by length), and within a run the
    number that fits is arithmetic, so the loop runs once per run or batch, not once per row.
    """
    if not len(rows):
        return np.zeros(1, np.int64)
    limit = max_sentences if max_sentences is not None else len(rows)
    runs = np.flatnonzero(np.diff(rows)) + 1
    bounds, count, longest = [], 0, 0  # the open batch: rows taken, longest row
    for start, end in zip([0, *runs.tolist()], [*runs.tolist(), len(rows)]):
        length, position = int(rows[start]), start
        while position < end:
            if count == 0:  # a batch always takes its first row, however long
                bounds.append(position)
                count, longest, position = 1, length, position + 1
                continue
            longest_if_added = max(longest, length)
            room = min(max_tokens // longest_if_added, limit) - count
            if room <= 0:
                count = 0
                continue
            taken = min(room, end - position)
            count, longest, position = count + taken, longest_if_added, position + taken
    return np.array([*bounds, len(rows)], dtype=np.int64)


class ParallelData:
    """Training pairs (memory-mapped ids) and their epoch-by-epoch batches.

    Batches hold positions in `rows` (0 .. len(rows) - 1); `collate` reads those pairs' ids
    from the arrays, so no sentence is held as a Python list.

    Args:
        pairs: the encoded pairs (`nmt.data.encoding.encode_corpus`, or `from_lists`).
        rows: the pairs to train on, by row (`filter_by_length`'s result).
        max_tokens: the batch budget in padded tokens (see `bucket_batches`).
        max_sentences: the batch budget in sentences (None: no limit).
        seed: base seed; epoch e shuffles with seed + e, so runs repeat and a resumed run
            finds its place in the epoch.
    """

    def __init__(
        self, pairs: IndexedPairs, rows: np.ndarray, max_tokens: int, max_sentences: int | None = None, seed: int = 0
    ) -> None:
        if seed < 0:  # numpy's generators take no negative seeds
            raise ValueError(f"seed={seed}: must be at least 0")
        self.pairs, self.rows = pairs, rows
        self.src_lengths, self.tgt_lengths = pairs.src.lengths[rows], pairs.tgt.lengths[rows]
        self.max_tokens, self.max_sentences, self.seed = max_tokens, max_sentences, seed

    @classmethod
    def from_lists(
        cls,
        src_ids: Sequence[Sequence[int]],
        tgt_ids: Sequence[Sequence[int]],
        max_tokens: int,
        max_sentences: int | None = None,
        seed: int = 0,
    ) -> ParallelData:
        """All pairs of in-memory id lists (tests, small data)."""
        return cls(IndexedPairs.from_lists(src_ids, tgt_ids), np.arange(len(src_ids)), max_tokens, max_sentences, seed)

    def batch_order(self, epoch: int) -> Batches:
        """The shuffled batches of one epoch (the same for a seed and an epoch, so a resumed run
        can skip to its position without building the batches)."""
        return bucket_batches(
            self.src_lengths,
            self.tgt_lengths,
            self.max_tokens,
            self.max_sentences,
            np.random.default_rng(self.seed + epoch),
        )

    def collate(self, indices: list[int]) -> Batch:
        """The padded batch of the examples at `indices`."""
        rows = self.rows[indices]
        links = None if self.pairs.links is None else [self.pairs.links[row] for row in rows]
        return collate([self.pairs.src[row] for row in rows], [self.pairs.tgt[row] for row in rows], indices, links)

    def target_tokens(self, indices: list[int]) -> int:
        """Real target tokens of those examples (EOS included): the loss's normalizer, known
        without building the batch (every DDP rank computes the global count locally)."""
        return int(self.tgt_lengths[indices].sum()) + len(indices)


def filter_by_length(src_lengths: np.ndarray, tgt_lengths: np.ndarray, max_length: int) -> np.ndarray:
    """The rows of the pairs with neither side longer than `max_length` tokens (an index array:
    the data itself is not copied)."""
    return np.flatnonzero((src_lengths <= max_length) & (tgt_lengths <= max_length))
