"""Greedy and beam search, as functions over the model's `start` and `decode_step`.

Both stop each sentence at EOS or at its own length limit, ceil(a * source length + b), so a
sentence gets the same output alone or inside any batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt.modules.decoder import select_state
from nmt.modules.seq2seq import Seq2Seq
from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID

NEVER_GENERATED = [PAD_ID, BOS_ID]  # symbols a translation never contains


@dataclass(frozen=True)
class Hypothesis:
    """One finished translation: ids without BOS/EOS, its log-probability and search score."""

    tokens: list[int]
    log_prob: float
    score: float


def max_output_lengths(src_lengths: torch.Tensor, ratio: float, offset: int) -> torch.Tensor:
    """Per-sentence output limit (tokens, EOS included): ceil(ratio * source length) + offset."""
    return (src_lengths.double() * ratio).ceil().long() + offset


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al. 2016); 1 when alpha = 0."""
    return ((5.0 + length) / 6.0) ** alpha


def _mask_log_probs(log_probs: torch.Tensor, at_limit: torch.Tensor) -> None:
    """In place: PAD/BOS are never generated, and rows at their length limit can only end (EOS).

    Args:
        log_probs: (N, V) next-token log-probabilities.
        at_limit: (N,) True for rows whose next token is their last.
    """
    log_probs[:, NEVER_GENERATED] = float("-inf")
    log_probs[at_limit, :EOS_ID] = float("-inf")
    log_probs[at_limit, EOS_ID + 1:] = float("-inf")


@torch.no_grad()
def greedy_search(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor,
                  max_length_ratio: float = 2.0, max_length_offset: int = 10) -> list[Hypothesis]:
    """Picks the most probable token at every step.

    Args:
        src: (B, S) padded source ids; src_lengths: (B,) lengths (with EOS).
        max_length_ratio, max_length_offset: the output length limit (see `max_output_lengths`).

    Returns:
        One hypothesis per sentence, in batch order (score = log-probability).
    """
    memory, state = model.start(src, src_lengths)
    batch_size = src.size(0)
    limits = max_output_lengths(src_lengths, max_length_ratio, max_length_offset).to(src.device)
    tokens = torch.full((batch_size,), BOS_ID, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=src.device)
    log_probs_sum = torch.zeros(batch_size, dtype=torch.float64, device=src.device)
    outputs = []
    for step in range(int(limits.max())):
        log_probs, state, _ = model.decode_step(tokens, state, memory)
        _mask_log_probs(log_probs, step + 1 >= limits)
        best, tokens = log_probs.max(dim=-1)
        log_probs_sum += torch.where(finished, 0.0, best.double())
        outputs.append(torch.where(finished, EOS_ID, tokens))
        finished |= tokens == EOS_ID
        if bool(finished.all()):
            break
    hypotheses = []
    for row, total in zip(torch.stack(outputs, 1).tolist(), log_probs_sum.tolist()):
        ids = row[: row.index(EOS_ID)]
        hypotheses.append(Hypothesis(ids, total, total))
    return hypotheses


@torch.no_grad()
def beam_search(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, beam_size: int = 5,
                alpha: float = 0.0, max_length_ratio: float = 2.0, max_length_offset: int = 10
                ) -> list[Hypothesis]:
    """Batched beam search with the GNMT length penalty.

    Each sentence keeps `beam_size` open hypotheses. At every step the best 2 * beam_size
    extensions are taken; those ending in EOS among the first `beam_size` are finished with
    score log P / lp(length), the best `beam_size` others stay open. A sentence is done when
    it has `beam_size` finished hypotheses; its best-scoring one is returned.

    Args:
        beam_size: open hypotheses per sentence (1 gives greedy search).
        alpha: length penalty exponent (0: no penalty).
        max_length_ratio, max_length_offset: the output length limit (see `max_output_lengths`).

    Returns:
        The best finished hypothesis of each sentence, in batch order.
    """
    batch_size, device = src.size(0), src.device
    memory, state = model.start(src, src_lengths)
    rows = torch.arange(batch_size, device=device).repeat_interleave(beam_size)
    memory, state = memory.index_select(rows), select_state(state, rows)
    limits = max_output_lengths(src_lengths, max_length_ratio, max_length_offset).tolist()
    scores = torch.full((batch_size, beam_size), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: only the first may expand
    history = torch.full((batch_size * beam_size, 1), BOS_ID, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]
    active = list(range(batch_size))  # sentences still searching, in the order of the rows
    for step in range(max(limits)):
        log_probs, state, _ = model.decode_step(history[:, -1], state, memory)
        at_limit = torch.tensor([step + 1 >= limits[s] for s in active], device=device)
        _mask_log_probs(log_probs, at_limit.repeat_interleave(beam_size))
        vocab_size = log_probs.size(-1)
        candidates = scores.unsqueeze(-1) + log_probs.view(len(active), beam_size, vocab_size)  # (A, K, V)
        top_scores, top_ids = candidates.view(len(active), -1).topk(2 * beam_size, dim=-1)
        top_beams, top_tokens = top_ids // vocab_size, top_ids % vocab_size  # (A, 2K)
        is_eos = top_tokens == EOS_ID
        # Finish the EOS extensions ranked within the first beam_size.
        for i, j in (is_eos[:, :beam_size] & top_scores[:, :beam_size].isfinite()).nonzero().tolist():
            sentence = active[i]
            if len(finished[sentence]) < beam_size:
                log_prob = float(top_scores[i, j])
                tokens = history[i * beam_size + int(top_beams[i, j]), 1:].tolist()
                penalty = length_penalty(len(tokens) + 1, alpha)
                finished[sentence].append(Hypothesis(tokens, log_prob, log_prob / penalty))
        # Keep the best beam_size non-EOS extensions open (EOS ones sort last, stably).
        keep = (is_eos.to(torch.int8)).argsort(dim=-1, stable=True)[:, :beam_size]  # (A, K)
        scores = top_scores.gather(1, keep)
        source_rows = (torch.arange(len(active), device=device).unsqueeze(1) * beam_size
                       + top_beams.gather(1, keep)).view(-1)
        history = torch.cat([history.index_select(0, source_rows), top_tokens.gather(1, keep).view(-1, 1)], 1)
        state = select_state(state, source_rows)
        still = [i for i, s in enumerate(active) if len(finished[s]) < beam_size and step + 1 < limits[s]]
        if not still:
            break
        if len(still) < len(active):  # drop done sentences from the batch
            keep_sentences = torch.tensor(still, device=device)
            keep_rows = (keep_sentences.unsqueeze(1) * beam_size + torch.arange(beam_size, device=device)).view(-1)
            active = [active[i] for i in still]
            scores = scores.index_select(0, keep_sentences)
            history = history.index_select(0, keep_rows)
            state = select_state(state, keep_rows)
            memory = memory.index_select(keep_rows)
    return [max(hyps, key=lambda h: h.score) for hyps in finished]
