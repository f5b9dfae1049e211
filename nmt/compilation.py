"""`torch.compile` for the few functions the project compiles: once per function, on first use.

The compiled steps and reductions (the decoder step, the loss's row functions, decoding's log
normalizer) share one dynamo cache per function whoever calls them, and a process that never
compiles never imports dynamo (slow to import).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


@functools.cache
def compiled(function: Callable[..., T]) -> Callable[..., T]:
    """`function` through `torch.compile` with dynamic sizes (one graph for every batch shape)."""
    return torch.compile(function, dynamic=True)
