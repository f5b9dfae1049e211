"""The decoders' building blocks: stacked GRU or LSTM cells stepped one at a time, and the deep output.

Under autocast (bf16/fp16) the gate matmuls run in low precision while the GRU update, and so
the state carried from step to step, stays in the state's dtype (see `nmt.modules.decoder`).
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.modules.dropout import Dropout
from nmt.modules.step_linear import StepLinear

RecurrentState = dict[str, torch.Tensor]
"""A stack's part of the decoder state: `hidden` (B, L, H), and for LSTMs `cell` (B, L, H)."""


class RecurrentStack(nn.Module):
    """Stacked recurrent cells advanced one step at a time; a subclass defines its gates.

    The first layer's input is [static; dynamic]: the static part (the target embedding) is
    known for all steps up front, so its gate projection runs once over the whole target.

    Args:
        static_size: size of the static input (embedding).
        dynamic_size: size of the per-step input (context or input feed); 0 for none.
        hidden_size: state size of every layer.
        num_layers: stacked layers.
        dropout: dropout between layers.
    """

    GATES = 0  # gate blocks of size H per layer

    def __init__(
        self, static_size: int, dynamic_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        gates = self.GATES * hidden_size
        self.static_to_gates = nn.Linear(static_size, gates)
        self.dynamic_to_gates = StepLinear(dynamic_size, gates, bias=False) if dynamic_size else None
        self.below_to_gates = nn.ModuleList(StepLinear(hidden_size, gates) for _ in range(num_layers - 1))
        self.hidden_to_gates = nn.ModuleList(StepLinear(hidden_size, gates) for _ in range(num_layers))
        self.dropout = Dropout(dropout)

    def precompute(self, static: torch.Tensor) -> torch.Tensor:
        """(..., static_size) -> (..., GATES x H): the static part of layer 1's gates."""
        return self.static_to_gates(static)

    def initial_state(self, hidden: torch.Tensor) -> RecurrentState:
        """The state to start from, given the initial hidden state (B, L, H)."""
        return {"hidden": hidden}

    def layer(
        self, from_input: torch.Tensor, from_hidden: torch.Tensor, state: RecurrentState, layer: int
    ) -> RecurrentState:
        """One layer's new state (each (B, H)) from its gates' input and state parts."""
        raise NotImplementedError

    def forward(
        self, static_gates: torch.Tensor, dynamic: torch.Tensor | None, state: RecurrentState
    ) -> RecurrentState:
        """One step: static_gates (B, GATES x H), dynamic (B, D) or None, the state -> the new state.

        The new state has the dtype of the old, whatever precision the gate projections ran in.
        """
        from_input = static_gates
        if self.dynamic_to_gates is not None:
            from_input = from_input + self.dynamic_to_gates(dynamic)
        layers: list[RecurrentState] = []
        for layer, hidden_to_gates in enumerate(self.hidden_to_gates):
            if layer > 0:
                from_input = self.below_to_gates[layer - 1](self.dropout(layers[-1]["hidden"]))
            layers.append(self.layer(from_input, hidden_to_gates(state["hidden"][:, layer]), state, layer))
        return {name: torch.stack([new[name] for new in layers], dim=1) for name in layers[0]}


class GRUStack(RecurrentStack):
    """Stacked GRU cells (Cho et al. 2014, as `nn.GRU`)."""

    GATES = 3  # reset, update, candidate

    @staticmethod
    def update(from_input: torch.Tensor, from_hidden: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The GRU equations: gates from the input (..., 3H) and from the state (..., 3H), each
        [reset; update; candidate], and the state (..., H) -> the new state, in the state's dtype."""
        # Gates from autocast matmuls may be bf16/fp16: do the update in the state's dtype so the
        # new state keeps it (see the module docstring).
        input_r, input_z, input_n = from_input.to(hidden.dtype).chunk(3, dim=-1)
        hidden_r, hidden_z, hidden_n = from_hidden.to(hidden.dtype).chunk(3, dim=-1)
        reset = torch.sigmoid(input_r + hidden_r)
        update = torch.sigmoid(input_z + hidden_z)
        candidate = torch.tanh(input_n + reset * hidden_n)
        return candidate + update * (hidden - candidate)  # (1 - z) n + z h

    def layer(
        self, from_input: torch.Tensor, from_hidden: torch.Tensor, state: RecurrentState, layer: int
    ) -> RecurrentState:
        return {"hidden": self.update(from_input, from_hidden, state["hidden"][:, layer])}


class LSTMStack(RecurrentStack):
    """Stacked LSTM cells (Hochreiter & Schmidhuber 1997, as `nn.LSTM`): the state carries the
    memory cell c beside h; the decoder starts it at zero."""

    GATES = 4  # input, forget, cell candidate, output (nn.LSTM's order)

    def initial_state(self, hidden: torch.Tensor) -> RecurrentState:
        return {"hidden": hidden, "cell": torch.zeros_like(hidden)}

    @staticmethod
    def update(
        from_input: torch.Tensor, from_hidden: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The LSTM equations: i, f, o = sigmoid(.), g = tanh(.) of the gates (..., 4H);
        c' = f c + i g, h' = o tanh(c'); in the state's dtype."""
        gates = from_input.to(hidden.dtype) + from_hidden.to(hidden.dtype)
        input_gate, forget, candidate, output = gates.chunk(4, dim=-1)
        cell = torch.sigmoid(forget) * cell + torch.sigmoid(input_gate) * torch.tanh(candidate)
        return torch.sigmoid(output) * torch.tanh(cell), cell

    def layer(
        self, from_input: torch.Tensor, from_hidden: torch.Tensor, state: RecurrentState, layer: int
    ) -> RecurrentState:
        hidden, cell = self.update(from_input, from_hidden, state["hidden"][:, layer], state["cell"][:, layer])
        return {"hidden": hidden, "cell": cell}


RECURRENT_STACKS: dict[str, type[RecurrentStack]] = {"gru": GRUStack, "lstm": LSTMStack}
"""`model.cell` -> the decoder's stack."""


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
