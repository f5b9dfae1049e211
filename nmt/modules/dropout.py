"""Inverted dropout with a faster mask on the CPU."""

from __future__ import annotations

import torch
from torch import nn


class Dropout(nn.Module):
    """`nn.Dropout`'s function (in training, zero each element with probability p and scale the
    rest by 1 / (1 - p); in evaluation, the identity), with the mask drawn differently on the CPU.

    Why: on the CPU torch draws dropout's mask with `bernoulli_`, one scalar draw at a time,
    which made the dropouts of `+experiment=bahdanau` a visible share of a bf16 update.
    Thresholding uniform numbers draws the same Bernoulli(1 - p) mask vectorized. On other
    devices `F.dropout` (one fused kernel there) runs as it is.

    Args:
        p: probability of zeroing an element, in [0, 1).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability {p}: use a value in [0, 1)")
        self.p = p

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return inputs
        if inputs.device.type != "cpu":
            return nn.functional.dropout(inputs, self.p, training=True)
        return inputs * self._cpu_scale(inputs.shape).to(inputs.dtype)

    def at_positions(self, rows: torch.Tensor, positions: torch.Tensor, total_rows: int) -> torch.Tensor:
        """Dropout on `rows` (N, ...), the rows at `positions` (N,) of a (total_rows, ...) tensor:
        the mask is drawn for all `total_rows` rows and taken at `positions`, so the random
        numbers (this mask and every later draw) are those of dropout on the whole tensor.

        Why: the decoder computes its output layers at real target positions only, and that
        saving must not change a training run, random numbers included.
        """
        if not self.training or self.p == 0:
            return rows
        shape = (total_rows, *rows.shape[1:])
        if rows.device.type != "cpu":  # the draws of `F.dropout` on the whole tensor
            scale = nn.functional.dropout(rows.new_ones(shape), self.p, training=True)
        else:
            scale = self._cpu_scale(shape)
        return rows * scale.index_select(0, positions).to(rows.dtype)

    def _cpu_scale(self, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """The mask times 1 / (1 - p), from fp32 uniforms whatever the input's dtype: bf16
        uniforms take only 256 values in [0, 1)."""
        return torch.empty(shape, dtype=torch.float32).uniform_().ge_(self.p).mul_(1 / (1 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"
