"""Attention diagnostics and word alignments: entropy, coverage, hard alignments, symmetrization, AER.

An attention matrix is (T, S): row t holds the weights output position t gave the S source
positions, as the model produced them (rows sum to one; `nmt.decoding.attention_maps.AttentionExample.weights`
is one, with the "</s>" row and column).

A link `(i, j)` joins source position i to target position j; reading and writing them as
Pharaoh files is `nmt.data.alignments`.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from nmt.data.alignments import Alignment, Link, word_indices
from nmt.metrics.bleu import DEFAULT_SEED, bootstrap_p_value, resample_counts


def attention_entropy(weights: np.ndarray) -> np.ndarray:
    """Entropy in nats of each output position's attention: 0 when it looks at one source
    position, log S when it spreads evenly over all S.

    Args:
        weights: (T, S) attention, rows summing to one.

    Returns:
        (T,) entropies (0 · log 0 counts as 0).
    """
    logs = np.log(weights, where=weights > 0, out=np.zeros_like(weights, dtype=float))
    return -(weights * logs).sum(axis=-1)


def argmax_coverage(weights: np.ndarray) -> float:
    """Fraction of source positions that are the most attended position of some output position.

    Low coverage means the model keeps looking at a few words (and likely drops the others).
    """
    return len(set(weights.argmax(axis=-1).tolist())) / weights.shape[-1]


def attention_mass(weights: np.ndarray) -> np.ndarray:
    """(S,) total attention each source position received over all output steps (a soft fertility:
    about 1 for a word translated once, near 0 for one the model skipped)."""
    return weights.sum(axis=0)


@dataclass(frozen=True)
class AttentionSummary:
    """Corpus attention diagnostics.

    Attributes:
        sentence_entropy: mean entropy of each sentence's output positions (nats).
        mean_entropy: mean over all output positions of the corpus (long sentences weigh more).
        coverage: argmax-covered source positions / all source positions, over the corpus.
    """

    sentence_entropy: list[float]
    mean_entropy: float
    coverage: float


def summarize_attention(matrices: Sequence[np.ndarray]) -> AttentionSummary:
    """Entropy and coverage of each sentence's (T, S) attention, and of the corpus.

    Raises:
        ValueError: if there is no matrix, or one is not (T, S) with T, S > 0.
    """
    if not matrices or any(m.ndim != 2 or 0 in m.shape for m in matrices):
        raise ValueError("need at least one attention matrix, each (T, S) with T, S > 0")
    entropies = [attention_entropy(m) for m in matrices]
    covered = sum(argmax_coverage(m) * m.shape[1] for m in matrices)
    return AttentionSummary(
        [float(e.mean()) for e in entropies],
        float(np.concatenate(entropies).mean()),
        covered / sum(m.shape[1] for m in matrices),
    )


def argmax_alignment(weights: np.ndarray) -> set[Link]:
    """Aligns every output position to the source position it attends to most: {(source, target)}."""
    return {(int(source), target) for target, source in enumerate(weights.argmax(axis=-1))}


def pieces_to_words(links: Iterable[Link], source_pieces: Sequence[str], target_pieces: Sequence[str]) -> set[Link]:
    """Piece-level links -> word-level links: two words are aligned when any of their pieces are.

    Pass the pieces without "</s>": links to positions past the pieces given (the "</s>" row or
    column) are dropped, so an output that attends mostly to "</s>" stays unaligned.
    """
    source_words, target_words = word_indices(source_pieces), word_indices(target_pieces)
    return {(source_words[i], target_words[j]) for i, j in links if i < len(source_words) and j < len(target_words)}


NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def grow_diag_final(forward: Iterable[Link], backward: Iterable[Link]) -> set[Link]:
    """Symmetrizes two directions' links as Moses' `symal` does (Koehn et al. 2003): start from
    their intersection; grow it, scanning the grid in order and seeing links as they are added,
    by links of the union next to a kept one (diagonals included) that join a source or a
    target word not yet aligned, until nothing changes; finally add the forward-only links, then
    the backward-only ones, whose source or target word is still unaligned.

    Args:
        forward: links (source, target) of the source -> target model.
        backward: links (source, target) of the target -> source model, already as (source, target).
    """
    forward, backward = set(forward), set(backward)
    union, links = forward | backward, forward & backward
    sources, targets = {i for i, _ in links}, {j for _, j in links}

    def add(link: Link) -> None:
        links.add(link)
        sources.add(link[0])
        targets.add(link[1])

    rows, columns = (max((link[axis] for link in union), default=-1) + 1 for axis in (0, 1))
    grown = True
    while grown:
        grown = False
        for i, j in itertools.product(range(rows), range(columns)):
            if (i, j) not in links:
                continue
            for di, dj in NEIGHBOURS:
                candidate = (i + di, j + dj)
                if (
                    candidate in union
                    and candidate not in links
                    and (candidate[0] not in sources or candidate[1] not in targets)
                ):
                    add(candidate)
                    grown = True
    for direction in (forward, backward):
        for link in sorted(direction - links):
            if link[0] not in sources or link[1] not in targets:
                add(link)
    return links


@dataclass(frozen=True)
class AlignmentScores:
    """Corpus AER, precision and recall (Och & Ney, 2003), and the link counts behind them.

    Precision = |A∩P| / |A|, recall = |A∩S| / |S|, AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|);
    a ratio with nothing to count (no links at all) is NaN.
    """

    aer: float
    precision: float
    recall: float
    hypothesis_links: int
    sure_links: int
    possible_links: int

    def __str__(self) -> str:
        return (
            f"AER {self.aer:.4f}\nprecision {self.precision:.4f}\nrecall {self.recall:.4f}\n"
            f"links: {self.hypothesis_links} hypothesis, {self.sure_links} sure, "
            f"{self.possible_links} possible (sure included)"
        )


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def alignment_error_rate(hypotheses: Sequence[Iterable[Link]], gold: Sequence[Alignment]) -> AlignmentScores:
    """Scores hypothesis links A against gold sure S and possible P links, summing counts over sentences.

    Raises:
        ValueError: if the two have different numbers of sentences.
    """
    a, s, a_and_s, a_and_p = sentence_counts(hypotheses, gold).sum(0).tolist()
    aer = 1 - _ratio(a_and_s + a_and_p, a + s)
    p = sum(len(reference.possible) for reference in gold)
    return AlignmentScores(aer, _ratio(a_and_p, a), _ratio(a_and_s, s), a, s, p)


def sentence_counts(hypotheses: Sequence[Iterable[Link]], gold: Sequence[Alignment]) -> np.ndarray:
    """(N, 4) int64 per sentence: |A|, |S|, |A∩S|, |A∩P|, what AER sums over a corpus.

    Raises:
        ValueError: if the two have different numbers of sentences.
    """
    if len(hypotheses) != len(gold):
        raise ValueError(f"{len(hypotheses)} hypothesis sentences, {len(gold)} gold sentences")
    rows = []
    for links, reference in zip(hypotheses, gold):
        links = set(links)
        rows.append((len(links), len(reference.sure), len(links & reference.sure), len(links & reference.possible)))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def aer_group_bootstrap(
    systems: Sequence[Sequence[Sequence[Iterable[Link]]]],
    gold: Sequence[Alignment],
    baseline: int = 0,
    samples: int = 1000,
    seed: int = DEFAULT_SEED,
) -> list[float | None]:
    """Paired bootstrap p-values of AER, as `nmt.metrics.bleu.group_bootstrap` gives for BLEU:
    systems of several runs each (a run: one list of links per test sentence), every run scored on
    the same resamples of the test sentences, a system's AER on a resample the mean of its runs'.

    Returns:
        p vs the baseline per system (None for the baseline itself; 1.0 for identical links).
    """
    if seed < 1 or samples < 1:
        raise ValueError(f"seed and samples must be positive, got seed={seed}, samples={samples}")
    counts = resample_counts(len(gold), samples, seed)  # (R, N)
    full, resampled = [], []
    for runs in systems:
        per_run = [sentence_counts(links, gold) for links in runs]  # (N, 4) each
        full.append(np.mean([_aer(c.sum(0)) for c in per_run]))
        resampled.append(np.mean([_aer(counts @ c) for c in per_run], axis=0))  # (R,)
    same = [Counter(map(_frozen, runs)) == Counter(map(_frozen, systems[baseline])) for runs in systems]
    return [
        None
        if index == baseline
        else 1.0
        if same[index]
        else bootstrap_p_value(full[index] - full[baseline], resampled[index] - resampled[baseline])
        for index in range(len(systems))
    ]


def _aer(sums: np.ndarray) -> np.ndarray:
    """AER from summed (..., 4) counts |A|, |S|, |A∩S|, |A∩P|."""
    sums = np.asarray(sums, dtype=np.float64)
    return 1 - (sums[..., 2] + sums[..., 3]) / (sums[..., 0] + sums[..., 1])


def _frozen(run: Sequence[Iterable[Link]]) -> tuple[frozenset[Link], ...]:
    return tuple(frozenset(links) for links in run)
