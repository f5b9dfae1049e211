"""Every random generator's state, saved in checkpoints so a resumed run draws the same numbers.

States are plain bytes, ints and tuples: checkpoints load them with `weights_only=True`, and
torch.distributed gathers them from every rank as plain objects.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """The states of Python's, numpy's, torch's CPU and (when present) the current CUDA device's
    generator."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, keys.tobytes(), position, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state().numpy().tobytes(),
        # this process's GPU only: a machine with fewer GPUs can resume it, and under DDP each rank has one
        "cuda": torch.cuda.get_rng_state().numpy().tobytes() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores the generators saved by `rng_state`."""
    random.setstate(state["python"])
    kind, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((kind, np.frombuffer(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(_byte_tensor(state["torch"]))
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(_byte_tensor(state["cuda"]))


def _byte_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's and torch's generators: with the same seed, CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
