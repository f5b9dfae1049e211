"""Attention: scorers define energies; `Attention` does masking, softmax and the weighted sum.

A scorer is one small class: `precompute(keys)` does the work that depends only on the source
(once per batch, e.g. the projection U h(j) of additive attention), and `forward(query, keys)`
returns the energies e(i, j). Everything else lives once, in `Attention.forward`.
"""

from __future__ import annotations

import torch
from torch import nn


class Scorer(nn.Module):
    """Energy function e(query, key). Subclasses set up their parameters from the two sizes.

    Args:
        query_size: size of the decoder state used as the query.
        key_size: size of an encoder annotation.
    """

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size = query_size, key_size

    def precompute(self, keys: torch.Tensor) -> torch.Tensor:
        """Source-only part of the energy, computed once per batch: (B, S, K) -> (B, S, *)."""
        return keys

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Energies: query (B, Q), precomputed keys (B, S, *) -> (B, S)."""
        raise NotImplementedError


class AdditiveScorer(Scorer):
    """Bahdanau et al. (2015): e(i, j) = v^T tanh(W s(i-1) + U h(j)).

    Args:
        hidden_size: size of the tanh layer (the paper's n').
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__(query_size, key_size)
        self.query_proj = nn.Linear(query_size, hidden_size, bias=False)  # W
        self.key_proj = nn.Linear(key_size, hidden_size, bias=False)  # U
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def precompute(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_proj(keys)  # (B, S, A)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.query_proj(query).unsqueeze(1) + keys)  # (B, S, A)
        return self.v(hidden).squeeze(-1)  # (B, S)


class Attention(nn.Module):
    """Masked softmax over a scorer's energies and the weighted sum of the values.

    Args:
        scorer: the energy function.
    """

    def __init__(self, scorer: Scorer) -> None:
        super().__init__()
        self.scorer = scorer

    def precompute(self, keys: torch.Tensor) -> torch.Tensor:
        return self.scorer.precompute(keys)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attends once.

        Args:
            query: (B, Q) decoder state.
            keys: (B, S, *) output of `precompute`.
            values: (B, S, V) encoder annotations h(j).
            mask: (B, S) True at real positions; padded positions get weight exactly 0.

        Returns:
            context (B, V) = sum_j alpha(j) h(j), and the weights alpha (B, S).
        """
        energies = self.scorer(query, keys).masked_fill(~mask, float("-inf"))  # (B, S)
        weights = torch.softmax(energies, dim=-1)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # (B, V)
        return context, weights
