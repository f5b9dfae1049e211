"""Validation: loss, perplexity, and BLEU/chrF of the validation search's translations."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nmt.data.batching import bucket_batches, collate
from nmt.data.indexed import IndexedTokens
from nmt.data.tokenizer import Tokenizer
from nmt.decoding.batches import translate_ids
from nmt.decoding.search import Search
from nmt.metrics.bleu import score
from nmt.modules.seq2seq import Seq2Seq
from nmt.training.loss import token_loss_sum


@dataclass
class ValidationData:
    """The validation set: token ids for the loss and the search (memory-mapped from the encoded
    cache, like the training pairs), raw text for samples and BLEU."""

    src_ids: IndexedTokens
    tgt_ids: IndexedTokens
    references: list[str]
    sources: list[str]


@dataclass
class ValidationResult:
    """Metrics (`loss`, `ppl`, `bleu`, `chrf`) and the translations behind them."""

    metrics: dict[str, float]
    output_ids: list[list[int]]
    hypotheses: list[str]


@torch.no_grad()
def validate(
    model: Seq2Seq,
    data: ValidationData,
    search: Search,
    tgt_tokenizer: Tokenizer,
    max_tokens: int,
    device: torch.device,
) -> ValidationResult:
    """Scores the model on the validation set (in eval mode, full precision)."""
    model.eval()
    loss_sum, tokens = 0.0, 0
    for indices in bucket_batches(data.src_ids.lengths, data.tgt_ids.lengths, max_tokens):
        batch = collate([data.src_ids[i] for i in indices], [data.tgt_ids[i] for i in indices], indices).to(device)
        loss_sum += float(token_loss_sum(model, batch))
        tokens += batch.num_target_tokens
    output_ids = translate_ids(model, data.src_ids, search, max_tokens, device)
    hypotheses = tgt_tokenizer.decode(output_ids)
    scores = score(hypotheses, [data.references])
    loss = loss_sum / tokens
    metrics = {"loss": loss, "ppl": math.exp(min(loss, 100.0)), "bleu": scores.bleu, "chrf": scores.chrf}
    return ValidationResult(metrics, output_ids, hypotheses)
