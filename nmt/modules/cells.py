"""The decoders' building blocks: stacked GRU cells stepped one at a time, and the deep output.

Under autocast (bf16/fp16) the gate matmuls run in low precision while the GRU update, and so
the state carried from step to step, stays in the state's dtype (see `nmt.modules.decoder`).
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.modules.dropout import Dropout
from nmt.modules.step_linear import StepLinear


class GRUStack(nn.Module):
    """Stacked GRU cells advanced one step at a time.

    The first layer's input is [static; dynamic]: the static part (the target embedding) is
    known for all steps up front, so its gate projection runs once over the whole target.

    Args:
        static_size: size of the static input (embedding).
        dynamic_size: size of the per-step input (context or input feed); 0 for none.
        hidden_size: state size of every layer.
        num_layers: stacked layers.
        dropout: dropout between layers.
    """

    def __init__(
        self, static_size: int, dynamic_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.static_to_gates = nn.Linear(static_size, 3 * hidden_size)
        self.dynamic_to_gates = StepLinear(dynamic_size, 3 * hidden_size, bias=False) if dynamic_size else None
        self.below_to_gates = nn.ModuleList(StepLinear(hidden_size, 3 * hidden_size) for _ in range(num_layers - 1))
        self.hidden_to_gates = nn.ModuleList(StepLinear(hidden_size, 3 * hidden_size) for _ in range(num_layers))
        self.dropout = Dropout(dropout)

    def precompute(self, static: torch.Tensor) -> torch.Tensor:
        """(..., static_size) -> (..., 3H): the static part of layer 1's gates."""
        return self.static_to_gates(static)

    @staticmethod
    def update(from_input: torch.Tensor, from_hidden: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The GRU equations (Cho et al. 2014, as `nn.GRU`): gates from the input (..., 3H) and
        from the state (..., 3H), each [reset; update; candidate], and the state (..., H) -> the
        new state, in the state's dtype."""
        # Gates from autocast matmuls may be bf16/fp16: do the update in the state's dtype so the
        # new state keeps it (see the module docstring).
        input_r, input_z, input_n = from_input.to(hidden.dtype).chunk(3, dim=-1)
        hidden_r, hidden_z, hidden_n = from_hidden.to(hidden.dtype).chunk(3, dim=-1)
        reset = torch.sigmoid(input_r + hidden_r)
        update = torch.sigmoid(input_z + hidden_z)
        candidate = torch.tanh(input_n + reset * hidden_n)
        return candidate + update * (hidden - candidate)  # (1 - z) n + z h

    def forward(self, static_gates: torch.Tensor, dynamic: torch.Tensor | None, hidden: torch.Tensor) -> torch.Tensor:
        """One step: static_gates (B, 3H), dynamic (B, D) or None, hidden (B, L, H) -> (B, L, H).

        The new state has the dtype of `hidden`, whatever precision the gate projections ran in.
        """
        from_input = static_gates
        if self.dynamic_to_gates is not None:
            from_input = from_input + self.dynamic_to_gates(dynamic)
        layers = []
        for layer, hidden_to_gates in enumerate(self.hidden_to_gates):
            if layer > 0:
                from_input = self.below_to_gates[layer - 1](self.dropout(layers[-1]))
            layers.append(self.update(from_input, hidden_to_gates(hidden[:, layer]), hidden[:, layer]))
        return torch.stack(layers, dim=1)


class DeepOutput(nn.Module):
    """t = maxout(W x) over pairs (the paper) or tanh(W x).

    Args:
        input_size: size of x.
        output_size: size of t.
        activation: `maxout` or `tanh`.
    """

    def __init__(self, input_size: int, output_size: int, activation: str = "maxout") -> None:
        super().__init__()
        if activation not in ("maxout", "tanh"):
            raise ValueError(f"deep_output={activation!r}: use maxout or tanh")
        self.maxout = activation == "maxout"
        self.linear = nn.Linear(input_size, output_size * (2 if self.maxout else 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.linear(features)
        return hidden.unflatten(-1, (-1, 2)).amax(-1) if self.maxout else torch.tanh(hidden)
