"""Attention: scorers define energies; `Attention` does masking, normalization and the weighted sum.

A scorer is one small class: `precompute(keys)` does the work that depends only on the source
(once per batch, e.g. the projection U h(j) of additive attention), and `forward(query, keys)`
returns the energies e(i, j). Everything else lives once, in `Attention.forward`. Adding a
scorer is one class here plus one YAML file in `configs/model/attention/`.

Queries come in groups: (B, G, Q) against keys (B, S, *), G queries per source sentence, so beam
search attends with its beam_size hypotheses of a sentence over one copy of the sentence's
memory instead of beam_size copies (training and greedy search: G = 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nmt.modules.encoder import EncoderOutput
from nmt.modules.normalizers import NORMALIZERS
from nmt.modules.step_linear import StepLinear


class Scorer(nn.Module):
    """Energy function e(query, key). Subclasses set up their parameters from the two sizes.

    Args:
        query_size: size of the decoder state used as the query.
        key_size: size of an encoder annotation.

    A scorer that sets `uses_coverage` also receives the running sum of past attention
    weights, (B, G, S), as a third argument.
    """

    uses_coverage = False

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size = query_size, key_size

    def precompute(self, keys: torch.Tensor) -> torch.Tensor:
        """Source-only part of the energy, computed once per batch: (B, S, K) -> (B, S, *)."""
        return keys

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Energies: queries (B, G, Q), precomputed keys (B, S, *) -> (B, G, S)."""
        raise NotImplementedError


def tanh_layer(
    v: nn.Linear, from_query: torch.Tensor, from_keys: torch.Tensor, extra: torch.Tensor | None = None
) -> torch.Tensor:
    """The energies of a one-layer tanh network, v^T tanh(from_query + from_keys (+ extra)), at
    every source position: (B, G, A), (B, S, A) and (B, G, S, A) -> (B, G, S).

    The additive, coverage and concat scorers all reduce to this; it evaluates the formula in
    the fastest exact form for the device and precision (`_sigmoid_form_pays`).
    """
    if _sigmoid_form_pays(torch.result_type(from_query, from_keys), from_keys.device):
        return _tanh_layer_by_sigmoid(v, from_query, from_keys, extra)
    pre_activation = from_query.unsqueeze(-2) + from_keys.unsqueeze(1)  # (B, G, S, A)
    if extra is not None:
        pre_activation = pre_activation + extra
    return _dot_v(torch.tanh(pre_activation), v)


def _sigmoid_form_pays(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether to evaluate v^T tanh(x) as 2 v^T sigmoid(2x) - sum(v): on the CPU in fp32 (or
    fp64), where PyTorch's tanh costs several times its sigmoid and this (B, G, S, A) activation
    is the largest elementwise work of a decoder step. Not in 16 bits: sigmoid(2x) near 1/2
    rounds away any x below bf16's step there, and the paper's initialization starts x near
    1e-3, where v would then never learn. Not on a GPU, whose tanh is as fast as its sigmoid."""
    return device.type == "cpu" and dtype in (torch.float32, torch.float64)


def _tanh_layer_by_sigmoid(
    v: nn.Linear, from_query: torch.Tensor, from_keys: torch.Tensor, extra: torch.Tensor | None
) -> torch.Tensor:
    """`tanh_layer` through tanh(x) = 2 sigmoid(2x) - 1. The doubling rides on the additions
    (`alpha=2`; doubling is exact), so the (B, G, S, A) tensor is written once and activated
    in place."""
    doubled = torch.add((2 * from_query).unsqueeze(-2), from_keys.unsqueeze(1), alpha=2)  # (B, G, S, A): 2x
    if extra is not None:
        doubled = torch.add(doubled, extra, alpha=2)
    return 2 * _dot_v(torch.sigmoid_(doubled), v) - v.weight.sum()


def _dot_v(activation: torch.Tensor, v: nn.Linear) -> torch.Tensor:
    """v^T activation: (B, G, S, A) -> (B, G, S). Under `torch.compile` a multiply and a sum,
    which the compiler fuses with the activation into one pass (and its backward into one more),
    where eager mode's matrix-vector product writes the activations and reads them back."""
    if torch.compiler.is_compiling():
        return (activation * v.weight.squeeze(0)).sum(-1)
    return v(activation).squeeze(-1)


class AdditiveScorer(Scorer):
    """Bahdanau et al. (2015): e(i, j) = v^T tanh(W s(i-1) + U h(j)).

    Args:
        hidden_size: size of the tanh layer (the paper's n').
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__(query_size, key_size)
        self.query_proj = StepLinear(query_size, hidden_size, bias=False)  # W
        self.key_proj = nn.Linear(key_size, hidden_size, bias=False)  # U
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def precompute(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_proj(keys)  # (B, S, A): U h(j)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return tanh_layer(self.v, self.query_proj(query), keys)  # (B, G, S): v^T tanh(W s + U h(j))


class CoverageScorer(AdditiveScorer):
    """Additive attention that sees its own past (Tu et al. 2016; See et al. 2017):
    e(i, j) = v^T tanh(W s + U h(j) + w_c cov(i, j)), cov(i, j) = sum over i' < i of alpha(i', j).
    """

    uses_coverage = True

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__(query_size, key_size, hidden_size)
        self.coverage_proj = nn.Linear(1, hidden_size, bias=False)  # w_c

    def forward(self, query: torch.Tensor, keys: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
        from_coverage = self.coverage_proj(coverage.unsqueeze(-1))  # (B, G, S, A): w_c cov(i, j)
        return tanh_layer(self.v, self.query_proj(query), keys, from_coverage)  # v^T tanh(W s + U h + w_c cov)


class DotScorer(Scorer):
    """Luong et al. (2015) dot: e(t, s) = h(t)^T h(s).

    Args:
        project_keys: first map keys to the query size with a learned matrix (which makes it
            the `general` scorer); needed when the two sizes differ.
    """

    def __init__(self, query_size: int, key_size: int, project_keys: bool = False) -> None:
        super().__init__(query_size, key_size)
        if query_size != key_size and not project_keys:
            raise ValueError(
                f"{type(self).__name__}: query size {query_size} != key size {key_size} (a bidirectional "
                f"encoder's keys are 2 x its hidden size); use the `general` scorer, or set "
                f"project_keys: true to map keys to the query size"
            )
        self.key_proj = nn.Linear(key_size, query_size, bias=False) if project_keys else None

    def precompute(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_proj(keys) if self.key_proj is not None else keys  # (B, S, Q)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(query, keys.transpose(1, 2))  # (B, G, S)


class ScaledDotScorer(DotScorer):
    """Dot product divided by sqrt(d) (Vaswani et al. 2017), d the query size."""

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return super().forward(query, keys) / math.sqrt(self.query_size)


class GeneralScorer(DotScorer):
    """Luong et al. (2015) general: e(t, s) = h(t)^T W h(s); W k is computed once per batch."""

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__(query_size, key_size, project_keys=True)


class ConcatScorer(Scorer):
    """Luong et al. (2015) concat: e(t, s) = v^T tanh(W [h(t); h(s)]).

    W is one matrix over the concatenation; its key half is applied once per batch.

    Args:
        hidden_size: rows of W.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__(query_size, key_size)
        self.weight = nn.Linear(query_size + key_size, hidden_size)  # W (with bias)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def precompute(self, keys: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(keys, self.weight.weight[:, self.query_size :])  # (B, S, A): W_k h(s)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        from_query = torch.nn.functional.linear(query, self.weight.weight[:, : self.query_size], self.weight.bias)
        return tanh_layer(self.v, from_query, keys)  # (B, G, S): v^T tanh(W_q h(t) + W_k h(s) + b)


class LocationScorer(Scorer):
    """Luong et al. (2015) location: a(t) = softmax(W h(t)), from the query alone.

    The energy of position s is row s of W h(t); positions past the source length are masked
    by `Attention` like any padding.

    Args:
        max_source_length: rows of W, the longest source (EOS included) it can attend over.
    """

    def __init__(self, query_size: int, key_size: int, max_source_length: int) -> None:
        super().__init__(query_size, key_size)
        self.max_source_length = max_source_length
        self.weight = StepLinear(query_size, max_source_length)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        length = keys.size(1)
        if length > self.max_source_length:
            raise ValueError(
                f"location attention: source of {length} tokens exceeds max_source_length={self.max_source_length}"
            )
        return self.weight(query)[..., :length]  # (B, G, S)


class Attention(nn.Module):
    """Masked normalization of a scorer's energies and the weighted sum of the values.

    Args:
        scorer: the energy function.
        normalizer: `softmax`, or a sparse one, `sparsemax` or `entmax15` (`nmt.modules.normalizers`).
    """

    def __init__(self, scorer: Scorer, normalizer: str = "softmax") -> None:
        super().__init__()
        if normalizer not in NORMALIZERS:
            raise ValueError(f"normalizer={normalizer!r}: use one of {', '.join(NORMALIZERS)}")
        self.scorer, self.normalizer = scorer, normalizer

    @property
    def uses_coverage(self) -> bool:
        """Whether the decoder must keep the running sum of past weights for the scorer."""
        return self.scorer.uses_coverage

    def precompute(self, encoded: EncoderOutput) -> torch.Tensor:
        """The scorer's keys for this batch, computed once."""
        return self.scorer.precompute(encoded.states)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor,
        coverage: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attends once, with N = B x G queries: each group of G consecutive rows attends over
        one source sentence (see the module docstring).

        Args:
            query: (N, Q) decoder states.
            keys: (B, S, *) output of `precompute`.
            values: (B, S, V) encoder annotations h(j).
            mask: (B, S) True at real positions; padded positions get weight exactly 0.
            coverage: (N, S) sum of past weights, for scorers that use it.

        Returns:
            context (N, V) = sum_j alpha(j) h(j), and the weights alpha (N, S).
        """
        sentences = keys.size(0)  # -1 below, not N // B: a traced export keeps the group size free
        grouped = query.view(sentences, -1, query.size(-1))  # (B, G, Q)
        if self.uses_coverage:
            energies = self.scorer(grouped, keys, coverage.view(sentences, -1, coverage.size(-1)))
        else:
            energies = self.scorer(grouped, keys)
        masked = energies.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = NORMALIZERS[self.normalizer](masked, -1)  # (B, G, S)
        context = torch.bmm(weights, values)  # (B, G, V)
        return context.flatten(0, 1), weights.flatten(0, 1)


class FixedContext(nn.Module):
    """No attention (Cho et al. 2014; the RNNencdec baseline of Bahdanau et al. 2015).

    Every step gets the same context c = tanh(V [forward h(N); backward h(1)]), a summary of
    the whole source computed once per batch; its "weights" are all zero.

    Args:
        summary_size: size of [forward h(N); backward h(1)].
        context_size: size of c (the decoder expects the annotation size).
    """

    uses_coverage = False

    def __init__(self, summary_size: int, context_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(summary_size, context_size)  # V

    def precompute(self, encoded: EncoderOutput) -> torch.Tensor:
        summary = torch.cat([encoded.final_forward, encoded.final_backward], dim=-1)  # (B, 2H)
        return torch.tanh(self.proj(summary)).unsqueeze(1)  # (B, 1, K)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor,
        coverage: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The precomputed context (N, K) whatever the queries (N, Q), and all-zero weights (N, S);
        N = B x G as in `Attention.forward`."""
        groups = query.view(mask.size(0), -1, query.size(-1)).size(1)  # G
        weights = torch.zeros_like(mask, dtype=values.dtype).unsqueeze(1)  # (B, 1, S)
        return keys.expand(-1, groups, -1).flatten(0, 1), weights.expand(-1, groups, -1).flatten(0, 1)
