"""What a resumable checkpoint holds beyond the model: where training stands (`Progress`), the
`TrainingState` contract, and the check that a resumed run has the settings it was saved with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from nmt.board import flatten_hparams
from nmt.errors import UserError


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint and restored on resume.

    Attributes:
        step: updates made (skipped ones not counted).
        epoch: the current epoch; batch_in_epoch: the next position in its batch order.
        seconds: wall time so far (what `max_minutes` limits); validation_seconds and
            logging_seconds: the parts of it spent validating and writing logs.
        target_tokens, sentences: training data consumed.
        skipped_steps: updates skipped for a non-finite loss or gradient; bad_steps_in_a_row:
            the current run of them that counts toward `trainer.max_bad_steps`.
        best: metrics of the best validation so far; best_step: its step; best_averaged: the
            steps whose average `best.pt` holds (`trainer.average_last`), or [] for one checkpoint.
        validations_without_improvement: counts toward `patience`.
        validated_at: the step of the last validation; stopped_early: patience ran out.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    seconds: float = 0.0
    validation_seconds: float = 0.0
    logging_seconds: float = 0.0
    target_tokens: int = 0
    sentences: int = 0
    skipped_steps: int = 0
    bad_steps_in_a_row: int = 0
    best: dict[str, float] = field(default_factory=dict)
    best_step: int = 0
    best_averaged: list[int] = field(default_factory=list)
    validations_without_improvement: int = 0
    validated_at: int = -1
    stopped_early: bool = False


class TrainingState(TypedDict):
    """The `training` entry of `last.pt` (see `nmt.checkpoint`): everything besides the weights
    that decides what a resumed run does next."""

    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    scheduler: dict[str, Any] | None
    rng: list[dict[str, Any]]  # every rank's generators (`nmt.rng.rng_state`), in rank order
    progress: dict[str, Any]  # `Progress` as a dict


RESUME_SETTINGS = ("seed", "max_length", "data", "tokenizer", "batching", "model", "optim", "scheduler",
                   "trainer.accumulate", "trainer.precision", "trainer.clip_norm", "trainer.label_smoothing",
                   "trainer.coverage_loss_weight")
"""Config keys (and everything under them) a resumed run must share with the run it continues:
changing one would silently be overridden by the saved state (learning rate, schedule), or make
the saved position point into a different batch order. Limits, validation and logging settings
may change (e.g. a higher `trainer.max_steps` extends a finished run), and so may where the data
comes from (`data.local_dir`, another machine's copy of the same files)."""

MAY_DIFFER = frozenset({"data.local_dir"})


def check_same_settings(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Raises a one-line `UserError` naming the first setting that differs between the config a
    checkpoint was saved with and the run resuming from it."""
    old, new = flatten_hparams(saved), flatten_hparams(current)
    for key in sorted(set(old) | set(new)):
        if _governed(key) and old.get(key) != new.get(key):
            raise UserError(f"trainer.resume: {path} was saved with {key}={old.get(key, '<unset>')}, this run has "
                            f"{key}={new.get(key, '<unset>')}; resume with the same settings or start a new run")


def _governed(key: str) -> bool:
    """True when `key` is one of RESUME_SETTINGS or below one (not merely sharing a prefix)."""
    return key not in MAY_DIFFER and any(key == setting or key.startswith(f"{setting}.") for setting in RESUME_SETTINGS)
