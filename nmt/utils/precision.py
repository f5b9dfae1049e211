"""Numeric precision in one place: the names users write (auto, fp32, bf16, fp16), the choice
`auto` makes on the hardware at hand, and the autocast region each precision means, for
training and for decoding alike.

Under bf16/fp16 autocast the matrix multiplications run in 16 bits while parameters, the loss,
softmaxes and the decoder's recurrent state stay fp32 (see `nmt.modules.decoder`).

Why `auto` is the default: 16-bit products pay only where the hardware runs them natively. On
a CPU without native bf16 (AVX2 and plain AVX-512 parts: most laptops and older servers) oneDNN
has no bf16 kernels and torch falls back to a reference loop, tens of times slower than fp32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.stateless import _reparametrize_module

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = ("auto", *AUTOCAST_DTYPES)


def check_precision(precision: str, key: str) -> None:
    """Raises ValueError naming the config key `key` when `precision` is not a known name."""
    if precision not in PRECISIONS:
        raise ValueError(f"{key}={precision!r}: use one of {', '.join(PRECISIONS)}")


def native_16_bit(device: torch.device, precision: str) -> bool:
    """Whether `device` runs `precision`'s (bf16 or fp16) matrix products natively. The one
    place that asks torch about the hardware (tests stub it): on a GPU, CUDA's bf16 support
    (fp16 always); on a CPU, whether oneDNN has kernels for it (AVX512-BF16 or AMX for bf16,
    AVX512-FP16 or AMX-FP16 for fp16), which torch knows better than `/proc/cpuinfo` does."""
    if device.type == "cuda":
        return precision == "fp16" or torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        supported = {
            "bf16": torch.ops.mkldnn._is_mkldnn_bf16_supported,
            "fp16": torch.ops.mkldnn._is_mkldnn_fp16_supported,
        }
        return bool(supported[precision]())
    return False


@dataclass(frozen=True)
class PrecisionChoice:
    """A precision to run in (fp32, bf16 or fp16) and why, for the log and the run's records."""

    precision: str
    reason: str

    def __str__(self) -> str:
        return f"{self.precision} ({self.reason})"


def choose_precision(precision: str, device: torch.device | str) -> PrecisionChoice:
    """What `precision` means on `device`: itself, or for `auto` bf16 where the hardware runs
    it natively, else fp16 on a GPU (training adds the gradient scaler), else fp32. A 16-bit
    precision asked for on a CPU that does not run it natively is kept (tests need it) with a
    warning that says what it costs here (`warn_if_emulated`)."""
    device = torch.device(device)
    if precision != "auto":
        check_precision(precision, "precision")
        warn_if_emulated(precision, device)
        return PrecisionChoice(precision, "as configured")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"this CPU ({_cpu_capability()})"
    if native_16_bit(device, "bf16"):
        return PrecisionChoice("bf16", f"auto: {where} runs bf16 natively")
    if device.type == "cuda":
        return PrecisionChoice("fp16", f"auto: {where} has no native bf16")
    return PrecisionChoice("fp32", f"auto: {where} has no native bf16")


def _cpu_capability() -> str:
    return f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}"


def warn_if_emulated(precision: str, device: torch.device) -> None:
    """Warns, once per process and precision, when a 16-bit precision is asked for on a CPU
    that runs it without native kernels, with the slowdown measured here and now."""
    if device.type == "cpu" and precision != "fp32" and not native_16_bit(device, precision):
        _warn_emulated(precision)


@functools.cache
def _warn_emulated(precision: str) -> None:
    log.warning(
        "%s on this CPU (%s) has no native kernels: its matrix products ran %.0fx slower than fp32 in a "
        "measurement just now; use precision auto (fp32 here) unless you need %s",
        precision,
        _cpu_capability(),
        emulation_slowdown(precision),
        precision,
    )


def emulation_slowdown(precision: str, rows: int = 64, inner: int = 512, columns: int = 512) -> float:
    """How many times slower a (rows x inner) @ (inner x columns) product runs in `precision`
    than in fp32 on this CPU (at a decoder step's shape; the best of a few calls each)."""
    a, b = torch.randn(rows, inner), torch.randn(inner, columns)
    low_a, low_b = a.to(AUTOCAST_DTYPES[precision]), b.to(AUTOCAST_DTYPES[precision])
    return _best_seconds(lambda: low_a @ low_b) / _best_seconds(lambda: a @ b)


def _best_seconds(product: Callable[[], object], calls: int = 3) -> float:
    product()
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - start)
    return max(best, 1e-9)


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast region of `precision` on `device` (a no-op region for fp32)."""
    dtype = AUTOCAST_DTYPES[precision]
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast runs matrix multiplications in on `device_type` here; None outside
    autocast."""
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


def linear_weight_casts(root: nn.Module, parts: Iterable[nn.Module]) -> dict[str, torch.Tensor]:
    """The weights of the `nn.Linear` layers in `parts` (submodules of `root`) cast to the autocast
    dtype, by their names in `root`, for `with_weights`; empty outside autocast. The casts are
    differentiable (their gradients reach the parameters)."""
    dtype = autocast_dtype(next(root.parameters()).device.type)
    if dtype is None:
        return {}
    inside = {id(module) for part in parts for module in part.modules()}
    return {
        f"{name}.weight": module.weight.to(dtype)
        for name, module in root.named_modules()
        if isinstance(module, nn.Linear) and id(module) in inside
    }


def with_weights(root: nn.Module, tensors: dict[str, torch.Tensor]) -> contextlib.AbstractContextManager:
    """Inside the block, `root`'s parameters named in `tensors` are those tensors (the mechanism
    of `torch.func.functional_call`, torch's private `_reparametrize_module`, applied to a block
    of code instead of `forward`); with none, the block runs on the module as it is."""
    return _reparametrize_module(root, tensors) if tensors else contextlib.nullcontext()


@contextlib.contextmanager
def linear_weights_cast_once(root: nn.Module, parts: Iterable[nn.Module]) -> Iterator[None]:
    """Inside the block, the weights of the `nn.Linear` layers in `parts` (submodules of `root`)
    are copies in the autocast dtype, cast once on entry; outside autocast, a no-op.

    Why: eager autocast casts a weight once per autocast region (its cast cache), but inside a
    `torch.compile`d function called at every decoder step the casts are graph operations,
    repeated at every call, forward and backward. With the weights already in the autocast
    dtype those casts vanish. The copies are differentiable casts of the parameters, so the gradients reach the
    parameters as before, summed over the steps in the autocast dtype like those of autocast's
    own cached casts.
    """
    with with_weights(root, linear_weight_casts(root, parts)):
        yield
