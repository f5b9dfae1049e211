"""`nmt.modules.step_linear`: weight gradients of a recurrence computed once over all steps."""

import gc
import weakref

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from nmt.modules.step_linear import DeferredWeightGradient, StepLinear, StepWeightGradients

ROWS, SIZE, STEPS = 3, 5, 4


class Recurrence(nn.Module):
    """h(t) = tanh(A h(t-1) + B x(t)), the query-shaped (B, 1, in) input for `A`."""

    def __init__(self, bias: bool) -> None:
        super().__init__()
        self.state_layer = StepLinear(SIZE, SIZE, bias=bias)
        self.input_layer = StepLinear(SIZE, SIZE, bias=False)

    def forward(self, inputs: torch.Tensor, hidden: torch.Tensor, deferred: bool) -> torch.Tensor:
        block = StepWeightGradients([self], STEPS, ROWS) if deferred else None
        outputs = []
        with block if block is not None else torch.enable_grad():
            for x in inputs.unbind(1):
                with block.step() if block is not None else torch.enable_grad():
                    hidden = torch.tanh(self.state_layer(hidden.unsqueeze(1)).squeeze(1) + self.input_layer(x))
                outputs.append(hidden)
        return torch.stack(outputs, 1)


@pytest.mark.parametrize("bias", [True, False])
def test_deferred_gradients_are_those_of_per_step_autograd(bias):
    """The oracle: the same recurrence outside a block, where autograd gives every step its own
    weight gradient; float64, the same outputs and the gradients of every parameter and input."""
    torch.manual_seed(0)
    model = Recurrence(bias).double()
    inputs = torch.randn(ROWS, STEPS, SIZE, dtype=torch.float64, requires_grad=True)
    hidden = torch.randn(ROWS, SIZE, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(ROWS, STEPS, SIZE, dtype=torch.float64)
    results = []
    for deferred in (False, True):
        outputs = model(inputs, hidden, deferred)
        gradients = torch.autograd.grad((outputs * weights).sum(), [*model.parameters(), inputs, hidden])
        results.append((outputs, gradients))
    (expected, expected_gradients), (outputs, gradients) = results
    assert_close(outputs, expected, rtol=0, atol=0)
    assert len(gradients) == (5 if bias else 4)  # the parameters, the inputs, the first state
    for gradient, expected_gradient in zip(gradients, expected_gradients):
        assert_close(gradient, expected_gradient, rtol=1e-12, atol=1e-12)
    assert all(layer.deferred is None for layer in (model.state_layer, model.input_layer))  # the block cleaned up


def test_a_deferred_batched_weight_gets_the_gradient_of_per_step_products():
    """A weight (2, out, in) applied with `torch.baddbmm`, as the encoder's recurrence does."""
    torch.manual_seed(1)
    weight = torch.randn(2, SIZE, SIZE, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, 1, SIZE, dtype=torch.float64, requires_grad=True)
    start = torch.randn(2, ROWS, SIZE, dtype=torch.float64)

    def run(deferred: bool) -> torch.Tensor:
        hidden = start
        deferral = DeferredWeightGradient(weight, bias, (2, ROWS, SIZE), STEPS) if deferred else None
        for _ in range(STEPS):
            if deferral is not None:
                deferral.keep_input(hidden)
                hidden = torch.tanh(torch.baddbmm(deferral.next_bias(), hidden, deferral.weight.transpose(1, 2)))
            else:
                hidden = torch.tanh(torch.baddbmm(bias, hidden, weight.transpose(1, 2)))
        return torch.autograd.grad(hidden.square().sum(), [weight, bias])

    for gradient, expected in zip(run(True), run(False)):
        assert_close(gradient, expected, rtol=1e-12, atol=1e-12)


def test_without_gradients_the_block_changes_nothing():
    model = Recurrence(bias=True)
    inputs, hidden = torch.randn(ROWS, STEPS, SIZE), torch.randn(ROWS, SIZE)
    with torch.no_grad():
        assert StepWeightGradients([model], STEPS, ROWS).layers == []
        assert_close(model(inputs, hidden, deferred=True), model(inputs, hidden, deferred=False), rtol=0, atol=0)


def test_a_layer_a_step_did_not_apply_is_an_error():
    model = Recurrence(bias=True)
    block = StepWeightGradients([model], STEPS, ROWS)
    with block, pytest.raises(RuntimeError, match="was not applied in a step"):
        with block.step():
            model.input_layer(torch.randn(ROWS, SIZE))


def test_the_graph_is_freed_without_the_garbage_collector():
    """Nothing the stand-ins' backward keeps may hold the graph that holds it: the kept inputs
    with their graph, or the stand-ins themselves, made reference cycles that lived until a
    garbage collection (about 480 and 900 MB more peak memory in training)."""
    layer = StepLinear(SIZE, SIZE)
    block = StepWeightGradients([layer], STEPS, ROWS)
    hidden, states = torch.randn(ROWS, SIZE, requires_grad=True), []
    gc.disable()
    try:
        with block:
            deferred = weakref.ref(layer.deferred)
            for _ in range(STEPS):
                with block.step():
                    hidden = torch.tanh(layer(hidden))
                states.append(weakref.ref(hidden))
        hidden.sum().backward()
        del hidden
        assert [state() for state in states] == [None] * STEPS
        assert deferred() is None  # nor the stand-ins it holds
    finally:
        gc.enable()
