"""The Bahdanau attention decoder (Bahdanau et al. 2015, appendix A.2).

At step i the previous state s(i-1) queries the attention, giving the context c(i); the GRU
takes [E y(i-1); c(i)] and s(i-1) to give s(i); a deep output layer over [s(i); c(i); E y(i-1)]
feeds the vocabulary softmax.

Everything that does not depend on the recurrence runs outside the step loop: the key
projection (once per batch, `start`), the embedding part of the GRU input (once for all
steps), and the deep output and vocabulary projection (once, over all steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nmt.modules.attention import Attention, Scorer
from nmt.modules.encoder import EncoderOutput
from nmt.tokenizer import PAD_ID

DecoderState = dict[str, torch.Tensor]
"""Recurrent state carried between steps; every tensor has the batch in dimension 0."""


def select_state(state: DecoderState, index: torch.Tensor) -> DecoderState:
    """Reorders (or repeats) the batch rows of a state, e.g. to follow beam backpointers."""
    return {name: tensor.index_select(0, index) for name, tensor in state.items()}


@dataclass
class Memory:
    """Source-side tensors read at every decoder step, computed once per batch.

    Attributes:
        keys: (B, S, *) the scorer's precomputed keys.
        values: (B, S, K) encoder annotations.
        mask: (B, S) True at real source positions.
    """

    keys: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor

    def index_select(self, index: torch.Tensor) -> Memory:
        return Memory(self.keys.index_select(0, index), self.values.index_select(0, index),
                      self.mask.index_select(0, index))


class DeepOutput(nn.Module):
    """Deep output layer t = maxout(W [s; c; E y]) (or tanh), then vocabulary logits.

    Args:
        input_size: size of [s(i); c(i); E y(i-1)].
        readout_size: size of t (the paper's l).
        vocab_size: target vocabulary size.
        activation: `maxout` (pairs, as in the paper) or `tanh`.
        dropout: dropout on t.
    """

    def __init__(self, input_size: int, readout_size: int, vocab_size: int,
                 activation: str = "maxout", dropout: float = 0.0) -> None:
        super().__init__()
        if activation not in ("maxout", "tanh"):
            raise ValueError(f"deep output activation {activation!r}: use maxout or tanh")
        self.maxout = activation == "maxout"
        self.hidden = nn.Linear(input_size, readout_size * (2 if self.maxout else 1))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(readout_size, vocab_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., input_size) -> logits (..., vocab_size)."""
        hidden = self.hidden(features)
        if self.maxout:
            hidden = hidden.unflatten(-1, (-1, 2)).amax(-1)  # (..., R)
        else:
            hidden = torch.tanh(hidden)
        return self.output(self.dropout(hidden))


class BahdanauDecoder(nn.Module):
    """GRU decoder that attends with s(i-1) before its step (the paper's RNNsearch decoder).

    Args:
        vocab_size: target vocabulary size.
        key_size: size of the encoder annotations (2H for a bidirectional encoder).
        init_size: size of the encoder summary the initial state is computed from.
        embedding_size: size of the target word embeddings.
        hidden_size: GRU state size.
        scorer: builds the attention scorer from (query_size, key_size); a Hydra partial.
        readout_size: size of the deep output layer.
        deep_output: `maxout` or `tanh`.
        dropout: dropout on target embeddings and on the deep output.
    """

    def __init__(self, vocab_size: int, key_size: int, init_size: int, embedding_size: int,
                 hidden_size: int, scorer: Callable[..., Scorer], readout_size: int,
                 deep_output: str = "maxout", dropout: float = 0.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(dropout)
        self.attention = Attention(scorer(query_size=hidden_size, key_size=key_size))
        self.init_state = nn.Linear(init_size, hidden_size)
        # GRU weights, split by input so the embedding part runs once for all steps.
        self.embedding_to_gates = nn.Linear(embedding_size, 3 * hidden_size)
        self.context_to_gates = nn.Linear(key_size, 3 * hidden_size, bias=False)
        self.hidden_to_gates = nn.Linear(hidden_size, 3 * hidden_size)
        self.deep_output = DeepOutput(hidden_size + key_size + embedding_size, readout_size,
                                      vocab_size, deep_output, dropout)

    def start(self, encoded: EncoderOutput) -> tuple[Memory, DecoderState]:
        """Precomputes the attention keys and the initial state s(0) = tanh(W_s backward h(1))."""
        memory = Memory(self.attention.precompute(encoded.states), encoded.states, encoded.mask)
        return memory, {"hidden": torch.tanh(self.init_state(encoded.final_backward))}

    def step(self, input_gates: torch.Tensor, state: DecoderState, memory: Memory
             ) -> tuple[DecoderState, torch.Tensor, torch.Tensor]:
        """One recurrence step.

        Args:
            input_gates: (B, 3H) embedding part of the GRU input for y(i-1).
            state: holds `hidden` s(i-1), (B, H).
            memory: the batch's source side.

        Returns:
            The new state with s(i), the context c(i) (B, K), and the weights alpha(i) (B, S).
        """
        hidden = state["hidden"]
        context, weights = self.attention(hidden, memory.keys, memory.values, memory.mask)
        from_input = input_gates + self.context_to_gates(context)  # (B, 3H)
        from_hidden = self.hidden_to_gates(hidden)  # (B, 3H)
        input_r, input_z, input_n = from_input.chunk(3, dim=-1)
        hidden_r, hidden_z, hidden_n = from_hidden.chunk(3, dim=-1)
        reset = torch.sigmoid(input_r + hidden_r)
        update = torch.sigmoid(input_z + hidden_z)
        candidate = torch.tanh(input_n + reset * hidden_n)
        hidden = candidate + update * (hidden - candidate)  # (1 - z) n + z s(i-1)
        return {"hidden": hidden}, context, weights

    def forward(self, tgt_in: torch.Tensor, state: DecoderState, memory: Memory
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced decoding of a whole target.

        Args:
            tgt_in: (B, T) BOS + target ids.

        Returns:
            logits (B, T, V) and attention weights (B, T, S).
        """
        embedded = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        input_gates = self.embedding_to_gates(embedded)  # (B, T, 3H)
        hiddens, contexts, weights = [], [], []
        for step_gates in input_gates.unbind(1):  # unbind: one backward op, not T slice copies
            state, context, alpha = self.step(step_gates, state, memory)
            hiddens.append(state["hidden"])
            contexts.append(context)
            weights.append(alpha)
        features = torch.cat([torch.stack(hiddens, 1), torch.stack(contexts, 1), embedded], dim=-1)
        return self.deep_output(features), torch.stack(weights, 1)

    def decode_step(self, prev_tokens: torch.Tensor, state: DecoderState, memory: Memory
                    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One step of free-running decoding: y(i-1) (B,) -> logits (B, V), state, alpha (B, S)."""
        embedded = self.embedding(prev_tokens)  # (B, E)
        state, context, weights = self.step(self.embedding_to_gates(embedded), state, memory)
        logits = self.deep_output(torch.cat([state["hidden"], context, embedded], dim=-1))
        return logits, state, weights
