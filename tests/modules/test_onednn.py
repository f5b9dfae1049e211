"""`nmt.modules.onednn`: a recurrent step's fp32 products on oneDNN compute what `F.linear` does."""

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from nmt.modules import onednn
from nmt.modules.step_linear import StepLinear, StepWeightGradients

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


@pytest.fixture(autouse=True)
def onednn_for_fp32(monkeypatch) -> None:
    """The op is checked on any CPU, not only where it is chosen (`fp32_pays`)."""
    monkeypatch.setattr(onednn, "_USE_FOR_FP32", torch.backends.mkldnn.is_available())


def ran_onednn(work: Callable[[], object]) -> bool:
    """Whether `work` called the custom op (eager or from a compiled graph)."""
    with torch.profiler.profile() as profile:
        work()
    return any(event.name == "nmt::onednn_linear" for event in profile.events())


@needs_onednn
def test_the_op_passes_torchs_custom_op_checks():
    """Schema, fake tensor (the shapes `torch.compile` traces with), autograd registration."""
    torch.library.opcheck(
        torch.ops.nmt.onednn_linear, (torch.randn(5, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True))
    )


@needs_onednn
def test_values_and_gradients_are_those_of_a_float64_product():
    """The oracle is `F.linear` in float64; a (B, 1, in) input as the attention query's, taken
    as a strided slice (a layer's part of a state), and a bias with the output's rows as a
    `StepLinear` stand-in is."""
    torch.manual_seed(0)
    state = torch.randn(6, 2, 40, requires_grad=True)
    weight = torch.randn(24, 40, requires_grad=True)
    bias = torch.randn(6, 1, 24, requires_grad=True)
    weights = torch.randn(6, 1, 24, dtype=torch.float64)
    for layer in (0, 1):
        input = state[:, layer : layer + 1]  # (6, 1, 40), rows 80 apart
        assert onednn.uses_onednn(input, weight)
        assert ran_onednn(lambda: onednn.linear(input, weight, bias))  # noqa: B023 - called at once
        output = onednn.linear(input, weight, bias)
        gradients = torch.autograd.grad((output * weights).sum(), [state, weight, bias])
        exact = [tensor.detach().double().requires_grad_() for tensor in (state, weight, bias)]
        expected = nn.functional.linear(exact[0][:, layer : layer + 1], *exact[1:])
        expected_gradients = torch.autograd.grad((expected * weights).sum(), exact)
        assert output.dtype == torch.float32 and output.shape == (6, 1, 24)
        assert_close(output.double(), expected, rtol=1e-5, atol=1e-5)
        for gradient, expected_gradient in zip(gradients, expected_gradients):
            assert_close(gradient.double(), expected_gradient, rtol=1e-5, atol=1e-5)


def test_it_is_chosen_where_torchs_cpu_capability_is_avx512(monkeypatch):
    """AVX2 alone: MKL's fp32 kernels are faster at the step's shapes, and the step uses them."""
    assert onednn.fp32_pays("AVX512") and not onednn.fp32_pays("AVX2") and not onednn.fp32_pays("DEFAULT")
    monkeypatch.setattr(onednn, "_USE_FOR_FP32", False)
    input, weight = torch.randn(5, 8), torch.randn(3, 8)
    assert not onednn.uses_onednn(input, weight) and not ran_onednn(lambda: onednn.linear(input, weight))


def test_other_products_are_torchs_own():
    """float64, bf16 autocast (whose products run on oneDNN through torch already) and oneDNN
    switched off go to `F.linear`."""
    torch.manual_seed(1)
    input, weight = torch.randn(5, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    assert not onednn.uses_onednn(input, weight) and not ran_onednn(lambda: onednn.linear(input, weight))
    input, weight = input.float(), weight.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not onednn.uses_onednn(input, weight) and not ran_onednn(lambda: onednn.linear(input, weight))
        assert onednn.linear(input, weight).dtype == torch.bfloat16
    with torch.backends.mkldnn.flags(enabled=False):
        assert not onednn.uses_onednn(input, weight) and not ran_onednn(lambda: onednn.linear(input, weight))


@needs_onednn
def test_a_compiled_step_gets_the_eager_weight_gradients():
    """A recurrence of `StepLinear` layers stepped through `torch.compile` with dynamic shapes,
    as the decoder's teacher-forced step runs (two batch sizes, one graph, the op inside it):
    each step's stand-in bias gets its own rows' gradient. (A graph break inside the step once
    gave every row the rows' mean instead; `fullgraph` makes one an error.)"""
    torch.manual_seed(2)
    layer = StepLinear(8, 24)

    def step(hidden: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(layer(hidden) + x)[:, :8]

    def gradients(run_step: Callable[..., torch.Tensor], rows: int) -> list[torch.Tensor]:
        inputs = torch.randn(4, rows, 24, generator=torch.Generator().manual_seed(rows))
        hidden, outputs = torch.full((rows, 8), 0.1), []
        with StepWeightGradients([layer], 4, rows, compiled=run_step is not step) as block:
            for x in inputs:
                with block.step():
                    hidden = run_step(hidden, x)
                outputs.append(hidden)
        return torch.autograd.grad(torch.stack(outputs).square().sum(), [layer.weight, layer.bias])

    torch._dynamo.reset()
    compiled_step = torch.compile(step, dynamic=True, fullgraph=True)
    for rows in (6, 5):
        assert ran_onednn(lambda: gradients(compiled_step, rows))  # noqa: B023 - called at once
        for compiled, eager in zip(gradients(compiled_step, rows), gradients(step, rows)):
            assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
