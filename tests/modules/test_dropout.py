"""`nmt.modules.dropout.Dropout`: nn.Dropout's function with a different CPU mask."""

import math

import pytest
import torch

from nmt.modules.dropout import Dropout


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_training_zeroes_a_share_p_and_scales_the_rest_by_one_over_one_minus_p(dtype):
    torch.manual_seed(0)
    p, n = 0.2, 400_000
    inputs = torch.rand(n, dtype=dtype) + 1  # no zeros of its own
    dropout = Dropout(p).train()
    outputs = dropout(inputs)
    assert outputs.dtype == dtype
    dropped = outputs == 0
    # Binomial(n, p): 5 standard deviations
    assert abs(dropped.float().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    kept = ~dropped
    expected = (inputs[kept].double() / (1 - p)).to(dtype)  # one rounding to the dtype
    torch.testing.assert_close(outputs[kept], expected, rtol=0, atol=0)
    # each half of the tensor drops its own share: the draws are not one value broadcast
    halves = dropped.view(2, -1).float().mean(1)
    assert torch.all((halves - p).abs() < 5 * math.sqrt(p * (1 - p) / (n / 2)))


def test_the_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(1)
    inputs = (torch.rand(64, 30) + 1).requires_grad_()
    outputs = Dropout(0.3).train()(inputs)
    outputs.backward(torch.full_like(outputs, 2.0))
    expected = torch.where(outputs != 0, 2.0 / 0.7, 0.0)
    torch.testing.assert_close(inputs.grad, expected)


def test_the_same_seed_draws_the_same_mask_and_evaluation_is_the_identity():
    inputs = torch.rand(32, 40) + 1
    dropout = Dropout(0.5).train()
    torch.manual_seed(7)
    first = dropout(inputs)
    torch.manual_seed(7)
    assert torch.equal(dropout(inputs), first)
    assert not torch.equal(dropout(inputs), first)  # the generator moved on
    assert dropout.eval()(inputs) is inputs
    assert Dropout(0.0).train()(inputs) is inputs


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_a_probability_outside_zero_to_one_is_refused(p):
    with pytest.raises(ValueError, match=f"dropout probability {p}"):
        Dropout(p)


def test_rows_at_positions_get_the_whole_tensors_mask_and_leave_the_generator_where_it_would():
    whole = torch.rand(10, 3, 7) + 1
    positions = torch.tensor([0, 2, 3, 7, 8, 9, 11, 12, 29])  # rows of `whole` flattened to (30, 7)
    dropout = Dropout(0.4).train()
    torch.manual_seed(3)
    expected = dropout(whole).flatten(0, 1)[positions]
    after = torch.rand(5)
    torch.manual_seed(3)
    rows = dropout.at_positions(whole.flatten(0, 1)[positions], positions, whole.shape[0] * whole.shape[1])
    assert torch.equal(rows, expected)
    assert torch.equal(torch.rand(5), after)
    assert (rows == 0).any() and (rows != 0).any()
