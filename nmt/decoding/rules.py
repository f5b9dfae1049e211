"""Search rules that both the PyTorch searches (`nmt.decoding.search`) and the torch-free ONNX
runtime (`nmt.decoding.onnx_runtime`) follow, in one place. Imports no torch: each penalty works
on Python numbers and on tensors alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nmt.data.tokenizer import BOS_ID, PAD_ID

NEVER_GENERATED = [PAD_ID, BOS_ID]
"""Symbols a translation never contains."""

LENGTH_PENALTIES: dict[str, Callable[[Any, float], Any]] = {
    "gnmt": lambda lengths, alpha: ((5.0 + lengths) / 6.0) ** alpha,  # Wu et al. 2016
    "average": lambda lengths, alpha: lengths * 1.0,
    "none": lambda lengths, alpha: lengths * 0.0 + 1.0,
}
"""lp(|Y|) of output lengths (EOS counted): a hypothesis scores log P(Y) / lp(|Y|)."""
