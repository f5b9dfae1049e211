"""The encoder-decoder model and the small interface the search and the trainer use."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nmt.modules.attention import Attention, LocationScorer
from nmt.modules.decoder import DecoderState, Memory, RecurrentDecoder
from nmt.modules.encoder import RNNEncoder
from nmt.modules.initialization import bahdanau_init_
from nmt.utils.compilation import compiled

INITIALIZERS = {"default": None, "bahdanau": bahdanau_init_}


def _at_least_fp32(logits: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 logits as fp32; fp32 and fp64 as they are."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def _log_sum_exp(logits: torch.Tensor) -> torch.Tensor:
    """(B, V) logits in any float dtype -> (B,) fp32 (or wider) log-sum-exp."""
    return torch.logsumexp(_at_least_fp32(logits), dim=-1)


class Seq2Seq(nn.Module):
    """Encoder + decoder, built from partials so run-time sizes are filled in here.

    Args:
        encoder: builds the encoder given `vocab_size` (a Hydra partial).
        decoder: builds the decoder given `vocab_size`, `key_size` and `init_size`.
        src_vocab_size: source vocabulary size, known only once the tokenizers exist.
        tgt_vocab_size: target vocabulary size, likewise.
        share_embeddings: one embedding matrix for source and target (needs a joint
            vocabulary and equal embedding sizes).
        init: `default` (PyTorch's) or `bahdanau` (the paper's scheme, see `initialization`).
        cell: `gru` or `lstm` for encoder and decoder alike (`model.cell`); None leaves the
            partials' own.
    """

    def __init__(
        self,
        encoder: Callable[..., RNNEncoder],
        decoder: Callable[..., RecurrentDecoder],
        src_vocab_size: int,
        tgt_vocab_size: int,
        share_embeddings: bool = False,
        init: str = "default",
        cell: str | None = None,
    ) -> None:
        super().__init__()
        if init not in INITIALIZERS:
            raise ValueError(f"model.init={init!r}: use one of {', '.join(INITIALIZERS)}")
        cells = {} if cell is None else {"cell": cell}
        self.encoder = encoder(vocab_size=src_vocab_size, **cells)
        self.decoder = decoder(
            vocab_size=tgt_vocab_size, key_size=self.encoder.output_size, init_size=self.encoder.hidden_size, **cells
        )
        if share_embeddings:
            source, target = self.encoder.embedding.weight, self.decoder.embedding.weight
            if source.shape != target.shape:
                raise ValueError(
                    f"share_embeddings needs equal vocabularies and embedding sizes: source "
                    f"{tuple(source.shape)}, target {tuple(target.shape)} (use tokenizer.joint=true)"
                )
            if self.decoder.generator.weight is target:  # tied: all three share the decoder's matrix,
                self.encoder.embedding.weight = target  # initialized for its role as output weights
            else:
                self.decoder.embedding.weight = source
        if INITIALIZERS[init] is not None:
            INITIALIZERS[init](self)

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Memory, DecoderState]:
        """Encodes the source once: the memory and initial state every later step uses."""
        return self.decoder.start(self.encoder(src, src_lengths))

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor, positions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: logits (B, T, V), or (N, V) at `positions` (N,) of the (B, T) target
        flattened, and attention (B, T, S)."""
        memory, state = self.start(src, src_lengths)
        return self.decoder(tgt_in, state, memory, positions)

    def compile_training(self) -> None:
        """Runs the teacher-forced forward's recurrences through `torch.compile`: the encoder's
        (on the CPU, `RNNEncoder.compile_recurrence`) and the decoder step
        (`RecurrentDecoder.compile_teacher_forcing`). The trainer's `compile`; the loss compiles
        apart (`nmt.training.loss`)."""
        self.encoder.compile_recurrence()
        self.decoder.compile_teacher_forcing()

    def compile_decoding(self) -> None:
        """Decodes through `torch.compile`: the decoder step (`RecurrentDecoder.compile_decoding`)
        and the log normalizer of `next_token_scores`, one fused reduction over the logits in
        their own dtype, where eagerly the logits are converted to fp32 and normalized, two (B, V)
        fp32 arrays written at every step (the speed page of the docs has the figures). Needs a C++
        compiler on the CPU, like the trainer's `compile`."""
        self.decoder.compile_decoding()

    def next_token_scores(
        self, prev_tokens: torch.Tensor, state: DecoderState, memory: Memory
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState, torch.Tensor]:
        """The next token's scores (B, V) and log normalizers (B,), log P(y) = scores[:, y] -
        normalizers, the new state, and the attention (B, S).

        Why not log-probabilities: a search ranks and masks the scores of a row, which a constant
        shift leaves alone, and needs log P of a few tokens only (the best, EOS), so the (B, V)
        log-probabilities need not be written at every step. Compiled (`compile_decoding`), the
        scores are the logits in the autocast dtype and the normalizers their log-sum-exp in fp32;
        eagerly the scores are the fp32 log-probabilities and the normalizers zero, because torch's
        eager log-sum-exp of a 16-bit array converts it to fp32 first, which costs more than the
        log-softmax.
        """
        logits, state, weights = self.decoder.decode_step(prev_tokens, state, memory)
        if self.decoder.compiled_decoding:
            return logits, compiled(_log_sum_exp)(logits), state, weights
        log_probs = torch.log_softmax(_at_least_fp32(logits), dim=-1)
        return log_probs, log_probs.new_zeros(log_probs.size(0)), state, weights

    def decode_step(
        self, prev_tokens: torch.Tensor, state: DecoderState, memory: Memory
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Log-probabilities (B, V) of the next token (fp32 at least), the new state, and the
        attention (B, S)."""
        scores, normalizers, state, weights = self.next_token_scores(prev_tokens, state, memory)
        return scores.to(normalizers.dtype) - normalizers.unsqueeze(1), state, weights

    @property
    def has_attention(self) -> bool:
        """False for the fixed-context baseline (RNNencdec), which has no alignments to show."""
        return isinstance(self.decoder.attention, Attention)

    @property
    def max_source_length(self) -> int | None:
        """The longest source, EOS included, the model can read (the `location` scorer has one
        weight row per position); None: any length."""
        scorer = self.decoder.attention.scorer if self.has_attention else None
        return scorer.max_source_length if isinstance(scorer, LocationScorer) else None

    def reorder(
        self, memory: Memory | None, state: DecoderState | None, index: torch.Tensor
    ) -> tuple[Memory | None, DecoderState | None]:
        """Selects (or repeats) batch rows of the memory and the state (each unless None), index
        (N',): one state copy per beam, beam backpointers, finished sentences leaving. Searches
        call this and never look inside memory or state."""
        return self.decoder.reorder(memory, state, index)
