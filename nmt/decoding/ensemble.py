"""Several models decoding as one: any search takes an `Ensemble` where it takes a model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from nmt.modules.decoder import DecoderState, Memory
from nmt.modules.seq2seq import Seq2Seq

EnsembleMemory = tuple[Memory, ...]
EnsembleState = tuple[DecoderState, ...]


class Ensemble(nn.Module):
    """Averages the members' next-token probabilities (not their log-probabilities), so the
    ensemble is itself a distribution, P(y) = mean_m P_m(y), and an ensemble of one is the model.

    Memory and state are tuples with one entry per member; the searches never look inside.

    Args:
        models: members sharing the source and target vocabularies (e.g. several training runs,
            or checkpoints of one run).
    """

    def __init__(self, models: Sequence[Seq2Seq]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        vocabularies = {(m.encoder.embedding.num_embeddings, m.decoder.generator.out_features) for m in models}
        if len(vocabularies) > 1:
            raise ValueError(
                f"ensemble members need the same vocabularies; (source, target) sizes: {sorted(vocabularies)}"
            )
        self.models = nn.ModuleList(models)

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[EnsembleMemory, EnsembleState]:
        """Encodes the source once per member."""
        memories, states = zip(*(model.start(src, src_lengths) for model in self.models))
        return memories, states

    def next_token_scores(
        self, prev_tokens: torch.Tensor, state: EnsembleState, memory: EnsembleMemory
    ) -> tuple[torch.Tensor, torch.Tensor, EnsembleState, torch.Tensor]:
        """log mean_m P_m (B, V) as the scores with zero normalizers (B,), the members' new states,
        and their mean attention (B, S)."""
        steps = [model.decode_step(prev_tokens, s, m) for model, s, m in zip(self.models, state, memory)]
        log_probs = torch.stack([log_probs for log_probs, _, _ in steps])  # (M, B, V)
        mean = torch.logsumexp(log_probs, dim=0) - math.log(len(self.models))  # log((1/M) sum_m P_m)
        attention = torch.stack([weights for _, _, weights in steps]).mean(dim=0)  # (B, S)
        return mean, mean.new_zeros(mean.size(0)), tuple(new_state for _, new_state, _ in steps), attention

    def reorder(
        self, memory: EnsembleMemory | None, state: EnsembleState | None, index: torch.Tensor
    ) -> tuple[EnsembleMemory | None, EnsembleState | None]:
        """Selects (or repeats) batch rows in every member's memory and state (each unless None)."""
        memories = memory if memory is not None else (None,) * len(self.models)
        states = state if state is not None else (None,) * len(self.models)
        reordered = [model.reorder(m, s, index) for model, m, s in zip(self.models, memories, states)]
        return (
            tuple(m for m, _ in reordered) if memory is not None else None,
            tuple(s for _, s in reordered) if state is not None else None,
        )
