"""The encoder-decoder model and the small interface the search and the trainer use."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nmt.modules.decoder import BahdanauDecoder, DecoderState, Memory
from nmt.modules.encoder import RNNEncoder


class Seq2Seq(nn.Module):
    """Encoder + decoder, built from partials so run-time sizes are filled in here.

    Args:
        encoder: builds the encoder given `vocab_size` (a Hydra partial).
        decoder: builds the decoder given `vocab_size`, `key_size` and `init_size`.
        src_vocab_size, tgt_vocab_size: known only once the tokenizers exist.
    """

    def __init__(self, encoder: Callable[..., RNNEncoder], decoder: Callable[..., BahdanauDecoder],
                 src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.encoder = encoder(vocab_size=src_vocab_size)
        self.decoder = decoder(vocab_size=tgt_vocab_size, key_size=self.encoder.output_size,
                               init_size=self.encoder.hidden_size)

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Memory, DecoderState]:
        """Encodes the source once: the memory and initial state every later step uses."""
        return self.decoder.start(self.encoder(src, src_lengths))

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: logits (B, T, V) and attention (B, T, S)."""
        memory, state = self.start(src, src_lengths)
        return self.decoder(tgt_in, state, memory)

    def decode_step(self, prev_tokens: torch.Tensor, state: DecoderState, memory: Memory
                    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Log-probabilities (B, V) of the next token, the new state, and the attention (B, S)."""
        logits, state, weights = self.decoder.decode_step(prev_tokens, state, memory)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16/fp16 -> fp32
        return torch.log_softmax(logits, dim=-1), state, weights
