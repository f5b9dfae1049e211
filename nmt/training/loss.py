"""The training objective: token cross-entropy, plus on request See et al.'s coverage penalty and
guided alignment (attention pulled towards given word alignments)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nmt.data.batching import Batch
from nmt.data.tokenizer import PAD_ID
from nmt.utils import compilation


def coverage_penalty(attention: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """See et al. (2017): sum over steps i and positions j of min(alpha(i, j), coverage(i, j)).

    Args:
        attention: (B, T, S) weights of every step.
        target_mask: (B, T) True at real target positions.
    """
    coverage = attention.cumsum(1) - attention  # (B, T, S): attention paid before step i
    return (torch.minimum(attention, coverage).sum(-1) * target_mask).sum()


@dataclass(frozen=True)
class GuidedAlignment:
    """Guided alignment (Marian's `--guided-alignment`; Garg et al. 2019): the attention of each
    target position is pulled towards the source words it is aligned to.

    Args:
        weight: the weight of `guided_alignment_loss` beside the token cross-entropy (0: off).
        alignments: a Pharaoh file of the training pairs' word links (`i-j`, source word i and
            target word j counted from 0 in whitespace tokens, one line per pair), e.g. from
            eflomal or fast_align; mapped onto the pieces when the corpus is encoded.
    """

    weight: float = 0.0
    alignments: str | None = None

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"trainer.guided_alignment.weight={self.weight}: must be at least 0")
        if self.weight and self.alignments is None:
            raise ValueError(
                f"trainer.guided_alignment.weight={self.weight} needs trainer.guided_alignment.alignments: "
                "a Pharaoh file of the training pairs' word alignments"
            )


ATTENTION_FLOOR = 1e-6
"""Added to the attention before its log, as Marian does: sparse normalizers give exact zeros."""


def guided_alignment_loss(attention: torch.Tensor, alignment: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy between each target position's alignment distribution and its attention:
    -sum_(b, t, s) A(b, t, s) log(alpha(b, t, s) + 1e-6). Positions without links (all-zero rows of
    A) add nothing, so the sum is over aligned target tokens, as the token loss is over tokens.

    Args:
        attention: (B, T, S) weights of every step, fp32.
        alignment: (B, T, S) rows summing to one or all zero (`nmt.data.alignments.alignment_targets`).
    """
    return -(alignment * torch.log(attention + ATTENTION_FLOOR)).sum()


def _row_losses(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (R, V) in any float dtype -> each row's loss and log-sum-exp (R,), in fp32."""
    rows = logits.float()
    lse = torch.logsumexp(rows, dim=-1)
    loss = lse - (1 - smoothing) * rows.gather(1, target[:, None]).squeeze(1)
    if smoothing:
        loss = loss - (smoothing / rows.size(-1)) * rows.sum(-1)
    return loss, lse


def _row_gradients(
    logits: torch.Tensor, target: torch.Tensor, lse: torch.Tensor, row_scale: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """d loss / d logits of rows (R, V), each row scaled by row_scale (R,), in the logits' dtype."""
    softmax = torch.exp(logits.float() - lse[:, None])  # (R, V)
    target_terms = torch.zeros_like(softmax).scatter_(1, target[:, None], smoothing - 1)
    return ((softmax - smoothing / logits.size(-1) + target_terms) * row_scale[:, None]).to(logits.dtype)


class SmoothedCrossEntropy(torch.autograd.Function):
    """Summed label-smoothed cross-entropy of (N, V) logits, computed in fp32; the same value and
    gradient as `F.cross_entropy(logits.float(), ..., reduction="sum")`.

    Why not that one-liner: it materializes the fp32 copy of the logits, their log-softmax and
    its gradient, three (N, V) fp32 arrays (N is every target token of a batch, V the vocabulary)
    that are read and written once each. Here only the logits (in their own dtype) and one
    log-sum-exp per row are kept: eagerly, a block of rows is converted, reduced and, in the
    backward, turned into its gradient while it is in cache; `compiled=True` runs the same two
    row functions through `torch.compile` over all rows at once, which fuses each into about one
    pass over the logits (an in-place version of the formula is faster eagerly but compiles
    badly, so the one formula here is written for the compiler). With smoothing eps the loss of
    a row with target y is
    lse(x) - (1 - eps) x_y - (eps / V) sum_v x_v and its gradient softmax(x) - (1 - eps) onehot(y) - eps / V.
    """

    BLOCK_ROWS = 64  # 64 x 8000 fp32 = 2 MB: a block stays in L2 between its passes

    @staticmethod
    def forward(
        ctx, logits: torch.Tensor, target: torch.Tensor, smoothing: float, compiled: bool = False
    ) -> torch.Tensor:
        kept = (target != PAD_ID).float()  # (N,)
        if compiled:
            row_loss, lse = compilation.compiled(_row_losses)(logits, target, smoothing)
        else:
            row_loss, lse = (
                torch.cat(parts)
                for parts in zip(
                    *(_row_losses(logits[rows], target[rows], smoothing) for rows in _blocks(logits.size(0)))
                )
            )
        ctx.save_for_backward(logits, target, lse, kept)
        ctx.smoothing, ctx.compiled = smoothing, compiled
        return (row_loss * kept).sum()

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        logits, target, lse, kept = ctx.saved_tensors
        row_scale = kept * grad_loss  # (N,): padding rows get no gradient
        if ctx.compiled:
            return compilation.compiled(_row_gradients)(logits, target, lse, row_scale, ctx.smoothing), None, None, None
        grad = torch.empty_like(logits)
        for rows in _blocks(logits.size(0)):
            grad[rows] = _row_gradients(logits[rows], target[rows], lse[rows], row_scale[rows], ctx.smoothing)
        return grad, None, None, None


def _blocks(rows: int) -> list[slice]:
    size = SmoothedCrossEntropy.BLOCK_ROWS
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


def token_loss_sum(
    model: nn.Module,
    batch: Batch,
    label_smoothing: float = 0.0,
    coverage_loss_weight: float = 0.0,
    compiled: bool = False,
    guided_alignment_weight: float = 0.0,
) -> torch.Tensor:
    """Summed cross-entropy over the non-pad target tokens of a batch (plus the weighted
    coverage penalty and guided alignment loss, when asked for).

    Args:
        model: a `Seq2Seq`, or a wrapper of one (DDP) with the same forward.
        compiled: compute the cross-entropy with `torch.compile` (see `SmoothedCrossEntropy`).
        guided_alignment_weight: weight of `guided_alignment_loss` against `batch.alignment`.
    """
    positions = batch.target_positions  # logits at real target positions only, not at padding
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in, positions)  # (N, V), (B, T, S)
    loss = SmoothedCrossEntropy.apply(logits, batch.tgt_out.flatten()[positions], label_smoothing, compiled)
    if coverage_loss_weight:
        loss = loss + coverage_loss_weight * coverage_penalty(attention.float(), batch.tgt_out != PAD_ID)
    if guided_alignment_weight:
        loss = loss + guided_alignment_weight * guided_alignment_loss(attention.float(), batch.alignment)
    return loss
