"""Handing freed memory back to the operating system, so that a run's resident size tracks what
it uses rather than what it once used.

Training allocates tensors of a new shape for almost every batch (lengths vary), and under bf16
autocast oneDNN adds buffers per matmul shape. glibc's allocator keeps the freed blocks in its
heaps, fragmented, so the resident set of a bf16 CPU run grew with every update. `malloc_trim`
returns the free pages; the pages it returns are faulted back in by the next updates, so the
trainer calls it every `nmt.training.trainer.HEAP_TRIM_EVERY` updates, not every one.

The growth that trimming leaves is oneDNN's cache of compiled matmul primitives, one per shape
(default capacity 1024); a small capacity bounds it at the same speed. `bound_onednn_cache`
sets it for the process.

fp32 training (flat above, before it used oneDNN) now runs the teacher-forced decoder step's
products on oneDNN (`nmt.modules.onednn`): one primitive per product shape and direction, 4 for
`bahdanau` (the gates' and the query's products, forward and input gradient), reused at every
step. A decoder step with more distinct product shapes than the capacity (each forward and
input-gradient shape counts) would rebuild them at every step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

ONEDNN_CACHE_CAPACITY = 8


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


def trim_heap() -> None:
    """Returns the allocator's free pages to the operating system (glibc); elsewhere a no-op."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def bound_onednn_cache(capacity: int = ONEDNN_CACHE_CAPACITY) -> None:
    """Caps oneDNN's primitive cache (see the module docstring) unless the user has set
    ONEDNN_PRIMITIVE_CACHE_CAPACITY. oneDNN reads it at its first primitive, so entry points
    call this before any computation."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(capacity))
