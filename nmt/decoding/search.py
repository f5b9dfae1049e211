"""Greedy search, sampling and beam search over a model's `start`, `next_token_scores` and `reorder`.

Each search is a frozen dataclass built from one file in `configs/decode/` (`build_search`) and
called as `search(model, src, src_lengths)`: one n-best list per sentence, best first (greedy
search and sampling return one hypothesis per sentence). All three take their next-token scores
from `Search._step`: the model's step, then the masks (PAD/BOS are never generated, a too short
hypothesis may not end, a hypothesis at its length limit must end, repeated n-grams are banned).

Length limits are per sentence, ceil(ratio * source length) + offset, and count EOS like |Y| in
the length penalty, so a sentence gets the same output alone or inside any batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from nmt.decoding.rules import LENGTH_PENALTIES, NEVER_GENERATED

NEG_INF = float("-inf")
"""lp(|Y|) for a float tensor of lengths (EOS counted): a hypothesis scores log P / lp."""


class Decodable(Protocol):
    """What a search needs of a model; `Seq2Seq` and `nmt.decoding.ensemble.Ensemble` both have it.

    The memory and state are opaque to the search: it passes them back to the model and asks the
    model to reorder their rows, so a model may carry whatever it needs in them.
    `next_token_scores` returns fresh scores (N, V), which the search masks in place, their log
    normalizers (N,) (log P(y) = scores[:, y] - normalizers: the search ranks scores and converts
    the few it keeps), and attention (N, S).
    The memory has one row per source sentence and the state G consecutive rows per sentence
    (beam search: G = beam_size, the model attends with all G over the one memory row; greedy
    search: G = 1). `reorder(memory, state, index)` selects rows of either, one given as None
    staying None: beam backpointers move state rows only, and the memory (the largest tensors)
    moves only when sentences leave the batch.
    """

    def eval(self) -> Any: ...

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Any, Any]: ...

    def next_token_scores(
        self, prev_tokens: torch.Tensor, state: Any, memory: Any
    ) -> tuple[torch.Tensor, torch.Tensor, Any, torch.Tensor]: ...

    def reorder(self, memory: Any | None, state: Any | None, index: torch.Tensor) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class Hypothesis:
    """One finished translation.

    Attributes:
        tokens: target ids without BOS/EOS.
        log_prob: log P(tokens + EOS | source) under the model.
        score: what the search ranked by (log_prob for greedy search and sampling).
        attention: (|tokens| + 1, source length incl. EOS) weights of every output step, EOS
            included, on the CPU; None unless the search has `return_attention`.
    """

    tokens: list[int]
    log_prob: float
    score: float
    attention: torch.Tensor | None = field(default=None, compare=False)  # == on tensors is elementwise


def _require(ok: bool, key: str, value: Any, requirement: str) -> None:
    if not ok:
        raise ValueError(f"decode.{key}={value!r}: {requirement}")


@dataclass(frozen=True, kw_only=True)
class Search:
    """What every search shares: length limits, n-gram blocking, the masked step.

    Args:
        min_length_ratio: EOS is forbidden before ceil(min_length_ratio * source length) +
            min_length_offset output tokens (EOS counted), unless nothing else is allowed.
        min_length_offset: see `min_length_ratio`.
        max_length_ratio: EOS is forced at ceil(max_length_ratio * source length) +
            max_length_offset output tokens (EOS counted; at least 1).
        max_length_offset: see `max_length_ratio`.
        no_repeat_ngram_size: n > 0 bans any token that would complete an n-gram already in
            the hypothesis; 0 turns blocking off.
        return_attention: each hypothesis carries its attention matrix.
    """

    min_length_ratio: float = 0.0
    min_length_offset: int = 0
    max_length_ratio: float = 2.0
    max_length_offset: int = 10
    no_repeat_ngram_size: int = 0
    return_attention: bool = False

    def __post_init__(self) -> None:
        _require(self.min_length_ratio >= 0, "min_length_ratio", self.min_length_ratio, "must be at least 0")
        _require(self.max_length_ratio >= 0, "max_length_ratio", self.max_length_ratio, "must be at least 0")
        _require(self.min_length_offset >= 0, "min_length_offset", self.min_length_offset, "must be at least 0")
        _require(self.max_length_offset >= 0, "max_length_offset", self.max_length_offset, "must be at least 0")
        _require(
            self.no_repeat_ngram_size >= 0,
            "no_repeat_ngram_size",
            self.no_repeat_ngram_size,
            "must be at least 0 (0: no blocking)",
        )

    def __call__(self, model: Decodable, src: torch.Tensor, src_lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """Decodes a batch: src (B, S) padded ids, src_lengths (B,) with EOS -> B n-best lists."""
        raise NotImplementedError

    def length_limits(self, src_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sentence (B,) minimum and maximum output lengths, EOS counted."""
        lengths = src_lengths.double()
        minimum = (lengths * self.min_length_ratio).ceil().long() + self.min_length_offset
        maximum = (lengths * self.max_length_ratio).ceil().long() + self.max_length_offset
        return minimum, maximum.clamp(min=1)

    @staticmethod
    def _mask_bounds(min_lengths: torch.Tensor, max_lengths: torch.Tensor) -> tuple[int, int]:
        """The batch's largest minimum and smallest maximum length, as host integers, once per
        batch: `_step` skips the length masks at steps where no row can need them."""
        return int(min_lengths.max()), int(max_lengths.min())

    def _step(
        self,
        model: Decodable,
        history: torch.Tensor,
        state: Any,
        memory: Any,
        min_lengths: torch.Tensor,
        max_lengths: torch.Tensor,
        longest_minimum: int,
        shortest_maximum: int,
    ) -> tuple[torch.Tensor, torch.Tensor, Any, torch.Tensor]:
        """The model's next-token scores with every search's masks (banned: -inf).

        EOS is decided last: it is allowed unless the hypothesis is too short and some other
        token is allowed, so a row never has every token banned.

        Args:
            history: (N, t + 1) BOS and the t tokens generated so far.
            min_lengths, max_lengths: (N,) each row's limits (see `length_limits`).
            longest_minimum, shortest_maximum: `_mask_bounds` of the batch: at steps where no row
                can be too short or at its limit, the passes over (N, V) those masks need are skipped.

        Returns:
            scores (N, V), their log normalizers (N,) (see `Decodable`), the model's new state,
            attention weights (N, S).
        """
        scores, normalizers, state, weights = model.next_token_scores(history[:, -1], state, memory)
        length = history.size(1)  # of a hypothesis ending with the next token, EOS counted
        eos = scores[:, EOS_ID].clone()
        scores[:, NEVER_GENERATED + [EOS_ID]] = NEG_INF
        if self.no_repeat_ngram_size:
            _block_repeated_ngrams(scores, history[:, 1:], self.no_repeat_ngram_size)
        if length >= shortest_maximum:
            scores.masked_fill_((length >= max_lengths).unsqueeze(1), NEG_INF)  # at the limit: only EOS
        if length < longest_minimum:
            something_else = scores.amax(dim=-1) > NEG_INF  # (N,)
            eos = eos.masked_fill((length < min_lengths) & something_else, NEG_INF)
        scores[:, EOS_ID] = eos
        return scores, normalizers, state, weights


def _block_repeated_ngrams(scores: torch.Tensor, generated: torch.Tensor, n: int) -> None:
    """In place: bans every token that would complete an n-gram already in `generated` (N, t)."""
    if generated.size(1) < n:  # no complete n-gram yet
        return
    windows = generated.unfold(1, n, 1)  # (N, W, n) every n-gram so far
    prefix = generated[:, generated.size(1) - n + 1 :]  # (N, n - 1) what the next token would extend
    repeats = (windows[:, :, :-1] == prefix.unsqueeze(1)).all(dim=-1)  # (N, W)
    ban = torch.zeros_like(repeats, dtype=scores.dtype).masked_fill_(repeats, NEG_INF)
    scores.scatter_add_(1, windows[:, :, -1], ban)  # adding 0 leaves a token alone


def _hypothesis(
    tokens: list[int], length: int, log_prob: float, score: float, attention: torch.Tensor | None, source_length: int
) -> Hypothesis:
    """A hypothesis from a padded row: `length` counts EOS; `attention` is (>= length, >= S)."""
    weights = None if attention is None else attention[:length, :source_length].clone()
    return Hypothesis(tokens[: length - 1], log_prob, score, weights)


@dataclass(frozen=True, kw_only=True)
class GreedySearch(Search):
    """Takes the most probable token at every step; one hypothesis per sentence (score = log P).

    A sentence leaves the batch at the step it ends, as in beam search: stepping every row until
    the longest output ends spends a large share of the row-steps on finished sentences.

    Args: see `Search`.
    """

    def _pick(self, scores: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The next token of every row (N,) from the masked scores (N, V)."""
        return scores.max(dim=-1).indices  # the first of equal maxima, like argmax, which is slow on bf16

    def _generator(self, device: torch.device) -> torch.Generator | None:
        return None

    @torch.no_grad()
    def __call__(self, model: Decodable, src: torch.Tensor, src_lengths: torch.Tensor) -> list[list[Hypothesis]]:
        batch_size, device = src.size(0), src.device
        src_lengths = src_lengths.to(device)
        memory, state = model.start(src, src_lengths)
        min_lengths, max_lengths = self.length_limits(src_lengths)
        steps, bounds = int(max_lengths.max()), self._mask_bounds(min_lengths, max_lengths)
        history = torch.full((batch_size, steps + 1), BOS_ID, dtype=torch.long, device=device)  # open rows
        outputs = torch.empty_like(history)  # every sentence's row, copied from `history` when it ends
        rows = torch.arange(batch_size, device=device)  # the sentence of each open row
        log_prob_sums = torch.zeros(batch_size, dtype=torch.float64, device=device)
        generator = self._generator(device)
        attention = None  # (B, T, S) once the model's dtype is known
        for step in range(steps):
            scores, normalizers, state, weights = self._step(
                model, history[:, : step + 1], state, memory, min_lengths, max_lengths, *bounds
            )
            tokens = self._pick(scores, generator)  # (A,)
            picked = scores.gather(1, tokens.unsqueeze(1)).squeeze(1)
            log_prob_sums.index_add_(0, rows, picked.double() - normalizers.double())
            history[:, step + 1] = tokens
            if self.return_attention:
                if attention is None:
                    attention = weights.new_zeros(batch_size, steps, weights.size(-1))
                attention[rows, step] = weights
            ended = tokens == EOS_ID
            if bool(ended.any()):  # the step's one host sync; ended sentences leave the batch
                outputs[rows[ended]] = history[ended]
                keep = (~ended).nonzero().squeeze(1)
                if keep.numel() == 0:
                    break
                rows, history = rows[keep], history[keep]
                min_lengths, max_lengths = min_lengths[keep], max_lengths[keep]
                memory, state = model.reorder(memory, state, keep)
        outputs = outputs[:, 1 : step + 2]  # (B, T) every row has an EOS
        lengths = (outputs == EOS_ID).int().argmax(dim=1) + 1  # up to the first EOS
        weights = attention.cpu() if attention is not None else None  # (B, T, S)
        return [
            [_hypothesis(tokens, length, total, total, None if weights is None else weights[i], source_length)]
            for i, (tokens, length, total, source_length) in enumerate(
                zip(outputs.tolist(), lengths.tolist(), log_prob_sums.tolist(), src_lengths.tolist())
            )
        ]


@dataclass(frozen=True, kw_only=True)
class Sampling(GreedySearch):
    """Greedy search's loop, drawing every next token from the model's (reshaped) distribution
    instead of taking the best; one hypothesis per sentence (score = log P under the model
    itself, not under the reshaped distribution).

    Args:
        temperature: divides the log-probabilities (< 1 sharpens, > 1 flattens).
        top_k: draw among the k most probable tokens only (0: all).
        top_p: nucleus sampling: the fewest most probable tokens whose probability reaches p (1: all).
        seed: seeds a generator made for each call, so a call repeats exactly; None draws from
            torch's global generator.

    The other arguments are `Search`'s.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.temperature > 0, "temperature", self.temperature, "must be greater than 0")
        _require(self.top_k >= 0, "top_k", self.top_k, "must be at least 0 (0: no top-k filter)")
        _require(0 < self.top_p <= 1, "top_p", self.top_p, "must be in (0, 1] (1: no nucleus filter)")

    def _generator(self, device: torch.device) -> torch.Generator | None:
        return None if self.seed is None else torch.Generator(device).manual_seed(self.seed)

    def _pick(self, scores: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        logits = scores.float() / self.temperature  # (N, V); softmax ignores the normalizer
        if self.top_k:
            kth = logits.topk(min(self.top_k, logits.size(-1)), dim=-1).values[:, -1:]  # (N, 1)
            logits = logits.masked_fill(logits < kth, NEG_INF)
        if self.top_p < 1:
            ordered, order = logits.sort(dim=-1, descending=True)
            probs = ordered.softmax(dim=-1)
            outside = probs.cumsum(dim=-1) - probs >= self.top_p  # the mass before a token already reaches p
            logits = logits.scatter(1, order, ordered.masked_fill(outside, NEG_INF))
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)


@dataclass
class _Finished:
    """The best finished hypotheses of each active sentence, sorted by score (-inf: empty slot).

    Attributes:
        scores, log_probs: (A, C).
        lengths: (A, C) output lengths, EOS counted.
        tokens: (A, C, T) ids, PAD after the last one.
        attention: (A, C, T, S) or None.
    """

    scores: torch.Tensor
    log_probs: torch.Tensor
    lengths: torch.Tensor
    tokens: torch.Tensor
    attention: torch.Tensor | None

    def select(self, index: torch.Tensor) -> _Finished:
        """The sentences (rows) at `index`."""
        return _Finished(*(None if t is None else t.index_select(0, index) for t in self._tensors()))

    def merge(self, candidates: _Finished) -> _Finished:
        """The best `C` of these and `candidates` (A, K, ...), sorted by score."""
        scores, best = torch.cat([self.scores, candidates.scores], 1).topk(self.scores.size(1), dim=1)
        merged = [
            None
            if a is None
            else torch.take_along_dim(torch.cat([a, b], 1), best.view(*best.shape, *[1] * (a.dim() - 2)), dim=1)
            for a, b in zip(self._tensors()[1:], candidates._tensors()[1:])
        ]
        return _Finished(scores, *merged)

    def _tensors(self) -> list[torch.Tensor | None]:
        return [self.scores, self.log_probs, self.lengths, self.tokens, self.attention]


@dataclass
class _Active:
    """What beam search keeps for each sentence still searching; sentences leave it together.

    Attributes:
        sentences: (A,) each active sentence's index in the batch.
        limit_penalties: (A,) the length penalty at each sentence's length limit (the exact rule's bound).
        row_min, row_max: (A*K,) each beam row's output length limits.
        source_mask: (A, S) real source positions.
    """

    sentences: torch.Tensor
    limit_penalties: torch.Tensor
    row_min: torch.Tensor
    row_max: torch.Tensor
    source_mask: torch.Tensor

    def select(self, keep: torch.Tensor) -> _Active:
        """The sentences at `keep` (A',), with their beam rows."""
        beam = self.row_min.size(0) // self.sentences.size(0)
        rows = [t.view(-1, beam).index_select(0, keep).view(-1) for t in (self.row_min, self.row_max)]
        return _Active(
            self.sentences.index_select(0, keep),
            self.limit_penalties.index_select(0, keep),
            *rows,
            self.source_mask.index_select(0, keep),
        )


@dataclass(frozen=True, kw_only=True)
class BeamSearch(Search):
    """Batched beam search with length and coverage penalties and an exact stopping rule.

    Each sentence keeps `beam_size` open hypotheses. At every step every finite EOS extension of
    every open hypothesis is finished with score

        s(Y) = log P(Y) / lp(|Y|) + beta * sum_j log(min(sum_i a_ij, 1))

    (lp: `length_penalty`; the second term is GNMT's coverage penalty over the hypothesis's
    attention a_ij, EOS step included, real source positions j only), and the best `beam_size`
    non-EOS extensions stay open, ranked by log P. The `nbest` best finished hypotheses are kept.

    Exact stopping rule (default): a sentence is done when it has `nbest` finished hypotheses and
    no open one can still beat the nbest-th, or when none is open (all reached the length limit
    M). Why the bound is safe: an open hypothesis with log P = p <= 0 can only end as some Y with
    log P(Y) <= p (every further token adds a log-probability <= 0) and |Y| <= M; lp grows with
    length (alpha >= 0), so log P(Y) / lp(|Y|) <= p / lp(|Y|) <= p / lp(M); the coverage term is
    <= 0 (beta >= 0, min(., 1) <= 1). So p / lp(M) bounds every score it can reach. Stopping thus
    never discards a hypothesis that would have been returned: the only search errors left are
    those of the beam width (none when `beam_size` covers every prefix).

    `stop_early=True` is the classic, approximate rule: only EOS extensions ranked within the best
    `beam_size` of all extensions are finished, and a sentence is done once `beam_size` are. It
    stops sooner and can miss better (e.g. longer, length-normalized) hypotheses.

    Args:
        beam_size: open hypotheses per sentence.
        nbest: hypotheses returned per sentence, best first (at most `beam_size`; fewer when
            fewer outputs exist).
        length_penalty: `gnmt` (((5 + |Y|) / 6) ** alpha), `average` (|Y|) or `none`.
        alpha: the gnmt exponent (0: no penalty); only `gnmt` reads it.
        coverage_penalty: GNMT's beta (0: off).
        stop_early: the approximate rule above.

    The other arguments are `Search`'s.
    """

    beam_size: int = 5
    nbest: int = 1
    length_penalty: str = "gnmt"
    alpha: float = 1.0
    coverage_penalty: float = 0.0
    stop_early: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.beam_size >= 1, "beam_size", self.beam_size, "must be at least 1")
        _require(
            1 <= self.nbest <= self.beam_size,
            "nbest",
            self.nbest,
            f"must be between 1 and beam_size ({self.beam_size})",
        )
        _require(
            self.length_penalty in LENGTH_PENALTIES,
            "length_penalty",
            self.length_penalty,
            f"use one of {', '.join(LENGTH_PENALTIES)}",
        )
        _require(self.alpha >= 0, "alpha", self.alpha, "must be at least 0 (a penalty that grows with length)")
        _require(self.coverage_penalty >= 0, "coverage_penalty", self.coverage_penalty, "must be at least 0")

    def penalty(self, lengths: torch.Tensor) -> torch.Tensor:
        """lp of output lengths (EOS counted), as float64."""
        return LENGTH_PENALTIES[self.length_penalty](lengths.double(), self.alpha)

    def _coverage_term(self, coverage: torch.Tensor, source_mask: torch.Tensor) -> torch.Tensor:
        """beta * sum_j log(min(sum_i a_ij, 1)) over real positions: coverage, mask (N, S) -> (N,).

        A position never attended counts as log(tiny), not -inf, so the score stays comparable.
        """
        tiny = torch.finfo(coverage.dtype).tiny
        logs = coverage.clamp(min=tiny, max=1.0).log().masked_fill(~source_mask, 0.0)
        return self.coverage_penalty * logs.sum(dim=-1).double()

    @torch.no_grad()
    def __call__(self, model: Decodable, src: torch.Tensor, src_lengths: torch.Tensor) -> list[list[Hypothesis]]:
        batch_size, device, beam = src.size(0), src.device, self.beam_size
        src_lengths = src_lengths.to(device)
        memory, state = model.start(src, src_lengths)
        copies = torch.arange(batch_size, device=device).repeat_interleave(beam)  # one state row per beam
        min_lengths, max_lengths = self.length_limits(src_lengths)  # (A,)
        steps, bounds = int(max_lengths.max()), self._mask_bounds(min_lengths, max_lengths)
        # Per batch, not per step: each row's limits, and each sentence's penalty at its limit
        # (the exact rule's bound); they shrink with the batch when sentences finish.
        active_sentences = _Active(
            torch.arange(batch_size, device=device),
            self.penalty(max_lengths),
            min_lengths.repeat_interleave(beam),
            max_lengths.repeat_interleave(beam),
            torch.arange(src.size(1), device=device) < src_lengths.unsqueeze(1),
        )
        open_log_probs = torch.full((batch_size, beam), NEG_INF, dtype=torch.float64, device=device)
        open_log_probs[:, 0] = 0.0  # the beams start identical: only the first may expand
        history = torch.full((batch_size * beam, steps + 1), PAD_ID, dtype=torch.long, device=device)
        history[:, 0] = BOS_ID  # (A*K, T + 1)
        coverage = attention = None  # (A*K, S) and (A*K, T, S), kept only when needed
        if self.coverage_penalty:
            coverage = torch.zeros(batch_size * beam, src.size(1), dtype=torch.float64, device=device)
        capacity = beam if self.stop_early else self.nbest
        finished = _Finished(
            torch.full((batch_size, capacity), NEG_INF, dtype=torch.float64, device=device),
            torch.full((batch_size, capacity), NEG_INF, dtype=torch.float64, device=device),
            torch.zeros(batch_size, capacity, dtype=torch.long, device=device),
            torch.full((batch_size, capacity, steps), PAD_ID, dtype=torch.long, device=device),
            None,
        )
        done_chunks: list[tuple[torch.Tensor, _Finished]] = []
        for step in range(steps):
            active = active_sentences.sentences.size(0)
            if step == 0:  # the beams start identical: the model steps one row per sentence, then copies
                scores, normalizers, state, weights = self._step(
                    model, history[::beam, :1], state, memory, min_lengths, max_lengths, *bounds
                )
                state = model.reorder(None, state, copies)[1]
                scores, normalizers, weights = (t.index_select(0, copies) for t in (scores, normalizers, weights))
            else:
                scores, normalizers, state, weights = self._step(
                    model,
                    history[:, : step + 1],
                    state,
                    memory,
                    active_sentences.row_min,
                    active_sentences.row_max,
                    *bounds,
                )
            if self.return_attention and attention is None:  # the model's dtype is known from now on
                attention = weights.new_zeros(active * beam, steps, weights.size(-1))
                finished.attention = weights.new_zeros(active, capacity, steps, weights.size(-1))
            if attention is not None:
                attention[:, step] = weights
            if coverage is not None:
                coverage += weights
            # Open log P keep the normalizers' precision (fp32 for fp32 and 16-bit models): float64
            # would double the cost of the sums and the top-k; finished scores are float64 anyway.
            open_log_probs = open_log_probs.to(normalizers.dtype)
            # Of the (A, K, V) extensions open + log P only two kinds are ever used: those ending
            # with EOS, and the best beam_size others, each of which is among the best beam_size
            # of its own row. So the sums and the top-k run over (A, K, K) candidates, not over
            # every extension (the same choice; a top-k over the (A*K, V) scores remains).
            ending = open_log_probs + (scores[:, EOS_ID].to(normalizers.dtype) - normalizers).view(active, beam)
            scores[:, EOS_ID] = NEG_INF
            row_best, row_tokens = scores.topk(min(beam, scores.size(-1)), dim=-1)  # (A*K, K')
            row_best = row_best.to(normalizers.dtype) - normalizers.unsqueeze(1)  # log P
            candidates = (open_log_probs.unsqueeze(-1) + row_best.view(active, beam, -1)).view(active, -1)
            kth = (
                torch.cat([candidates, ending], 1).topk(beam, dim=-1).values[:, -1:]  # of every extension
                if self.stop_early
                else None
            )
            finished = finished.merge(
                self._eos_extensions(ending, kth, step, history, coverage, attention, active_sentences.source_mask)
            )
            open_log_probs, best = candidates.topk(beam, dim=-1)  # (A, K) best first
            tokens = row_tokens.view(active, -1).gather(1, best)
            rows = torch.arange(active, device=device).unsqueeze(1) * beam + best // row_best.size(1)  # (A, K) parents
            done = self._done(finished.scores, open_log_probs, active_sentences.limit_penalties)  # (A,)
            if bool(done.any()):  # the step's one host sync; finished sentences leave the batch
                ended, keep = done.nonzero().squeeze(1), (~done).nonzero().squeeze(1)
                done_chunks.append((active_sentences.sentences[ended], finished.select(ended)))
                if keep.numel() == 0:
                    break
                active_sentences, finished = active_sentences.select(keep), finished.select(keep)
                open_log_probs, tokens, rows = open_log_probs[keep], tokens[keep], rows[keep]
                memory = model.reorder(memory, None, keep)[0]  # one row per sentence
            rows = rows.view(-1)
            state = model.reorder(None, state, rows)[1]
            history = history.index_select(0, rows)
            history[:, step + 1] = tokens.view(-1)
            if coverage is not None:
                coverage = coverage.index_select(0, rows)
            if attention is not None:
                attention = attention.index_select(0, rows)
        return self._hypotheses(done_chunks, batch_size, src_lengths.tolist())

    def _eos_extensions(
        self,
        log_probs: torch.Tensor,
        kth: torch.Tensor | None,
        step: int,
        history: torch.Tensor,
        coverage: torch.Tensor | None,
        attention: torch.Tensor | None,
        source_mask: torch.Tensor,
    ) -> _Finished:
        """Every open hypothesis ended by EOS at this step (stopping early: those ranked within
        the best beam_size extensions; the others get -inf).

        Args:
            log_probs: (A, K) log P of each open hypothesis extended by EOS.
            kth: (A, 1) the beam_size-th best log P of all extensions (stopping early only).
            history: (A*K, T + 1) BOS and the tokens so far; coverage (A*K, S) and attention
                (A*K, T, S) include this step.
            source_mask: (A, S) real source positions.
        """
        active, beam = log_probs.shape
        if kth is not None:
            log_probs = log_probs.masked_fill(log_probs < kth, NEG_INF)
        scores = log_probs / float(self.penalty(torch.tensor(step + 1)))  # a float: no device sync
        if coverage is not None:
            mask = source_mask.repeat_interleave(beam, dim=0)  # (A*K, S)
            scores = scores + self._coverage_term(coverage, mask).view(active, beam)
        tokens = history[:, 1:].reshape(active, beam, -1)  # (A, K, T): PAD after this step's tokens
        return _Finished(
            scores,
            log_probs,
            torch.full_like(log_probs, step + 1, dtype=torch.long),
            tokens,
            None if attention is None else attention.view(active, beam, *attention.shape[1:]),
        )

    def _done(
        self, finished_scores: torch.Tensor, open_log_probs: torch.Tensor, limit_penalties: torch.Tensor
    ) -> torch.Tensor:
        """Which sentences stop: finished_scores (A, C) and open_log_probs (A, K), both best first;
        limit_penalties (A,): the length penalty at each sentence's length limit."""
        if self.stop_early:  # beam_size finished, or nothing open
            return finished_scores[:, -1].isfinite() | open_log_probs[:, 0].isinf()
        # No open hypothesis can beat the nbest-th finished one (see the class docstring). With
        # nothing open, the bound is -inf and the sentence is done.
        return finished_scores[:, -1] >= open_log_probs[:, 0] / limit_penalties

    def _hypotheses(
        self, chunks: list[tuple[torch.Tensor, _Finished]], batch_size: int, source_lengths: list[int]
    ) -> list[list[Hypothesis]]:
        """The n-best lists in batch order from the finished store of each sentence."""
        nbest: list[list[Hypothesis]] = [[] for _ in range(batch_size)]
        for sentences, found in chunks:
            attention = None if found.attention is None else found.attention.cpu()
            for i, (sentence, scores, log_probs, lengths, tokens) in enumerate(
                zip(
                    sentences.tolist(),
                    found.scores.tolist(),
                    found.log_probs.tolist(),
                    found.lengths.tolist(),
                    found.tokens.tolist(),
                )
            ):
                nbest[sentence] = [
                    _hypothesis(
                        tokens[c],
                        lengths[c],
                        log_probs[c],
                        scores[c],
                        None if attention is None else attention[i, c],
                        source_lengths[sentence],
                    )
                    for c in range(self.nbest)
                    if scores[c] > NEG_INF
                ]
        return nbest


def build_search(config: Mapping[str, Any] | DictConfig, **overrides: Any) -> Search:
    """The search of a decode config (a `configs/decode/*.yaml`), with some fields overridden.

    The one way a search is built (training's validation and test, the CLI, the Python API), so
    every caller gets the config's defaults.

    Args:
        config: a mapping with `_target_` (one of the classes above) and its fields.
        overrides: fields to replace, e.g. from command-line flags.

    Raises:
        ValueError: naming unknown override fields, or an invalid value (`decode.<field>=...`).
    """
    config = config if isinstance(config, DictConfig) else OmegaConf.create(dict(config))
    known = {f.name for f in fields(get_class(config._target_))}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"unknown decode option(s) {', '.join(unknown)} for {config._target_}: use {', '.join(sorted(known))}"
        )
    try:
        return instantiate(config, **overrides)
    except InstantiationException as error:  # surface the field's own message
        if isinstance(error.__cause__, ValueError):
            raise error.__cause__ from None
        raise
