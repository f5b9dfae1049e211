"""`nmt.utils.precision`: the precision names, what `auto` chooses, and the weights cast once for a compiled step."""

import logging

import pytest
import torch
from torch import nn

from nmt.utils import precision as precision_module
from nmt.utils.precision import (
    PrecisionChoice,
    check_precision,
    choose_precision,
    emulation_slowdown,
    linear_weights_cast_once,
)


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inside = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.Linear(3, 2)))
        self.outside = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outside(self.inside(x))


def test_an_unknown_precision_names_its_key():
    with pytest.raises(ValueError, match=r"decode_precision='fp8': use one of auto, fp32, bf16, fp16"):
        check_precision("fp8", "decode_precision")


def test_inside_autocast_the_parts_linear_weights_are_differentiable_low_precision_copies():
    torch.manual_seed(0)
    model, x = _Model(), torch.randn(5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(x)
        expected_grads = torch.autograd.grad(expected.float().sum(), list(model.parameters()))
        with linear_weights_cast_once(model, [model.inside]):
            dtypes = [
                model.inside[0].weight.dtype,
                model.inside[1][0].weight.dtype,
                model.inside[0].bias.dtype,
                model.outside.weight.dtype,
            ]
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


@pytest.mark.parametrize(
    "device, bf16_native, expected",
    [("cpu", True, "bf16"), ("cpu", False, "fp32"), ("cuda", True, "bf16"), ("cuda", False, "fp16")],
)
def test_auto_chooses_by_what_the_hardware_runs_natively(monkeypatch, device, bf16_native, expected):
    """The capability is stubbed at the one function that asks torch; nothing else may guess."""
    monkeypatch.setattr(precision_module, "native_16_bit", lambda _, precision: precision == "fp16" or bf16_native)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "a GPU")
    choice = choose_precision("auto", device)
    assert choice.precision == expected
    assert choice.reason.startswith("auto: ") and ("natively" if bf16_native else "no native bf16") in choice.reason


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_named_precision_is_kept(monkeypatch, precision):
    monkeypatch.setattr(precision_module, "native_16_bit", lambda *_: True)
    assert choose_precision(precision, "cpu") == PrecisionChoice(precision, "as configured")


def test_bf16_forced_on_a_cpu_without_native_bf16_warns_once_with_the_measured_cost(monkeypatch, caplog):
    monkeypatch.setattr(precision_module, "native_16_bit", lambda *_: False)
    monkeypatch.setattr(precision_module, "emulation_slowdown", lambda precision: 41.7)
    precision_module._warn_emulated.cache_clear()
    with caplog.at_level(logging.WARNING, logger="nmt.utils.precision"):
        for _ in range(3):
            assert choose_precision("bf16", "cpu").precision == "bf16"
        choose_precision("fp32", "cpu")
    (warning,) = [record.getMessage() for record in caplog.records]
    assert "bf16" in warning and "42x slower than fp32" in warning and "\n" not in warning
    precision_module._warn_emulated.cache_clear()


def test_the_emulation_slowdown_is_a_measured_ratio():
    """Whatever the machine: a positive ratio of two timed products (about 1 or below where bf16
    is native, tens where it is emulated)."""
    assert 0 < emulation_slowdown("bf16", rows=8, inner=16, columns=16) < 1000
