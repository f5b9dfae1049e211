"""The bidirectional recurrent encoder (Bahdanau et al. 2015, section 3.2): GRU or LSTM."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.data.tokenizer import PAD_ID
from nmt.modules.bigru import stepped_bidirectional_gru
from nmt.modules.dropout import Dropout


@dataclass
class EncoderOutput:
    """What the decoder needs from the source.

    Attributes:
        states: (B, S, 2H) annotations h(j) = [forward h(j); backward h(j)]; zero at padding.
        mask: (B, S) True at real (non-padded) positions.
        final_forward: (B, H) last layer's forward state at the last word.
        final_backward: (B, H) last layer's backward state at the first word (the paper's
            backward h(1), from which the decoder's initial state is computed).
    """

    states: torch.Tensor
    mask: torch.Tensor
    final_forward: torch.Tensor
    final_backward: torch.Tensor


RECURRENT_LAYERS: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}
"""`model.cell` -> the encoder's recurrence."""


class RNNEncoder(nn.Module):
    """Embeds the source and runs a bidirectional GRU (or LSTM) over packed sequences.

    Packing makes each sentence's annotations independent of how much padding its batch has.

    Args:
        vocab_size: source vocabulary size.
        embedding_size: size of the source word embeddings.
        hidden_size: GRU size per direction (annotations have 2 * hidden_size).
        num_layers: stacked bidirectional layers.
        embedding_dropout: dropout on the source embeddings.
        hidden_dropout: dropout between layers and on the annotations.
        cell: `gru` or `lstm`.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int = 1,
        embedding_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
        cell: str = "gru",
    ) -> None:
        super().__init__()
        if cell not in RECURRENT_LAYERS:
            raise ValueError(f"cell={cell!r}: use one of {', '.join(RECURRENT_LAYERS)}")
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD_ID)
        self.embedding_dropout = Dropout(embedding_dropout)
        self.rnn = RECURRENT_LAYERS[cell](
            embedding_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=hidden_dropout if num_layers > 1 else 0.0,
        )
        self.hidden_dropout = Dropout(hidden_dropout)
        self.hidden_size = hidden_size
        self.output_size = 2 * hidden_size
        self.compiled_recurrence = False  # see `compile_recurrence`

    def compile_recurrence(self) -> None:
        """On the CPU, runs the GRU as `nmt.modules.bigru.stepped_bidirectional_gru` (both
        directions in one compiled step, the matmuls in the autocast dtype) instead of `nn.GRU`
        over packed sequences: the same function and parameters, faster there. On CUDA `nn.GRU`
        (cuDNN's fused recurrence) stays, and so does an LSTM encoder's `nn.LSTM` everywhere."""
        self.compiled_recurrence = True

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """Encodes a batch.

        Args:
            src: (B, S) token ids, padded with PAD_ID.
            src_lengths: (B,) lengths, on the CPU.
        """
        embedded = self.embedding_dropout(self.embedding(src))  # (B, S, E)
        mask = src != PAD_ID
        if self.compiled_recurrence and src.device.type == "cpu" and isinstance(self.rnn, nn.GRU):
            states, final = stepped_bidirectional_gru(self.rnn, embedded, mask, self.hidden_dropout, compile_step=True)
        else:
            packed = pack_padded_sequence(embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_states, final = self.rnn(packed)  # final: (layers * 2, B, H); an LSTM's: (that, its cells)
            if isinstance(final, tuple):
                final = final[0]
            states, _ = pad_packed_sequence(packed_states, batch_first=True, total_length=src.size(1))
        return EncoderOutput(
            states=self.hidden_dropout(states), mask=mask, final_forward=final[-2], final_backward=final[-1]
        )
