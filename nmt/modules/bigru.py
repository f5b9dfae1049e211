"""A bidirectional `nn.GRU` over a padded batch, stepped by hand: both directions advance in one
step, and the step runs through `torch.compile`.

Why: on the CPU, `nn.GRU` over packed sequences steps the two directions one after the other,
with its matmuls in fp32 whatever the autocast and its gate arithmetic unfused, and its backward
adds each step's input gradient into a full-size buffer. Here the input projections run once
over the whole source (in the autocast dtype), each step is one batched matmul for both
directions and one fused kernel, and the backward follows the same few operations per step.

The loop reads `nn.GRU`'s own parameters, so a checkpoint is the same whichever runs it. Padding
is handled by a mask rather than by packing: a direction's state stays where it is at padded
positions (the forward direction after a sentence ends, the backward one before it begins),
which is exactly what packing computes. Under autocast the state carried from step to step stays
in the parameters' dtype, as in the decoder (`nmt.modules.decoder`).
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.modules.cells import GRUStack
from nmt.modules.dropout import Dropout
from nmt.modules.step_linear import DeferredWeightGradient
from nmt.utils.compilation import compiled
from nmt.utils.precision import autocast_dtype


def _step(
    input_gates: torch.Tensor, hidden: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor, real: torch.Tensor
) -> torch.Tensor:
    """Both directions one step on: input gates (2, B, 3H), hidden (2, B, H), weight_hh (2, 3H, H),
    bias_hh (2, 1, 3H) or (2, B, 3H), real (2, B, 1) True where the position is a word -> hidden (2, B, H)."""
    hidden_gates = torch.baddbmm(bias_hh, hidden.to(weight_hh.dtype), weight_hh.transpose(1, 2))
    return torch.where(real, GRUStack.update(input_gates, hidden_gates, hidden), hidden)


def _parameters(gru: nn.GRU, suffix: str) -> dict[str, torch.Tensor]:
    """One direction of one layer: `nn.GRU`'s weight_ih, bias_ih, weight_hh and bias_hh named
    with `suffix` (`_l0`, `_l0_reverse`, ...)."""
    return {name: getattr(gru, name + suffix) for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh")}


def stepped_bidirectional_gru(
    gru: nn.GRU, inputs: torch.Tensor, mask: torch.Tensor, dropout: Dropout, compile_step: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """What `nn.GRU` (bidirectional, batch_first, with biases) returns for a padded batch.

    Args:
        gru: the module whose parameters are used.
        inputs: (B, S, E), padded.
        mask: (B, S) True at real positions; each row's real positions come first.
        dropout: applied to the outputs of every layer but the last (`nn.GRU`'s `dropout`).
        compile_step: run the step through `torch.compile`.

    Returns:
        outputs (B, S, 2H) (zero at padding) and final states (2 x layers, B, H), ordered as
        `nn.GRU`'s: layer 1 forward, layer 1 backward, layer 2 forward, ...
    """
    step = compiled(_step) if compile_step else _step
    dtype = autocast_dtype(inputs.device.type)
    real = torch.stack([mask, mask.flip(1)]).unsqueeze(-1).unbind(2)  # S x (2, B, 1), backward reversed
    finals = []
    for layer in range(gru.num_layers):
        if layer > 0:
            inputs = dropout(inputs)
        forward, backward = _parameters(gru, f"_l{layer}"), _parameters(gru, f"_l{layer}_reverse")
        # (2, B, S, 3H): the backward direction reads the source reversed
        input_gates = torch.stack(
            [
                nn.functional.linear(inputs, forward["weight_ih"], forward["bias_ih"]),
                nn.functional.linear(inputs.flip(1), backward["weight_ih"], backward["bias_ih"]),
            ]
        )
        weight_hh = torch.stack([forward["weight_hh"], backward["weight_hh"]])
        bias_hh = torch.stack([forward["bias_hh"], backward["bias_hh"]]).unsqueeze(1)
        if dtype is not None:  # cast once here, not at every step (see `nmt.utils.precision`)
            weight_hh, bias_hh = weight_hh.to(dtype), bias_hh.to(dtype)
        hidden = inputs.new_zeros(2, inputs.size(0), gru.hidden_size, dtype=gru.weight_hh_l0.dtype)
        states = []
        deferred = (
            DeferredWeightGradient(
                weight_hh, bias_hh, (2, inputs.size(0), 3 * gru.hidden_size), inputs.size(1), compile_step
            )
            if torch.is_grad_enabled()
            else None
        )
        for gates, is_real in zip(input_gates.unbind(2), real):  # unbind: one backward op, not S copies
            if deferred is not None:  # the state weights' gradient once over all steps (see `step_linear`)
                deferred.keep_input(hidden)
                hidden = step(gates, hidden, deferred.weight, deferred.next_bias(), is_real)
            else:
                hidden = step(gates, hidden, weight_hh, bias_hh, is_real)
            states.append(hidden)
        stacked = torch.stack(states, 2)  # (2, B, S, H)
        inputs = torch.cat([stacked[0], stacked[1].flip(1)], -1) * mask.unsqueeze(-1).to(stacked.dtype)
        finals += [hidden[0], hidden[1]]
    return inputs, torch.stack(finals)
