"""Checkpoints: written atomically, read with `weights_only=True`, failures named by file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nmt.errors import UserError
from nmt.fileio import atomic_path


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Saves tensors, numbers, strings and containers of them; the old file survives a crash."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint without executing pickled code.

    Raises:
        UserError: if the file is missing or is not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(payload, dict) or "model" not in payload or "config" not in payload:
        raise UserError(f"{path}: not an nmt checkpoint (no model weights or config)")
    return payload
