"""Scoring detokenized output with sacrebleu: BLEU, chrF and TER with their signatures, and
paired bootstrap resampling between systems (sacrebleu's own test, seeded)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import sacrebleu
from sacrebleu.significance import PairedTest

from nmt.utils.errors import UserError

METRIC_MODES = {"bleu": "max", "chrf": "max", "ppl": "min", "loss": "min"}
"""Validation metrics a run can select on, and whether higher (`max`) or lower is better."""

DEFAULT_SEED = 12345
"""sacrebleu's own default seed, so our bootstrap numbers match `sacrebleu --paired-bs`."""


def is_better(metric: str, value: float, than: float) -> bool:
    """True when `value` of a validation `metric` is strictly better than `than`."""
    return value > than if METRIC_MODES[metric] == "max" else value < than


@dataclass(frozen=True)
class Scores:
    """Corpus scores and the sacrebleu signatures that make them reproducible.

    TER is an error rate (lower is better) and, as in tercom, case-insensitive by default.
    """

    bleu: float
    chrf: float
    ter: float
    bleu_signature: str
    chrf_signature: str
    ter_signature: str

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"BLEU {self.bleu:.2f} ({self.bleu_signature})\n"
            f"chrF {self.chrf:.2f} ({self.chrf_signature})\n"
            f"TER {self.ter:.2f} ({self.ter_signature})"
        )


def check_lengths(hypotheses: Sequence[str], references: Sequence[Sequence[str]], name: str | None = None) -> None:
    """Raises a one-line `UserError` unless every reference stream is as long as the hypotheses.

    Args:
        name: the hypothesis file, put in front of the message when given.
    """
    for number, stream in enumerate(references, start=1):
        if len(stream) != len(hypotheses):
            where = f"{name}: " if name else ""
            raise UserError(f"{where}reference {number} has {len(stream)} lines, hypotheses have {len(hypotheses)}")


def score(hypotheses: list[str], references: list[list[str]]) -> Scores:
    """Scores hypotheses against one or more reference streams (BLEU and chrF cased, 13a tokenization).

    Raises:
        UserError: if a reference stream's length differs from the hypotheses'.
    """
    check_lengths(hypotheses, references)
    bleu, chrf, ter = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF(), sacrebleu.metrics.TER()
    values = [metric.corpus_score(hypotheses, references).score for metric in (bleu, chrf, ter)]
    # a signature is only complete (nrefs) once its metric has scored something
    return Scores(*values, str(bleu.get_signature()), str(chrf.get_signature()), str(ter.get_signature()))


@dataclass(frozen=True)
class BootstrapResult:
    """One system's score under one metric in a paired bootstrap test.

    Attributes:
        score: the corpus score on the whole test set.
        mean: the mean score over the bootstrap resamples.
        ci: half the width of the 95% confidence interval around `mean`.
        p_value: the chance of a difference from the baseline at least this large if the two
            systems were equally good; None for the baseline itself.
    """

    score: float
    mean: float
    ci: float
    p_value: float | None


@dataclass(frozen=True)
class Comparison:
    """Systems compared with the first (the baseline) by paired bootstrap resampling.

    Attributes:
        systems: the systems' names, baseline first.
        results: metric name (sacrebleu's, e.g. "BLEU", "chrF2") -> one result per system.
        signatures: metric name -> sacrebleu signature, with the resample count and seed.
    """

    systems: list[str]
    results: dict[str, list[BootstrapResult]]
    signatures: dict[str, str]

    def __str__(self) -> str:
        """A Markdown table (score, bootstrap mean ± 95% CI, p vs the baseline; * for p < 0.05),
        then the signatures."""
        metrics = list(self.results)
        header = ["system"] + [column for metric in metrics for column in (metric, "μ ± 95% CI", "p")]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row, system in enumerate(self.systems):
            cells = [f"{system} (baseline)" if row == 0 else system]
            for metric in metrics:
                result = self.results[metric][row]
                p = "" if result.p_value is None else f"{result.p_value:.4f}{'*' if result.p_value < 0.05 else ''}"
                cells += [f"{result.score:.2f}", f"{result.mean:.2f} ± {result.ci:.2f}", p]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [f"{metric} signature: {signature}" for metric, signature in self.signatures.items()]
        return "\n".join(lines)


@contextmanager
def _sacrebleu_seed(seed: int) -> Iterator[None]:
    """`PairedTest` takes no seed argument: it reads SACREBLEU_SEED when it is built."""
    previous = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SACREBLEU_SEED"]
        else:
            os.environ["SACREBLEU_SEED"] = previous


def paired_bootstrap(
    systems: Sequence[tuple[str, Sequence[str]]],
    references: Sequence[Sequence[str]],
    samples: int = 1000,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """Compares each system with the first by paired bootstrap resampling (Koehn, 2004) on BLEU and chrF.

    Every system is scored on the same `samples` resamples of the test sentences; the p-value is
    sacrebleu's (`PairedTest`, test type "bs"), so results match `sacrebleu --paired-bs`.

    Args:
        systems: (name, hypotheses) pairs; the first is the baseline.
        references: one or more reference streams.
        samples: how many resamples.
        seed: a positive integer; the same seed gives the same numbers.

    Raises:
        UserError: if a reference stream's length differs from a system's hypotheses.
        ValueError: if `seed` or `samples` is not positive.
    """
    if seed < 1 or samples < 1:
        raise ValueError(f"seed and samples must be positive, got seed={seed}, samples={samples}")
    for name, hypotheses in systems:
        check_lengths(hypotheses, references, name)
    metrics = {"BLEU": sacrebleu.metrics.BLEU(), "chrF": sacrebleu.metrics.CHRF()}
    with _sacrebleu_seed(seed):
        test = PairedTest(
            [(name, list(h)) for name, h in systems],
            metrics,
            [list(r) for r in references],
            test_type="bs",
            n_samples=samples,
        )
    signatures, table = test()
    baseline = list(systems[0][1])
    results = {}
    for metric, column in table.items():
        if metric == "System":
            continue
        results[metric] = [
            # sacrebleu counts resampled differences strictly above the observed one; when a system's
            # output is the baseline's, every difference is 0 and it would report p = 1/(samples+1),
            # "significant". Identical outputs cannot differ, so their p is 1.
            BootstrapResult(
                r.score,
                float(r.mean),
                float(r.ci),
                None if row == 0 else 1.0 if list(systems[row][1]) == baseline else float(r.p_value),
            )
            for row, r in enumerate(column)
        ]
    return Comparison([name for name, _ in systems], results, {m: str(s) for m, s in signatures.items()})


@dataclass(frozen=True)
class GroupTest:
    """A paired bootstrap test of systems of several runs, on each metric (`bleu`, `chrf`).

    Attributes:
        scores: metric -> per system, each run's corpus score on the whole test set.
        p_values: metric -> per system, p vs the baseline (None for the baseline itself).
    """

    scores: dict[str, list[list[float]]]
    p_values: dict[str, list[float | None]]


def group_bootstrap(
    systems: Sequence[tuple[str, Sequence[tuple[str, Sequence[str]]]]],
    references: Sequence[Sequence[str]],
    baseline: int = 0,
    samples: int = 1000,
    seed: int = DEFAULT_SEED,
) -> GroupTest:
    """Paired bootstrap resampling (Koehn, 2004) of systems given as several runs' hypotheses each.

    Every run is scored on the same resampled sentence sets; a system's score on a resample is
    its runs' mean. The p-value is then sacrebleu's (`_paired_bs_test`): resample differences
    |system - baseline|, centred on their mean, counted when above the observed difference,
    p = (count + 1) / (samples + 1). With one run per system this is `paired_bootstrap`, number
    for number: the same index sets from `default_rng(seed)` and the same float32 statistics.

    Args:
        systems: (system name, runs) pairs; a run is a (name, hypotheses) pair (as in
            `nmt.analysis.length.bleu_by_length_of_groups`).
        references: one or more reference streams.
        baseline: the index of the system the others are compared with.

    Raises:
        UserError: if a reference stream's length differs from a run's hypotheses.
        ValueError: if `seed` or `samples` is not positive.
    """
    if seed < 1 or samples < 1:
        raise ValueError(f"seed and samples must be positive, got seed={seed}, samples={samples}")
    outputs = [[list(hypotheses) for _, hypotheses in runs] for _, runs in systems]
    for _, runs in systems:
        for name, hypotheses in runs:
            check_lengths(hypotheses, references, name)
    counts = resample_counts(len(references[0]), samples, seed)
    refs = [list(stream) for stream in references]
    # identical outputs cannot differ; sacrebleu would call them significant (see `paired_bootstrap`)
    same = [sorted(map(tuple, runs)) == sorted(map(tuple, outputs[baseline])) for runs in outputs]
    scores, p_values = {}, {}
    for name, metric in (("bleu", sacrebleu.metrics.BLEU()), ("chrf", sacrebleu.metrics.CHRF())):
        full, resampled = [], []
        for runs in outputs:
            run_scores, run_resampled = [], []
            for hypotheses in runs:
                stats = metric._extract_corpus_statistics(hypotheses, refs)
                run_scores.append(metric._aggregate_and_compute(stats).score)
                # integer counts, exact in float32 as in sacrebleu's `stats[idxs].sum(0)`
                sums = (counts @ np.array(stats, dtype=np.float64)).astype(np.float32)
                run_resampled.append([metric._compute_score_from_stats(row).score for row in sums])
            scores.setdefault(name, []).append(run_scores)
            full.append(np.mean(run_scores))
            resampled.append(np.mean(run_resampled, axis=0))
        p_values[name] = [
            None
            if index == baseline
            else 1.0
            if same[index]
            else bootstrap_p_value(full[index] - full[baseline], resampled[index] - resampled[baseline])
            for index in range(len(outputs))
        ]
    return GroupTest(scores, p_values)


def resample_counts(size: int, samples: int, seed: int) -> np.ndarray:
    """(samples, size): how often each of `size` test sentences is drawn into each of `samples`
    bootstrap resamples, from sacrebleu's index sets (`default_rng(seed)`). A resample's sum of a
    per-sentence statistic is then one matrix product."""
    indices = np.random.default_rng(seed).choice(size, size=(samples, size), replace=True)
    counts = np.zeros((samples, size))
    np.add.at(counts, (np.arange(samples)[:, None], indices), 1)
    return counts


def bootstrap_p_value(observed: float, resampled: np.ndarray) -> float:
    """sacrebleu's p for differences between two systems' scores: on the whole test set
    (`observed`) and on each resample."""
    differences = np.abs(resampled)
    return (np.sum(differences - differences.mean() > abs(observed)).item() + 1) / (len(differences) + 1)
