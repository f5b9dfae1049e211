"""Forced decoding: what a model says about a given target, token by token.

The model reads the source and is fed the given target instead of its own choices, through the
same `Decodable` protocol the searches drive (so an ensemble or an export scores alike, with
decoding's precision): at each step it yields log P(y(t) | y(<t), x) of the given token and the
attention with which it produced it. The sum over the target and EOS is log P(target | source),
the quantity a reranker, a data filter or an alignment evaluation needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nmt.data.batching import Batch
from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from nmt.decoding.batches import in_length_batches
from nmt.decoding.search import Decodable


@dataclass(frozen=True)
class ForcedTarget:
    """A given target's log-probabilities under the model.

    Attributes:
        token_log_probs: (T + 1,) log P of each target token and of the final EOS, float64.
        attention: (T + 1, S + 1) the attention that produced each of them over the source
            pieces and its EOS, or None when not asked for.
    """

    token_log_probs: np.ndarray
    attention: np.ndarray | None

    @property
    def log_prob(self) -> float:
        """log P(target + EOS | source)."""
        return float(self.token_log_probs.sum())

    @property
    def perplexity(self) -> float:
        """exp of the negative mean token log-probability, EOS counted."""
        return float(np.exp(-self.token_log_probs.mean()))


@torch.no_grad()
def force_decode(
    model: Decodable, src: torch.Tensor, src_lengths: torch.Tensor, targets: list[list[int]], attention: bool = False
) -> list[ForcedTarget]:
    """Scores one batch: src (B, S) with src_lengths (B,) against `targets`, B lists of target
    ids without BOS and EOS. Rows whose target has ended keep stepping on PAD; their outputs are
    not read."""
    batch, steps = len(targets), max(len(target) for target in targets) + 1
    given = torch.full((batch, steps), PAD_ID, dtype=torch.long)
    for row, target in enumerate(targets):
        given[row, : len(target) + 1] = torch.tensor([*target, EOS_ID])
    given = given.to(src.device)
    memory, state = model.start(src, src_lengths)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    log_probs, weights = [], []
    for step in range(steps):
        scores, normalizers, state, step_weights = model.next_token_scores(prev, state, memory)
        prev = given[:, step]
        chosen = scores.gather(1, prev.unsqueeze(1)).squeeze(1)  # (B,)
        log_probs.append(chosen.double() - normalizers.double())
        if attention:
            weights.append(step_weights.double())
    token_log_probs = torch.stack(log_probs, 1).cpu().numpy()  # (B, T + 1)
    matrices = torch.stack(weights, 1).cpu().numpy() if attention else None  # (B, T + 1, S)
    lengths = src_lengths.tolist()
    return [
        ForcedTarget(
            token_log_probs[row, : len(target) + 1],
            None if matrices is None else matrices[row, : len(target) + 1, : lengths[row]],
        )
        for row, target in enumerate(targets)
    ]


def force_decode_all(
    model: Decodable,
    src_ids: list[list[int]],
    tgt_ids: list[list[int]],
    max_tokens: int = 4000,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    attention: bool = False,
) -> list[ForcedTarget]:
    """`force_decode` over batches of similar-length pairs (sources without EOS); results in
    input order (`nmt.decoding.batches.in_length_batches`)."""
    model.eval()

    def run(batch: Batch, indices: list[int]) -> list[ForcedTarget]:
        return force_decode(model, batch.src, batch.src_lengths, [tgt_ids[i] for i in indices], attention)

    return in_length_batches(run, src_ids, [len(t) for t in tgt_ids], max_tokens, device, precision)
