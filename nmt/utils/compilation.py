"""`torch.compile` for the few functions the project compiles: once per function, on first use.

The compiled steps and reductions (the encoder and decoder steps, the loss's row functions,
decoding's log normalizer) share one dynamo cache per function whoever calls them, and a process
that never compiles never imports dynamo (slow to import).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")

RECOMPILE_LIMIT = 64
"""Graphs dynamo may keep per compiled function. Torch's default, 8, is too few for the decoder
step of a training run: the training step, validation's fp32 forward and greedy search, the
test's bf16 beam search (one row per sentence at its first step, beam_size rows after), each
compiled apart, plus specializations on sizes and strides before they turn dynamic. Past the
limit dynamo runs the function eagerly from then on, silently slower."""


@functools.cache
def compiled(function: Callable[..., T]) -> Callable[..., T]:
    """`function` through `torch.compile` with dynamic sizes (one graph for every batch shape)."""
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    return torch.compile(function, dynamic=True)
