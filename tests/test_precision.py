"""`nmt.precision`: the precision names and the weights cast once for a compiled step."""

import pytest
import torch
from torch import nn

from nmt.precision import check_precision, linear_weights_cast_once


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inside = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.Linear(3, 2)))
        self.outside = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outside(self.inside(x))


def test_an_unknown_precision_names_its_key():
    with pytest.raises(ValueError, match=r"decode_precision='fp8': use one of fp32, bf16, fp16"):
        check_precision("fp8", "decode_precision")


def test_inside_autocast_the_parts_linear_weights_are_differentiable_low_precision_copies():
    torch.manual_seed(0)
    model, x = _Model(), torch.randn(5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(x)
        expected_grads = torch.autograd.grad(expected.float().sum(), list(model.parameters()))
        with linear_weights_cast_once(model, [model.inside]):
            dtypes = [model.inside[0].weight.dtype, model.inside[1][0].weight.dtype, model.inside[0].bias.dtype,
                      model.outside.weight.dtype]
            actual = model(x)
        actual_grads = torch.autograd.grad(actual.float().sum(), list(model.parameters()))
    assert dtypes == [torch.bfloat16, torch.bfloat16, torch.float32, torch.float32]
    assert all(isinstance(p, nn.Parameter) and p.dtype == torch.float32 for p in model.parameters())  # restored
    assert torch.equal(actual, expected)  # the same casts autocast would have made
    for got, want in zip(actual_grads, expected_grads):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want)


def test_outside_autocast_the_weights_stay_the_parameters():
    model = _Model()
    with linear_weights_cast_once(model, [model.inside]):
        assert model.inside[0].weight is model.get_parameter("inside.0.weight")
        assert isinstance(model.inside[0].weight, nn.Parameter)
