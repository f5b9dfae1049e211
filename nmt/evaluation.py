"""Scoring detokenized output with sacrebleu (BLEU and chrF, with their signatures)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sacrebleu

from nmt.errors import UserError

METRIC_MODES = {"bleu": "max", "chrf": "max", "ppl": "min", "loss": "min"}
"""Validation metrics a run can select on, and whether higher (`max`) or lower is better."""


def is_better(metric: str, value: float, than: float) -> bool:
    """True when `value` of a validation `metric` is strictly better than `than`."""
    return value > than if METRIC_MODES[metric] == "max" else value < than


@dataclass(frozen=True)
class Scores:
    """Corpus scores and the sacrebleu signatures that make them reproducible."""

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)

    def __str__(self) -> str:
        return (f"BLEU {self.bleu:.2f} ({self.bleu_signature})\n"
                f"chrF {self.chrf:.2f} ({self.chrf_signature})")


def score(hypotheses: list[str], references: list[list[str]]) -> Scores:
    """Scores hypotheses against one or more reference streams (cased, 13a tokenization).

    Raises:
        UserError: if a reference stream's length differs from the hypotheses'.
    """
    for number, stream in enumerate(references, start=1):
        if len(stream) != len(hypotheses):
            raise UserError(f"reference {number} has {len(stream)} lines, hypotheses have {len(hypotheses)}")
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, references)
    chrf_score = chrf.corpus_score(hypotheses, references)
    return Scores(bleu_score.score, chrf_score.score, str(bleu.get_signature()), str(chrf.get_signature()))
