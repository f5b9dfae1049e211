"""Token sequences -> length-bucketed, padded batches.

Batches are built by a token budget: sentences of similar length are grouped (little padding),
a batch holds as many as fit in `max_tokens` padded tokens (counting the longer of source and
target) and at most `max_sentences`, and the batch order is shuffled each epoch from a seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    """A padded batch. Source rows end with EOS; targets are shifted for teacher forcing.

    Attributes:
        src: (B, S) source ids, padded with PAD_ID.
        src_lengths: (B,) source lengths including EOS.
        tgt_in: (B, T) BOS + target ids (decoder inputs), or None when translating.
        tgt_out: (B, T) target ids + EOS (what the decoder must predict), or None.
        indices: position of each row in the dataset, to restore the original order.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor | None
    tgt_out: torch.Tensor | None
    indices: list[int]

    @property
    def num_target_tokens(self) -> int:
        """Real (non-pad) target tokens, EOS included: the loss's normalizer."""
        return int((self.tgt_out != PAD_ID).sum()) if self.tgt_out is not None else 0

    def to(self, device: torch.device) -> Batch:
        """The batch with its tensors on `device` (lengths stay on the CPU, as packing needs)."""
        move = lambda t: t.to(device, non_blocking=True) if t is not None else None  # noqa: E731
        return Batch(move(self.src), self.src_lengths, move(self.tgt_in), move(self.tgt_out), self.indices)


def _pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out


def collate(src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]] | None,
            indices: list[int]) -> Batch:
    """Pads one batch of id sequences; EOS is appended to sources, BOS/EOS frame targets."""
    src_rows = [[*ids, EOS_ID] for ids in src_ids]
    src = _pad(src_rows)
    src_lengths = torch.tensor([len(r) for r in src_rows], dtype=torch.long)
    if tgt_ids is None:
        return Batch(src, src_lengths, None, None, indices)
    tgt_in = _pad([[BOS_ID, *ids] for ids in tgt_ids])
    tgt_out = _pad([[*ids, EOS_ID] for ids in tgt_ids])
    return Batch(src, src_lengths, tgt_in, tgt_out, indices)


def bucket_batches(
    src_lengths: Sequence[int],
    tgt_lengths: Sequence[int] | None,
    max_tokens: int,
    max_sentences: int | None = None,
    rng: random.Random | None = None,
) -> list[list[int]]:
    """Groups indices into batches of similar length within a padded-token budget.

    Args:
        src_lengths, tgt_lengths: token counts per example (`tgt_lengths` None when translating).
        max_tokens: most padded tokens a batch may hold: rows x longest row (source or target,
            with the EOS/BOS added by `collate`). A single longer example gets a batch alone.
        max_sentences: most rows a batch may hold (None: no limit).
        rng: shuffles ties within a length and the batch order; None keeps a fixed order
            (sorted by length, for decoding).

    Returns:
        Lists of example indices, one list per batch.
    """
    tgt_lengths = tgt_lengths if tgt_lengths is not None else [0] * len(src_lengths)
    order = list(range(len(src_lengths)))
    if rng is not None:
        rng.shuffle(order)
    order.sort(key=lambda i: (src_lengths[i], tgt_lengths[i]))  # stable: shuffled ties stay shuffled
    batches, current, longest = [], [], 0
    for index in order:
        length = max(src_lengths[index], tgt_lengths[index]) + 1
        longest_if_added = max(longest, length)
        too_many = max_sentences is not None and len(current) >= max_sentences
        if current and (longest_if_added * (len(current) + 1) > max_tokens or too_many):
            batches.append(current)
            current, longest_if_added = [], length
        current.append(index)
        longest = longest_if_added
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


class ParallelData:
    """Tokenized parallel examples and their epoch-by-epoch batches.

    Args:
        src_ids, tgt_ids: token ids per example, without BOS/EOS.
        max_tokens, max_sentences: the batch budget (see `bucket_batches`).
        seed: base seed; epoch e shuffles with seed + e, so runs repeat.
    """

    def __init__(self, src_ids: list[list[int]], tgt_ids: list[list[int]], max_tokens: int,
                 max_sentences: int | None = None, seed: int = 0) -> None:
        self.src_ids, self.tgt_ids = src_ids, tgt_ids
        self.max_tokens, self.max_sentences, self.seed = max_tokens, max_sentences, seed

    def batch_order(self, epoch: int) -> list[list[int]]:
        """The shuffled batches of one epoch as lists of example indices (the same for a seed and
        an epoch, so a resumed run can skip to its position without building the batches)."""
        return bucket_batches(
            [len(s) for s in self.src_ids], [len(t) for t in self.tgt_ids],
            self.max_tokens, self.max_sentences, random.Random(self.seed + epoch),
        )

    def collate(self, indices: list[int]) -> Batch:
        """The padded batch of the examples at `indices`."""
        return collate([self.src_ids[i] for i in indices], [self.tgt_ids[i] for i in indices], indices)

    def target_tokens(self, indices: list[int]) -> int:
        """Real target tokens of those examples (EOS included): the loss's normalizer, known
        without building the batch (every DDP rank computes the global count locally)."""
        return sum(len(self.tgt_ids[i]) + 1 for i in indices)


def filter_by_length(src_ids: list[list[int]], tgt_ids: list[list[int]], max_length: int
                     ) -> tuple[list[list[int]], list[list[int]], int]:
    """Drops training pairs whose source or target exceeds `max_length` tokens.

    Returns:
        Kept source ids, kept target ids, and the number of pairs dropped.
    """
    kept = [(s, t) for s, t in zip(src_ids, tgt_ids) if len(s) <= max_length and len(t) <= max_length]
    return [s for s, _ in kept], [t for _, t in kept], len(src_ids) - len(kept)
