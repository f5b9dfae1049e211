"""`nmt.modules.onednn`: a recurrent step's fp32 products on oneDNN compute what `F.linear` does."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from nmt.modules import onednn
from nmt.modules.step_linear import StepLinear, StepWeightGradients

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def test_values_and_gradients_are_those_of_a_float64_product():
    """The oracle is `F.linear` in float64; a (B, 1, in) input as the attention query's, and a
    bias with the output's rows as a `StepLinear` stand-in is."""
    torch.manual_seed(0)
    input = torch.randn(6, 1, 40, requires_grad=True)
    weight = torch.randn(24, 40, requires_grad=True)
    bias = torch.randn(6, 1, 24, requires_grad=True)
    assert onednn.uses_onednn(input, weight)
    output = onednn.linear(input, weight, bias)
    weights = torch.randn(6, 1, 24, dtype=torch.float64)
    gradients = torch.autograd.grad((output * weights).sum(), [input, weight, bias])
    exact = [tensor.detach().double().requires_grad_() for tensor in (input, weight, bias)]
    expected = nn.functional.linear(*exact)
    expected_gradients = torch.autograd.grad((expected * weights).sum(), exact)
    assert output.dtype == torch.float32 and output.shape == (6, 1, 24)
    assert_close(output.double(), expected, rtol=1e-5, atol=1e-5)
    for gradient, expected_gradient in zip(gradients, expected_gradients):
        assert_close(gradient.double(), expected_gradient, rtol=1e-5, atol=1e-5)


def test_other_products_are_torchs_own():
    """float64, and bf16 autocast (whose products run on oneDNN through torch already), give
    exactly what `F.linear` gives."""
    torch.manual_seed(1)
    input, weight = torch.randn(5, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    assert not onednn.uses_onednn(input, weight)
    assert torch.equal(onednn.linear(input, weight), nn.functional.linear(input, weight))
    input, weight = input.float(), weight.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not onednn.uses_onednn(input, weight)
        output = onednn.linear(input, weight)
        assert output.dtype == torch.bfloat16
        assert torch.equal(output, nn.functional.linear(input, weight))


def test_a_compiled_step_gets_the_eager_weight_gradients():
    """A recurrence of `StepLinear` layers stepped through `torch.compile` with dynamic shapes,
    as the decoder's teacher-forced step runs: each step's stand-in bias gets its own rows'
    gradient. (A graph break inside the step once gave every row the rows' mean instead.)"""
    torch.manual_seed(2)
    layer = StepLinear(8, 24)
    inputs = torch.randn(4, 6, 24)

    def step(hidden: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(layer(hidden) + x)[:, :8]

    def gradients(run_step) -> list[torch.Tensor]:
        hidden, outputs = torch.full((6, 8), 0.1), []
        with StepWeightGradients([layer], 4, 6, compiled=run_step is not step) as block:
            for x in inputs:
                with block.step():
                    hidden = run_step(hidden, x)
                outputs.append(hidden)
        return torch.autograd.grad(torch.stack(outputs).square().sum(), [layer.weight, layer.bias])

    torch._dynamo.reset()
    for compiled, eager in zip(gradients(torch.compile(step, dynamic=True)), gradients(step)):
        assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
