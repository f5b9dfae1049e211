"""The training objective: token cross-entropy, plus See et al.'s coverage penalty on request."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def token_loss_sum(model: nn.Module, batch: Batch, label_smoothing: float = 0.0,
                   coverage_loss_weight: float = 0.0) -> torch.Tensor:
    """Summed cross-entropy over the non-pad target tokens of a batch (plus the weighted
    coverage penalty, when asked for).

    Args:
        model: a `Seq2Seq`, or a wrapper of one (DDP, torch.compile) with the same forward.
    """
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V), (B, T, S)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), batch.tgt_out.flatten(), ignore_index=PAD_ID,
                           reduction="sum", label_smoothing=label_smoothing)
    if coverage_loss_weight:
        loss = loss + coverage_loss_weight * coverage_penalty(attention.float(), batch.tgt_out != PAD_ID)
    return loss
