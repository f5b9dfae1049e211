"""BLEU by source-sentence length (Bahdanau et al., 2015, Figure 2): buckets, a table and a plot,
for single runs or for systems trained with several seeds (mean and spread over the seeds).

Buckets have fixed edges (1-10, 11-20, ... words by default), so tables of different systems
and test sets line up; neighbouring buckets are merged until each holds at least `min_count`
sentences, because corpus BLEU over a handful of sentences is mostly noise. Quantile buckets
would balance the counts too, but their edges would move with every test set.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sacrebleu
from matplotlib.figure import Figure

from nmt.metrics.bleu import check_lengths


def word_lengths(sentences: Sequence[str]) -> list[int]:
    """Length of each raw sentence in whitespace-separated words."""
    return [len(sentence.split()) for sentence in sentences]


@dataclass(frozen=True)
class LengthBucket:
    """Sentences whose source length lies in `low..high` (inclusive).

    Attributes:
        low, high: the bucket's edges; the first bucket also holds empty sources (length 0).
        indices: positions of its sentences in the test set, ascending.
    """

    low: int
    high: int
    indices: list[int]

    @property
    def label(self) -> str:
        return f"{self.low}-{self.high}"


def length_buckets(lengths: Sequence[int], width: int = 10, min_count: int = 50) -> list[LengthBucket]:
    """Splits sentences into buckets of `width` lengths, merged left to right until each holds
    at least `min_count` sentences; a short remainder at the long end joins the last bucket.

    Every sentence lands in exactly one bucket. With fewer than `min_count` sentences in all,
    there is one bucket.

    Args:
        lengths: one length per sentence (e.g. `word_lengths(sources)`, or subword counts).

    Raises:
        ValueError: if `width` or `min_count` is not positive.
    """
    if width < 1 or min_count < 1:
        raise ValueError(f"width and min_count must be positive, got {width} and {min_count}")
    fine: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        fine.setdefault(max(length - 1, 0) // width, []).append(index)  # 1..width -> 0, ...
    buckets: list[LengthBucket] = []
    start, pending = 0, []
    for k in sorted(fine):
        pending += fine[k]
        if len(pending) >= min_count:
            buckets.append(LengthBucket(start * width + 1, (k + 1) * width, sorted(pending)))
            start, pending = k + 1, []
    if pending:
        last_high = (max(fine) + 1) * width
        if buckets:
            previous = buckets.pop()
            buckets.append(LengthBucket(previous.low, last_high, sorted(previous.indices + pending)))
        else:
            buckets.append(LengthBucket(start * width + 1, last_high, sorted(pending)))
    return buckets


@dataclass(frozen=True)
class LengthTable:
    """Corpus BLEU of each system on each length bucket.

    Attributes:
        buckets: the buckets, shortest first.
        bleu: system name -> one BLEU per bucket (for a system of several runs, their mean).
        spread: None for a table of single runs; for a table of systems of several runs
            (`bleu_by_length_of_groups`), system name -> the sample standard deviation of each
            bucket's BLEU over its runs. A system of one run has no entry: it has no spread.
    """

    buckets: list[LengthBucket]
    bleu: dict[str, list[float]]
    spread: dict[str, list[float]] | None = None

    def markdown(self) -> str:
        """One row per bucket: source length, sentence count, BLEU of each system (± its spread,
        — for a single run, in a table of systems)."""
        header = ["source length", "sentences", *self.bleu]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row, bucket in enumerate(self.buckets):
            cells = [bucket.label, str(len(bucket.indices))]
            for name, values in self.bleu.items():
                cell = f"{values[row]:.2f}"
                if self.spread is not None:
                    cell += f" ± {self.spread[name][row]:.2f}" if name in self.spread else " ± —"
                cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def bleu_by_length(
    buckets: Sequence[LengthBucket], systems: Sequence[tuple[str, Sequence[str]]], references: Sequence[Sequence[str]]
) -> LengthTable:
    """sacrebleu corpus BLEU (default settings, as in `score`) of every system on every bucket.

    Args:
        systems: (name, hypotheses) pairs, all line-aligned with `references`.
        references: one or more reference streams.

    Raises:
        UserError: if a reference stream's length differs from a system's hypotheses.
    """
    for name, hypotheses in systems:
        check_lengths(hypotheses, references, name)
    bleu = sacrebleu.metrics.BLEU()
    table = {
        name: [
            bleu.corpus_score(
                [hypotheses[i] for i in bucket.indices], [[stream[i] for i in bucket.indices] for stream in references]
            ).score
            for bucket in buckets
        ]
        for name, hypotheses in systems
    }
    return LengthTable(list(buckets), table)


def bleu_by_length_of_groups(
    buckets: Sequence[LengthBucket],
    groups: Sequence[tuple[str, Sequence[tuple[str, Sequence[str]]]]],
    references: Sequence[Sequence[str]],
) -> LengthTable:
    """Each system's mean BLEU per bucket over its runs (e.g. seeds), with the sample standard
    deviation as its spread: one seed's curve can cross another's by chance alone.

    Args:
        groups: (system name, runs) pairs; a run is a (name, hypotheses) pair as in `bleu_by_length`,
            its name unique within its system (e.g. its hypothesis file).
        references: one or more reference streams.

    Raises:
        UserError: if a reference stream's length differs from a run's hypotheses.
    """
    means, spread = {}, {}
    for name, runs in groups:
        per_bucket = list(zip(*bleu_by_length(buckets, runs, references).bleu.values()))  # (buckets, runs)
        means[name] = [statistics.mean(values) for values in per_bucket]
        if len(runs) > 1:
            spread[name] = [statistics.stdev(values) for values in per_bucket]
    return LengthTable(list(buckets), means, spread)


def length_figure(table: LengthTable) -> Figure:
    """BLEU against source length, one line per system (with error bars where the table has a
    spread); each tick shows its bucket's sentence count.

    A plain `Figure` (no pyplot): nothing global is touched, and no display is needed.
    """
    figure = Figure(figsize=(6.4, 4.0 + 0.25 * len(table.bleu)), layout="constrained")  # + the legend's rows
    axes = figure.add_subplot()
    positions = range(len(table.buckets))
    for name, values in table.bleu.items():
        axes.errorbar(positions, values, yerr=(table.spread or {}).get(name), marker="o", capsize=3, label=name)
    axes.set_xticks(positions, [f"{b.label}\n(n={len(b.indices)})" for b in table.buckets])
    axes.set_xlabel("source length (words)")
    axes.set_ylabel("BLEU")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)  # below the plot: never over a line
    return figure


def save_figure(figure: Figure, prefix: str | Path) -> list[Path]:
    """Writes `prefix`.png (for reading) and `prefix`.svg (for papers); returns both paths."""
    paths = [Path(f"{prefix}.png"), Path(f"{prefix}.svg")]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=150)
    return paths
