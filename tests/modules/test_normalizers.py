"""sparsemax and 1.5-entmax against a bisection oracle in float64, their gradients against finite
differences, and the attention properties every normalizer keeps."""

import pytest
import torch
from torch.testing import assert_close

from nmt.modules.attention import Attention, DotScorer
from nmt.modules.decoder import BahdanauDecoder
from nmt.modules.normalizers import NORMALIZERS, entmax15, sparsemax

SPARSE = {"sparsemax": sparsemax, "entmax15": entmax15}


def bisection(z: torch.Tensor, mapping) -> torch.Tensor:
    """The tau with sum(mapping(z - tau)) = 1, found by bisection (sum decreases in tau), and
    mapping(z - tau): an oracle that shares nothing with the sort-based forms."""
    low, high = z.max(-1, keepdim=True).values - 2, z.max(-1, keepdim=True).values
    for _ in range(200):
        middle = (low + high) / 2
        too_much = mapping(z - middle).sum(-1, keepdim=True) > 1
        low, high = torch.where(too_much, middle, low), torch.where(too_much, high, middle)
    return mapping(z - (low + high) / 2)


ORACLES = {
    "sparsemax": lambda z: bisection(z, lambda x: x.clamp(min=0)),
    "entmax15": lambda z: bisection(z / 2, lambda x: x.clamp(min=0) ** 2),  # max(z/2 - tau, 0)^2
}


def energies(kind: str) -> torch.Tensor:
    """Rows of energies: random; with masked (-inf) positions, all but one masked in some rows;
    or with ties (values drawn from a few levels)."""
    z = torch.randn(60, 9, dtype=torch.float64) * 3
    if kind == "masked":
        z = z.masked_fill(torch.rand(60, 9) < 0.5, float("-inf"))
        z[::3, 1:] = float("-inf")  # one position left
        z[:, 0] = z[:, 0].nan_to_num(neginf=0.0)
    elif kind == "ties":
        z = torch.randint(0, 3, (60, 9)).double()
    return z


@pytest.mark.parametrize("kind", ["random", "masked", "ties"])
@pytest.mark.parametrize("name", SPARSE)
def test_sparse_normalizers_equal_the_bisection_oracle(name, kind):
    z = energies(kind)
    assert_close(SPARSE[name](z), ORACLES[name](z), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NORMALIZERS)
def test_weights_sum_to_one_and_masked_positions_get_exactly_zero(name):
    z = torch.randn(40, 11, dtype=torch.float64) * 4
    mask = torch.rand(40, 11) < 0.7
    mask[:, 0] = True
    weights = NORMALIZERS[name](z.masked_fill(~mask, float("-inf")), -1)
    assert torch.isfinite(weights).all() and (weights >= 0).all()
    assert_close(weights.sum(-1), torch.ones(40, dtype=torch.float64))
    assert (weights[~mask] == 0).all()


@pytest.mark.parametrize("name", SPARSE)
def test_sparse_normalizers_give_exact_zeros_where_softmax_gives_none(name):
    z = torch.tensor([[3.0, 2.9, -1.0, -4.0]], dtype=torch.float64)
    weights = SPARSE[name](z)
    assert (weights[0, 2:] == 0).all() and (weights[0, :2] > 0).all()


@pytest.mark.parametrize("name", SPARSE)
def test_gradients_equal_finite_differences(name):
    z = (torch.randn(6, 7, dtype=torch.float64) * 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: SPARSE[name](x, -1), (z,))
    masked = z.detach().masked_fill(torch.arange(7) >= 5, float("-inf")).requires_grad_()
    (grad,) = torch.autograd.grad((SPARSE[name](masked) * torch.randn(6, 7)).sum(), masked)
    assert torch.isfinite(grad).all() and (grad[:, 5:] == 0).all()


@pytest.mark.parametrize("name", SPARSE)
def test_16_bit_energies_are_normalized_in_fp32(name):
    z = torch.randn(5, 8)
    assert_close(SPARSE[name](z.bfloat16()), SPARSE[name](z.bfloat16().float()))
    assert SPARSE[name](z.bfloat16()).dtype == torch.float32


def test_attention_names_an_unknown_normalizer():
    with pytest.raises(ValueError, match="normalizer='sparse': use one of softmax, sparsemax, entmax15"):
        Attention(DotScorer(4, 4), normalizer="sparse")


def test_a_sparse_normalizer_without_attention_is_refused():
    with pytest.raises(ValueError, match="normalizer='sparsemax' needs attention"):
        BahdanauDecoder(
            vocab_size=10,
            key_size=8,
            init_size=4,
            embedding_size=4,
            hidden_size=8,
            readout_size=4,
            normalizer="sparsemax",
        )
