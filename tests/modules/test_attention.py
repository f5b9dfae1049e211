"""Every scorer against its equation, written out here, plus the masking properties."""

import copy
import math
from functools import partial

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from nmt.modules.attention import (
    AdditiveScorer,
    Attention,
    ConcatScorer,
    CoverageScorer,
    DotScorer,
    GeneralScorer,
    LocationScorer,
    ScaledDotScorer,
)

BATCH, SOURCE, QUERY, KEY = 3, 6, 5, 10
GROUP = 2  # queries per source sentence, as beam search asks (see `nmt.modules.attention`)
LENGTHS = [6, 3, 1]


def additive(s, q, k, cov):
    return s.v.weight[0] @ torch.tanh(s.query_proj.weight @ q + s.key_proj.weight @ k)


def coverage(s, q, k, cov):
    return s.v.weight[0] @ torch.tanh(
        s.query_proj.weight @ q + s.key_proj.weight @ k + s.coverage_proj.weight[:, 0] * cov
    )


def dot(s, q, k, cov):
    return q @ k


def projected_dot(s, q, k, cov):
    return q @ (s.key_proj.weight @ k)


def scaled_dot(s, q, k, cov):
    return q @ k / math.sqrt(q.numel())


def general(s, q, k, cov):
    return q @ s.key_proj.weight @ k


def concat(s, q, k, cov):
    return s.v.weight[0] @ torch.tanh(s.weight.weight @ torch.cat([q, k]) + s.weight.bias)


# (scorer factory, key size, its equation e(query, key, coverage at that position) for one (b, j))
SCORERS = {
    "additive": (partial(AdditiveScorer, hidden_size=7), KEY, additive),
    "coverage": (partial(CoverageScorer, hidden_size=7), KEY, coverage),
    "dot": (DotScorer, QUERY, dot),
    "dot_projected": (partial(DotScorer, project_keys=True), KEY, projected_dot),
    "scaled_dot": (ScaledDotScorer, QUERY, scaled_dot),
    "general": (GeneralScorer, KEY, general),
    "concat": (partial(ConcatScorer, hidden_size=7), KEY, concat),
}


def inputs(key_size):
    query = torch.randn(BATCH, QUERY, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(BATCH, SOURCE, key_size, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(SOURCE).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)
    cov = torch.rand(BATCH, SOURCE, dtype=torch.float64)
    return query, keys, mask, cov


def attention_inputs(name):
    """Random inputs and an `Attention` over the named scorer (the location scorer included)."""
    factory, key_size = SCORERS[name][:2] if name != "location" else (partial(LocationScorer, max_source_length=8), KEY)
    return *inputs(key_size), Attention(factory(query_size=QUERY, key_size=key_size)).double()


def attend(attention, query, keys, mask, cov):
    cov = cov if attention.uses_coverage else None
    return attention(query, attention.scorer.precompute(keys), keys, mask, cov)


@pytest.mark.parametrize("name", [*SCORERS, "location"])
def test_weights_are_zero_on_padding_and_sum_to_one(name):
    query, keys, mask, cov, attention = attention_inputs(name)
    context, weights = attend(attention, query, keys, mask, cov)
    assert torch.equal(weights[~mask], torch.zeros_like(weights[~mask]))
    assert (weights[mask] > 0).all()
    assert_close(weights.sum(-1), torch.ones(BATCH, dtype=torch.float64))
    expected = torch.stack([(weights[b, :, None] * keys[b]).sum(0) for b in range(BATCH)])
    assert_close(context, expected)


@pytest.mark.parametrize("name", SCORERS)
def test_scorer_matches_its_equation(name):
    """For groups of queries (B, G, Q) against one sentence's keys each: e[b, g, j]."""
    factory, key_size, equation = SCORERS[name]
    _, keys, _, _ = inputs(key_size)
    query = torch.randn(BATCH, GROUP, QUERY, dtype=torch.float64)
    cov = torch.rand(BATCH, GROUP, SOURCE, dtype=torch.float64)
    scorer = factory(query_size=QUERY, key_size=key_size).double()
    args = (cov,) if scorer.uses_coverage else ()
    energies = scorer(query, scorer.precompute(keys), *args)
    expected = torch.tensor(
        [
            [[equation(scorer, query[b, g], keys[b, j], cov[b, g, j]) for j in range(SOURCE)] for g in range(GROUP)]
            for b in range(BATCH)
        ],
        dtype=torch.float64,
    )
    assert_close(energies, expected)


def test_location_scorer_matches_its_equation_and_ignores_keys():
    _, keys, _, _ = inputs(KEY)
    query = torch.randn(BATCH, GROUP, QUERY, dtype=torch.float64)
    scorer = LocationScorer(query_size=QUERY, key_size=KEY, max_source_length=8).double()
    expected = (query @ scorer.weight.weight.T + scorer.weight.bias)[..., :SOURCE]
    assert_close(scorer(query, scorer.precompute(keys)), expected)
    with pytest.raises(ValueError, match="max_source_length=8"):
        scorer(query, torch.zeros(BATCH, 9, KEY, dtype=torch.float64))


@pytest.mark.parametrize("name", [*SCORERS, "location"])
def test_a_group_of_queries_attends_as_each_query_over_its_own_copy(name):
    """G consecutive query rows over one memory row (beam search) = each row over a copy."""
    _, keys, mask, _, attention = attention_inputs(name)
    query = torch.randn(BATCH * GROUP, QUERY, dtype=torch.float64)
    cov = torch.rand(BATCH * GROUP, SOURCE, dtype=torch.float64)
    copies = torch.arange(BATCH).repeat_interleave(GROUP)
    grouped = attend(attention, query, keys, mask, cov)
    alone = attend(attention, query, keys[copies], mask[copies], cov)
    for actual, expected in zip(grouped, alone):
        assert_close(actual, expected)


@pytest.mark.parametrize("name", [*SCORERS, "location"])
def test_gradients_reach_every_parameter_and_input(name):
    query, keys, mask, cov, attention = attention_inputs(name)
    context, _ = attend(attention, query, keys, mask, cov)
    context.pow(2).sum().backward()
    for parameter_name, parameter in attention.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, parameter_name
    assert query.grad.abs().sum() > 0


def test_padding_values_do_not_reach_the_context():
    query, keys, mask, _ = inputs(KEY)
    attention = Attention(AdditiveScorer(query_size=QUERY, key_size=KEY, hidden_size=7)).double()
    noisy = keys.masked_fill(~mask.unsqueeze(-1), 1e6)
    context, _ = attend(attention, query, keys, mask, None)
    noisy_context, _ = attend(attention, query, noisy, mask, None)
    assert_close(noisy_context, context)


@pytest.mark.parametrize("scorer", [DotScorer, ScaledDotScorer])
def test_dot_with_unequal_sizes_names_both_and_the_ways_out(scorer):
    with pytest.raises(ValueError) as error:
        scorer(query_size=512, key_size=1024)
    message = str(error.value)
    assert "query size 512" in message and "key size 1024" in message
    assert "`general`" in message and "project_keys: true" in message


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["eager", "compiled"])
def test_additive_energies_under_bf16_keep_small_pre_activations(compiled):
    """The paper's initialization (N(0, 0.001^2) attention weights) gives pre-activations near
    zero, where tanh(x) is about x. Under bf16 autocast the energies and the gradient of v must
    still follow a float64 oracle to bf16's relative precision; a form that computes 2 sigmoid(2x)
    - 1 in bf16 rounds x below 0.004 away (and v, starting at zero, then never learns)."""
    torch.manual_seed(0)
    scorer = AdditiveScorer(query_size=16, key_size=12, hidden_size=32)
    for weight in (scorer.query_proj.weight, scorer.key_proj.weight, scorer.v.weight):
        nn.init.normal_(weight, std=1e-3)
    query, keys = torch.randn(4, 1, 16), torch.randn(4, 7, 12)
    oracle = copy.deepcopy(scorer).double()
    expected = oracle(query.double(), oracle.precompute(keys.double()))
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), oracle.v.weight)
    energies = torch.compile(lambda q, k: scorer(q, k), dynamic=True) if compiled else scorer
    with torch.autocast("cpu", dtype=torch.bfloat16):
        actual = energies(query, scorer.precompute(keys))
    (grad,) = torch.autograd.grad(actual.float().square().sum(), scorer.v.weight)
    assert_close(actual.double(), expected, rtol=0.02, atol=0.02 * expected.abs().max().item())
    assert_close(grad.double(), expected_grad, rtol=0.05, atol=0.05 * expected_grad.abs().max().item())
