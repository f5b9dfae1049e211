"""The training objective: token cross-entropy, plus See et al.'s coverage penalty on request."""

from __future__ import annotations

import torch
from torch import nn

from nmt.data.batching import Batch
from nmt.tokenizer import PAD_ID


def coverage_penalty(attention: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """See et al. (2017): sum over steps i and positions j of min(alpha(i, j), coverage(i, j)).

    Args:
        attention: (B, T, S) weights of every step.
        target_mask: (B, T) True at real target positions.
    """
    coverage = attention.cumsum(1) - attention  # (B, T, S): attention paid before step i
    return (torch.minimum(attention, coverage).sum(-1) * target_mask).sum()


class SmoothedCrossEntropy(torch.autograd.Function):
    """Summed label-smoothed cross-entropy of (N, V) logits, computed in fp32 a block of rows at
    a time; the same value and gradient as `F.cross_entropy(logits.float(), ..., reduction="sum")`.

    Why not that one-liner: it materializes the fp32 copy of the logits, their log-softmax and
    its gradient, three (N, V) fp32 arrays (N is every target token of a batch, V the vocabulary)
    that are read and written once each. Here a block of rows is converted, reduced and, in the
    backward, turned into its gradient while it is in cache; only the logits (in their own dtype)
    and one log-sum-exp per row are kept. With smoothing eps the loss of a row with target y is
    lse(x) - (1 - eps) x_y - (eps / V) sum_v x_v and its gradient softmax(x) - (1 - eps) onehot(y) - eps / V.
    """

    BLOCK_ROWS = 64  # 64 x 8000 fp32 = 2 MB: a block stays in L2 between its passes

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
        vocab = logits.size(-1)
        kept = (target != PAD_ID).float()  # (N,)
        lse = torch.empty(logits.size(0), dtype=torch.float32, device=logits.device)
        loss = torch.zeros((), dtype=torch.float32, device=logits.device)
        for rows in _blocks(logits.size(0), SmoothedCrossEntropy.BLOCK_ROWS):
            block = logits[rows].float()  # (R, V)
            lse[rows] = torch.logsumexp(block, dim=-1)
            row_loss = lse[rows] - (1 - smoothing) * block.gather(1, target[rows, None]).squeeze(1)
            if smoothing:
                row_loss = row_loss - (smoothing / vocab) * block.sum(-1)
            loss += (row_loss * kept[rows]).sum()
        ctx.save_for_backward(logits, target, lse, kept)
        ctx.smoothing = smoothing
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        logits, target, lse, kept = ctx.saved_tensors
        smoothing, vocab = ctx.smoothing, logits.size(-1)
        grad = torch.empty_like(logits)
        row_scale = kept * grad_loss  # (N,): padding rows get no gradient
        for rows in _blocks(logits.size(0), SmoothedCrossEntropy.BLOCK_ROWS):
            block = logits[rows].float().sub_(lse[rows, None]).exp_()  # softmax (R, V)
            if smoothing:
                block.sub_(smoothing / vocab)
            block.scatter_add_(1, target[rows, None], block.new_full((block.size(0), 1), smoothing - 1))
            grad[rows] = block.mul_(row_scale[rows, None])
        return grad, None, None


def _blocks(rows: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


def token_loss_sum(model: nn.Module, batch: Batch, label_smoothing: float = 0.0,
                   coverage_loss_weight: float = 0.0) -> torch.Tensor:
    """Summed cross-entropy over the non-pad target tokens of a batch (plus the weighted
    coverage penalty, when asked for).

    Args:
        model: a `Seq2Seq`, or a wrapper of one (DDP, torch.compile) with the same forward.
    """
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V), (B, T, S)
    loss = SmoothedCrossEntropy.apply(logits.flatten(0, 1), batch.tgt_out.flatten(), label_smoothing)
    if coverage_loss_weight:
        loss = loss + coverage_loss_weight * coverage_penalty(attention.float(), batch.tgt_out != PAD_ID)
    return loss
