"""Attention decoders: the shared recurrent machinery and the two styles.

`bahdanau` (Bahdanau et al. 2015): s(i-1) queries the attention before the RNN step, the context
enters the GRU input, and a deep output layer over [s(i); c(i); E y(i-1)] feeds the softmax.
`luong` (Luong et al. 2015): the RNN steps first, s(t) queries the attention, and the attentional
state h~(t) = tanh(W_c [c(t); s(t)]) feeds the softmax (and, with input feeding, the next step).

Work that does not depend on the recurrence runs outside the step loop: the scorer's key
projection (once per batch, in `start`), the embedding part of the first GRU layer's input
(once for all steps), the output layers (once, over all steps), and, in training, the weight
gradients of the step's linear layers (once over all steps, `nmt.modules.step_linear`).

Under autocast (bf16/fp16) the matmuls run in low precision, but everything carried from step to
step (`DecoderState`) stays in the parameters' dtype: a state rounded to bf16's 8-bit mantissa and
fed back every step compounds that rounding over a whole sentence. This costs a few (B, H) casts
per step; without autocast the casts are no-ops.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nmt.data.tokenizer import PAD_ID
from nmt.modules.attention import Attention, FixedContext, Scorer
from nmt.modules.cells import RECURRENT_STACKS, DeepOutput
from nmt.modules.dropout import Dropout
from nmt.modules.encoder import EncoderOutput
from nmt.modules.step_linear import StepLinear, StepWeightGradients
from nmt.utils.compilation import compiled
from nmt.utils.precision import autocast_dtype, linear_weight_casts, linear_weights_cast_once, with_weights

DecoderState = dict[str, torch.Tensor]
"""Recurrent state carried between steps; every tensor has the batch in dimension 0."""
StepFunction = Callable[..., tuple[DecoderState, torch.Tensor, torch.Tensor]]
"""`RecurrentDecoder.step`'s signature: (static_gates, state, memory) -> (state, features, weights)."""


@dataclass
class Memory:
    """Source-side tensors read at every decoder step, computed once per batch.

    Attributes:
        keys: (B, S, *) the scorer's precomputed keys (one row per sentence; the state may have
            G rows per sentence, see `nmt.modules.attention`).
        values: (B, S, K) encoder annotations (in the autocast dtype under autocast, see `start`).
        mask: (B, S) True at real source positions.
        step_weights: the step's linear weights in the autocast dtype, cast once per batch, when
            decoding runs the compiled step (`compile_decoding`); else empty.
    """

    keys: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor
    step_weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def index_select(self, index: torch.Tensor) -> Memory:
        """Reorders (or repeats) the batch rows, e.g. one copy per beam."""
        return Memory(
            self.keys.index_select(0, index),
            self.values.index_select(0, index),
            self.mask.index_select(0, index),
            self.step_weights,
        )


class RecurrentDecoder(nn.Module):
    """What both decoder styles share: embeddings, attention, initial state, the step loop,
    the vocabulary projection. A style defines `step` and `readout`.

    Args:
        vocab_size: target vocabulary size.
        key_size: size of the encoder annotations (2H for a bidirectional encoder).
        init_size: size of the encoder summary the initial state is computed from.
        embedding_size: size of the target word embeddings.
        hidden_size: GRU state size (every layer).
        num_layers: stacked GRU layers.
        scorer: builds the attention scorer from (query_size, key_size); None: no attention,
            a fixed context from the encoder's final states (the RNNencdec baseline).
        dynamic_size: size of layer 1's per-step input.
        readout_size: size of the features the vocabulary projection reads.
        tie_embeddings: share the target embedding matrix with the vocabulary projection
            (needs readout_size == embedding_size).
        embedding_dropout: dropout on the target embeddings.
        hidden_dropout: dropout between GRU layers and on the RNN outputs.
        output_dropout: dropout on the readout.
        normalizer: how the attention turns energies into weights: `softmax`, `sparsemax` or
            `entmax15` (`nmt.modules.normalizers`).
        cell: `gru` or `lstm` (`nmt.modules.cells`); an LSTM carries its memory cell in the
            state, starting at zero.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        key_size: int,
        init_size: int,
        embedding_size: int,
        hidden_size: int,
        dynamic_size: int,
        readout_size: int,
        num_layers: int = 1,
        scorer: Callable[..., Scorer] | None = None,
        tie_embeddings: bool = False,
        embedding_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
        output_dropout: float = 0.0,
        normalizer: str = "softmax",
        cell: str = "gru",
    ) -> None:
        super().__init__()
        if cell not in RECURRENT_STACKS:
            raise ValueError(f"cell={cell!r}: use one of {', '.join(RECURRENT_STACKS)}")
        if scorer is None and normalizer != "softmax":
            raise ValueError(
                f"normalizer={normalizer!r} needs attention (model/attention is null: no weights to normalize)"
            )
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD_ID)
        self.embedding_dropout = Dropout(embedding_dropout)
        self.hidden_dropout = Dropout(hidden_dropout)
        self.output_dropout = Dropout(output_dropout)
        self.attention = (
            Attention(scorer(query_size=hidden_size, key_size=key_size), normalizer)
            if scorer is not None
            else FixedContext(2 * init_size, key_size)
        )
        self.init_state = nn.Linear(init_size, num_layers * hidden_size)
        self.rnn = RECURRENT_STACKS[cell](embedding_size, dynamic_size, hidden_size, num_layers, hidden_dropout)
        self.generator = nn.Linear(readout_size, vocab_size)
        self.compiled_teacher_forcing = self.compiled_decoding = False  # see the two methods below
        if tie_embeddings:
            if readout_size != embedding_size:
                raise ValueError(
                    f"tie_embeddings needs the readout size ({readout_size}) to equal the "
                    f"embedding size ({embedding_size})"
                )
            # N(0, 1/d) rather than nn.Embedding's N(0, 1): as output weights, unit-variance rows
            # give logits with a standard deviation of about sqrt(d) times the readout's, and a
            # first loss far above log(V)
            nn.init.normal_(self.embedding.weight, std=embedding_size**-0.5)
            with torch.no_grad():
                self.embedding.weight[PAD_ID].zero_()
            self.generator.weight = self.embedding.weight

    def compile_teacher_forcing(self) -> None:
        """Runs `step` through `torch.compile` in the teacher-forced forward (training, validation
        loss).

        Why the step and not the whole forward: the step is the unit repeated at every target
        position, so one graph with dynamic sizes serves every batch, where the whole forward
        unrolls the loop and recompiles for every target length. The step's elementwise work
        (attention energies, softmax, GRU gates and their backward) becomes a few fused kernels.
        Under autocast the step's weights enter the graph already cast, once per forward
        (`linear_weights_cast_once`), as eager autocast's cache would have them.
        Compiles the unbound method, so a copy of the module (`copy.deepcopy`) steps itself, not
        the original.
        """
        self.compiled_teacher_forcing = True

    def compile_decoding(self) -> None:
        """Runs `step` through `torch.compile` in free-running decoding (`decode_step`) too, with
        the weights cast once per batch (`start` keeps them in the memory): with the casts inside
        the graph at every step, compiled decoding was slower than eager. The fused kernels round
        less than eager bf16 does, so the output may differ in a few sentences.
        """
        self.compiled_decoding = True

    def _step_modules(self) -> list[nn.Module]:
        """The modules whose linear layers `step` uses."""
        return [self.attention, self.rnn]

    def start(self, encoded: EncoderOutput) -> tuple[Memory, DecoderState]:
        """Precomputes the attention keys and the initial state s(0) = tanh(W_s backward h(1)).

        The state is in the parameters' dtype even under autocast (see the module docstring).
        Under autocast the values (the annotations the context averages) are cast to its dtype
        here, once per batch: autocast's `bmm` would cast them at every step, a (B, S, 2H) pass
        (and, in training, a (B, S, 2H) copy kept for the backward) per step; the context is the
        same. Their gradient is then summed over the steps in that dtype, like the keys'.
        """
        # Free-running decoding runs without gradients; the teacher-forced forward casts its own.
        decoding = self.compiled_decoding and not torch.is_grad_enabled()
        step_weights = linear_weight_casts(self, self._step_modules()) if decoding else {}
        values_dtype = autocast_dtype(encoded.states.device.type) or encoded.states.dtype
        memory = Memory(self.attention.precompute(encoded), encoded.states.to(values_dtype), encoded.mask, step_weights)
        projected = self.init_state(encoded.final_backward).to(self.init_state.weight.dtype)
        hidden = torch.tanh(projected).unflatten(-1, (self.num_layers, -1))
        state = self.rnn.initial_state(hidden)  # hidden (B, L, H) (and an LSTM's zero cell)
        if self.attention.uses_coverage:
            state["coverage"] = torch.zeros_like(encoded.mask, dtype=hidden.dtype)  # (B, S)
        return memory, state

    def reorder(
        self, memory: Memory | None, state: DecoderState | None, index: torch.Tensor
    ) -> tuple[Memory | None, DecoderState | None]:
        """Selects (or repeats) batch rows of the memory and the state: index (N',) of rows. One
        given as None stays None (beam search moves the state's rows at every step, the
        memory's, one per sentence, only when sentences leave)."""
        memory = memory.index_select(index) if memory is not None else None
        return memory, None if state is None else {
            name: tensor.index_select(0, index) for name, tensor in state.items()
        }

    def attend(
        self, query: torch.Tensor, state: DecoderState, memory: Memory
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """Context and weights for `query`; the returned state entries carry the coverage on."""
        coverage = state.get("coverage")
        context, weights = self.attention(query, memory.keys, memory.values, memory.mask, coverage)
        carried = {"coverage": coverage + weights.to(coverage.dtype)} if coverage is not None else {}
        return context, weights, carried

    def step(
        self, static_gates: torch.Tensor, state: DecoderState, memory: Memory
    ) -> tuple[DecoderState, torch.Tensor, torch.Tensor]:
        """One step: static_gates (B, 3H) -> new state, step features (B, F), weights (B, S)."""
        raise NotImplementedError

    def readout(self, features: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        """Step features (..., F) and input embeddings (..., E) -> readout (..., readout_size)."""
        raise NotImplementedError

    def forward(
        self, tgt_in: torch.Tensor, state: DecoderState, memory: Memory, positions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced decoding of a whole target.

        Args:
            tgt_in: (B, T) BOS + target ids.
            positions: (N,) positions of the (B, T) target flattened at which to compute the
                logits (the loss's: not at padding, where the output layers, the costliest
                products of an update, would be wasted); None: everywhere.

        Returns:
            logits (B, T, V), or (N, V) at `positions`, and attention weights (B, T, S).
        """
        embedded = self.embedding_dropout(self.embedding(tgt_in))  # (B, T, E)
        step_features, weights = [], []
        with self._teacher_forced_steps(*tgt_in.shape) as step:
            for static_gates in self.rnn.precompute(embedded).unbind(1):  # unbind: one backward op, not T copies
                state, features, alpha = step(static_gates, state, memory)
                step_features.append(features)
                weights.append(alpha)
        features = torch.stack(step_features, 1)  # (B, T, F)
        if positions is None:
            readout = self.output_dropout(self.readout(features, embedded))  # (B, T, R)
        else:
            features, embedded = (part.flatten(0, 1).index_select(0, positions) for part in (features, embedded))
            readout = self.readout(features, embedded)  # (N, R)
            readout = self.output_dropout.at_positions(readout, positions, tgt_in.numel())
        return self.generator(readout), torch.stack(weights, 1)

    @contextlib.contextmanager
    def _teacher_forced_steps(self, batch: int, steps: int) -> Iterator[StepFunction]:
        """`step` for the `steps` positions of a teacher-forced pass, with the speed machinery
        behind it: under autocast the step's weights cast once for all steps
        (`linear_weights_cast_once`); in training their weight gradients computed once over all
        steps (`StepWeightGradients`); the step compiled when asked (`compile_teacher_forcing`)."""
        step = functools.partial(compiled(type(self).step), self) if self.compiled_teacher_forcing else self.step
        deferral = StepWeightGradients(self._step_modules(), steps, batch, self.compiled_teacher_forcing)
        with linear_weights_cast_once(self, self._step_modules()), deferral:  # deferral after the casts: it reads them

            def deferred_step(*args: Any) -> tuple[DecoderState, torch.Tensor, torch.Tensor]:
                with deferral.step():
                    return step(*args)

            yield deferred_step

    @contextlib.contextmanager
    def _decoding_step(self, memory: Memory) -> Iterator[StepFunction]:
        """`step` for free-running decoding: compiled, with the weights cast once per batch
        (`memory.step_weights`), when `compile_decoding` asked for it."""
        if not self.compiled_decoding:
            yield self.step
            return
        with with_weights(self, memory.step_weights):
            yield functools.partial(compiled(type(self).step), self)

    def decode_step(
        self, prev_tokens: torch.Tensor, state: DecoderState, memory: Memory
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One step of free-running decoding: y(i-1) (B,) -> logits (B, V), state, alpha (B, S)."""
        embedded = self.embedding_dropout(self.embedding(prev_tokens))  # (B, E)
        with self._decoding_step(memory) as step:
            state, features, weights = step(self.rnn.precompute(embedded), state, memory)
        return self.generator(self.output_dropout(self.readout(features, embedded))), state, weights


class BahdanauDecoder(RecurrentDecoder):
    """Attend with s(i-1), then step the GRU on [E y(i-1); c(i)]; deep output over [s(i); c(i); E y(i-1)].

    Args:
        readout_size: size of the deep output layer (the paper's l).
        deep_output: `maxout` (the paper) or `tanh`.

    The other arguments are `RecurrentDecoder`'s.
    """

    def __init__(
        self,
        *,
        key_size: int,
        embedding_size: int,
        hidden_size: int,
        readout_size: int,
        deep_output: str = "maxout",
        **shared: Any,
    ) -> None:
        super().__init__(
            key_size=key_size,
            embedding_size=embedding_size,
            hidden_size=hidden_size,
            dynamic_size=key_size,  # the context c(i) enters the GRU with the embedding
            readout_size=readout_size,
            **shared,
        )
        self.deep_output = DeepOutput(hidden_size + key_size + embedding_size, readout_size, deep_output)

    def step(
        self, static_gates: torch.Tensor, state: DecoderState, memory: Memory
    ) -> tuple[DecoderState, torch.Tensor, torch.Tensor]:
        context, weights, carried = self.attend(state["hidden"][:, -1], state, memory)  # query: top s(i-1)
        recurrent = self.rnn(static_gates, context, state)  # hidden (B, L, H) (and an LSTM's cell)
        hidden = recurrent["hidden"]
        features = torch.cat([self.hidden_dropout(hidden[:, -1]), context], dim=-1)  # [s(i); c(i)]
        return {**recurrent, **carried}, features, weights

    def readout(self, features: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        return self.deep_output(torch.cat([features, embedded], dim=-1))


class LuongDecoder(RecurrentDecoder):
    """Step the GRU first, attend with s(t), h~(t) = tanh(W_c [c(t); s(t)]) feeds the softmax.

    Args:
        attentional_size: size of h~(t).
        input_feeding: give h~(t-1) to the GRU with the embedding (Luong et al. section 3.3).

    The other arguments are `RecurrentDecoder`'s.
    """

    def __init__(
        self, *, key_size: int, hidden_size: int, attentional_size: int, input_feeding: bool = True, **shared: Any
    ) -> None:
        super().__init__(
            key_size=key_size,
            hidden_size=hidden_size,
            dynamic_size=attentional_size if input_feeding else 0,  # h~(t-1) enters with the embedding
            readout_size=attentional_size,
            **shared,
        )
        self.input_feeding = input_feeding
        self.attentional_size = attentional_size
        self.combine = StepLinear(key_size + hidden_size, attentional_size, bias=False)  # W_c

    def start(self, encoded: EncoderOutput) -> tuple[Memory, DecoderState]:
        memory, state = super().start(encoded)
        if self.input_feeding:
            state["feed"] = state["hidden"].new_zeros(encoded.states.size(0), self.attentional_size)
        return memory, state

    def step(
        self, static_gates: torch.Tensor, state: DecoderState, memory: Memory
    ) -> tuple[DecoderState, torch.Tensor, torch.Tensor]:
        recurrent = self.rnn(static_gates, state.get("feed"), state)  # hidden (B, L, H) (and an LSTM's cell)
        hidden = recurrent["hidden"]
        top = self.hidden_dropout(hidden[:, -1])  # s(t)
        context, weights, carried = self.attend(top, state, memory)
        attentional = torch.tanh(self.combine(torch.cat([context, top], dim=-1)).to(hidden.dtype))  # h~(t)
        new_state = {**recurrent, **carried}
        if self.input_feeding:
            new_state["feed"] = attentional
        return new_state, attentional, weights

    def _step_modules(self) -> list[nn.Module]:
        return [*super()._step_modules(), self.combine]

    def readout(self, features: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        return features
