"""Which torch device a run uses, from the `device` config key."""

from __future__ import annotations

import torch

from nmt.utils.errors import UserError


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present, else the CPU; `cpu`, `cuda`, `cuda:N` as given.

    Raises:
        UserError: for a malformed name or a CUDA device this machine does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device={name}: CUDA is not available on this machine (use device=cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device={name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise UserError(f"device={name!r}: use auto, cpu, cuda or cuda:N")
    return device
