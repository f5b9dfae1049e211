"""Numeric precision in one place: the names users write (fp32, bf16, fp16) and the autocast
region each one means, for training and for decoding alike.

Under bf16/fp16 autocast the matrix multiplications run in 16 bits while parameters, the loss,
softmaxes and the decoder's recurrent state stay fp32 (see `nmt.modules.decoder`).
"""

from __future__ import annotations

import contextlib

import torch

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, key: str) -> None:
    """Raises ValueError naming the config key `key` when `precision` is not a known name."""
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"{key}={precision!r}: use one of {', '.join(AUTOCAST_DTYPES)}")


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast region of `precision` on `device` (a no-op region for fp32)."""
    dtype = AUTOCAST_DTYPES[precision]
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)
