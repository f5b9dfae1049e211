"""What the trainer reports while it trains: the figures since the last log line, written as
TensorBoard scalars (`train/...`) and one log line."""

from __future__ import annotations

import logging
import math
import resource
import time
from dataclasses import dataclass, field

import torch

from nmt.training.board import Board

log = logging.getLogger(__name__)


@dataclass
class Window:
    """Training figures since the last log line."""

    start: float = field(default_factory=time.monotonic)
    loss_sum: float = 0.0
    target_tokens: int = 0
    sentences: int = 0

    def add(self, token_loss: float, target_tokens: int, sentences: int) -> None:
        """Counts an update: its mean token loss over `target_tokens`, and its `sentences`."""
        self.loss_sum += token_loss * target_tokens
        self.target_tokens += target_tokens
        self.sentences += sentences

    @property
    def loss(self) -> float:
        """The mean token loss of the window's updates."""
        return self.loss_sum / max(self.target_tokens, 1)


def report(
    board: Board,
    window: Window,
    step: int,
    *,
    lr: float,
    grad_norm: float,
    skipped_steps: int,
    grad_scale: float | None,
    device: torch.device,
) -> None:
    """Writes the window's figures at `step`: loss, perplexity, learning rate, gradient norm
    (and fp16's gradient scale), throughput, peak memory, skipped updates."""
    seconds = max(time.monotonic() - window.start, 1e-9)
    scalars = {
        "loss": window.loss,
        "ppl": math.exp(min(window.loss, 100.0)),
        "lr": lr,
        "grad_norm": grad_norm,
        "tokens_per_s": window.target_tokens / seconds,
        "sentences_per_s": window.sentences / seconds,
        "peak_memory_mb": peak_memory_mb(device),
        "skipped_steps": skipped_steps,
    }
    if grad_scale is not None:
        scalars["grad_scale"] = grad_scale
    board.scalars("train", scalars, step)
    log.info(
        "step %d: loss %.3f lr %.3g grad norm %.2f, %.0f target tokens/s, %.0f sentences/s, peak %.0f MB",
        step,
        window.loss,
        lr,
        grad_norm,
        scalars["tokens_per_s"],
        scalars["sentences_per_s"],
        scalars["peak_memory_mb"],
    )


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: allocated tensors on CUDA, resident set size on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB
