import torch
from torch.testing import assert_close

from nmt.modules.attention import AdditiveScorer, Attention


def lengths_to_mask(lengths: list[int], max_length: int) -> torch.Tensor:
    return torch.arange(max_length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def make_inputs(batch=3, src_len=6, query_size=5, key_size=10):
    query = torch.randn(batch, query_size, dtype=torch.float64)
    keys = torch.randn(batch, src_len, key_size, dtype=torch.float64)
    mask = lengths_to_mask([6, 3, 1], src_len)
    return query, keys, mask


def test_weights_are_zero_on_padding_and_sum_to_one():
    query, keys, mask = make_inputs()
    attention = Attention(AdditiveScorer(query_size=5, key_size=10, hidden_size=7).double())
    context, weights = attention(query, attention.precompute(keys), keys, mask)
    assert torch.equal(weights[~mask], torch.zeros_like(weights[~mask]))
    assert (weights[mask] > 0).all()
    assert_close(weights.sum(-1), torch.ones(3, dtype=torch.float64))
    expected = torch.stack([(weights[b, :, None] * keys[b]).sum(0) for b in range(3)])
    assert_close(context, expected)


def test_padding_values_do_not_reach_the_context():
    query, keys, mask = make_inputs()
    attention = Attention(AdditiveScorer(query_size=5, key_size=10, hidden_size=7).double())
    noisy = keys.masked_fill(~mask.unsqueeze(-1), 1e6)
    context, _ = attention(query, attention.precompute(keys), keys, mask)
    noisy_context, _ = attention(query, attention.precompute(noisy), noisy, mask)
    assert_close(noisy_context, context)


def test_additive_scorer_matches_its_equation():
    query, keys, _ = make_inputs()
    scorer = AdditiveScorer(query_size=5, key_size=10, hidden_size=7).double()
    W, U, v = (p.detach() for p in (scorer.query_proj.weight, scorer.key_proj.weight, scorer.v.weight[0]))
    expected = torch.tensor([[float(v @ torch.tanh(W @ query[b] + U @ keys[b, j])) for j in range(6)]
                             for b in range(3)], dtype=torch.float64)
    assert_close(scorer(query, scorer.precompute(keys)), expected)
