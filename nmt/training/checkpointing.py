"""Saving and resuming a run: which checkpoints it writes, and how it continues from one.

`RunCheckpoints` is the policy: `last.pt` (with the training state) at every validation, step
checkpoints (the last `keep_last`), `best.pt`, the average of the last step checkpoints, and
resuming from `last.pt`. Beyond the model (`nmt.checkpoint`), a resumable checkpoint holds where
training stands (`Progress`) in the `TrainingState` contract; `check_same_settings` refuses to
resume with settings that would silently differ.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import torch

from nmt.checkpoint import Checkpoint, average_checkpoints, build_checkpoint, load_checkpoint, save_checkpoint
from nmt.data.tokenizer import Tokenizer
from nmt.training.distributed import Distributed
from nmt.training.run_layout import RunLayout
from nmt.utils.config import flatten_config
from nmt.utils.errors import UserError
from nmt.utils.rng import rng_state

log = logging.getLogger(__name__)


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
    rng: list[dict[str, Any]]  # every rank's generators (`nmt.utils.rng.rng_state`), in rank order
    progress: dict[str, Any]  # `Progress` as a dict


RESUME_SETTINGS = (
    "seed",
    "max_length",
    "data",
    "tokenizer",
    "batching",
    "model",
    "optim",
    "scheduler",
    "trainer.accumulate",
    "trainer.precision",
    "trainer.clip_norm",
    "trainer.label_smoothing",
    "trainer.coverage_loss_weight",
    "trainer.guided_alignment",
)
"""Config keys (and everything under them) a resumed run must share with the run it continues:
changing one would silently be overridden by the saved state (learning rate, schedule), or make
the saved position point into a different batch order. Limits, validation and logging settings
may change (e.g. a higher `trainer.max_steps` extends a finished run), and so may where the data
comes from (`data.local_dir`, another machine's copy of the same files)."""

MAY_DIFFER = frozenset({"data.local_dir"})

ADDED_SETTINGS = {
    "model.cell": "gru",
    "model.decoder.normalizer": "softmax",
    "trainer.guided_alignment._target_": "nmt.training.loss.GuidedAlignment",
    "trainer.guided_alignment.weight": 0.0,
    "trainer.guided_alignment.alignments": "null",
}
"""Settings added after runs were saved without them, with the value that behaves as those runs
did: a config that lacks the key compares as if it had that value."""


def check_same_settings(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Raises a one-line `UserError` naming the first setting that differs between the config a
    checkpoint was saved with and the run resuming from it."""
    old, new = ({**ADDED_SETTINGS, **flatten_config(config)} for config in (saved, current))
    for key in sorted(set(old) | set(new)):
        if _governed(key) and old.get(key) != new.get(key):
            raise UserError(
                f"trainer.resume: {path} was saved with {key}={old.get(key, '<unset>')}, this run has "
                f"{key}={new.get(key, '<unset>')}; resume with the same settings or start a new run"
            )


def _governed(key: str) -> bool:
    """True when `key` is one of RESUME_SETTINGS or below one (not merely sharing a prefix)."""
    return key not in MAY_DIFFER and any(key == setting or key.startswith(f"{setting}.") for setting in RESUME_SETTINGS)


class RunCheckpoints:
    """The checkpoints of one run, in its directory (`RunLayout`); rank 0 alone writes.

    Args:
        layout: the run directory.
        distributed: this process's rank.
        run_config: the resolved run config, stored in every checkpoint.
        tokenizers: source and target tokenizers, stored in every checkpoint.
        keep_last: step checkpoints kept (0: none written).
    """

    def __init__(
        self,
        layout: RunLayout,
        distributed: Distributed,
        run_config: dict[str, Any],
        tokenizers: tuple[Tokenizer, Tokenizer],
        keep_last: int,
    ) -> None:
        self.layout, self.distributed, self.run_config = layout, distributed, run_config
        self.tokenizers, self.keep_last = tokenizers, keep_last

    def resume_path(self, resume: str | None) -> Path | None:
        """The checkpoint `trainer.resume` names (`auto`: `last.pt` if there is one), as rank 0
        sees it: every rank must resume (or not) alike."""
        if resume is None:
            return None
        path = None
        if self.distributed.is_main:
            if resume == "auto":
                path = self.layout.last_checkpoint if self.layout.last_checkpoint.is_file() else None
            elif Path(resume).is_file():
                path = Path(resume)
            else:
                raise UserError(f"trainer.resume={resume}: checkpoint not found")
        path = self.distributed.broadcast(path)
        if path is not None and not path.is_file():
            raise UserError(
                f"trainer.resume: rank {self.distributed.rank} cannot read {path}: resuming on "
                "several nodes needs the run directory on a filesystem they share"
            )
        return path

    def model_checkpoint(
        self, model: torch.nn.Module, step: int, metrics: dict[str, float], precision: str
    ) -> Checkpoint:
        """The self-contained checkpoint of the model as it stands (weights, run config,
        tokenizers, step, `metrics`), without the training state that `last.pt` adds."""
        src, tgt = self.tokenizers
        return build_checkpoint(
            model.state_dict(),
            self.run_config,
            {"src": src.model_bytes, "tgt": tgt.model_bytes},
            step,
            metrics,
            precision=precision,
        )

    def save(self, payload: Checkpoint, training: TrainingState, best: bool) -> None:
        """Writes a step checkpoint, `best.pt` if `best`, and `last.pt` (with `training`)."""
        step, layout = payload["step"], self.layout
        # last.pt last: a run killed in between resumes from the previous last.pt and redoes
        # these writes, so best.pt can never lag behind the best that last.pt records.
        if self.keep_last:
            save_checkpoint(layout.step_checkpoint(step), payload)
            for old in layout.step_checkpoints()[: -self.keep_last]:
                old.unlink()
        if best:
            save_checkpoint(layout.best_checkpoint, payload)
        save_checkpoint(layout.last_checkpoint, {**payload, "training": training})

    def gather_rng_states(self) -> list[dict[str, Any]]:
        """Every rank's random generators, in rank order (a collective: every rank calls it)."""
        return self.distributed.gather(rng_state())

    def restore(
        self,
        path: Path,
        payload: Checkpoint,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        scheduler: Any | None,
    ) -> tuple[Progress, dict[str, Any] | None]:
        """Restores model, optimizer, scheduler and scaler from `payload`, read from `path`.

        Returns:
            Where training stands, and this rank's saved random-generator states (for the
            caller to restore last), or None when the run was saved by another number of ranks.
        """
        training = payload.get("training")
        if training is None:
            raise UserError(f"{path}: holds no training state (only last.pt does); resume from last.pt")
        check_same_settings(payload["config"], self.run_config, path)
        try:
            model.load_state_dict(payload["model"])
        except RuntimeError as error:
            raise UserError(f"{path}: its weights do not fit this run's model ({str(error).splitlines()[0]})") from None
        optimizer.load_state_dict(training["optimizer"])
        scaler.load_state_dict(training["scaler"])
        if (training["scheduler"] is None) != (scheduler is None):
            raise UserError(
                f"{path}: saved with{'out' if training['scheduler'] is None else ''} a scheduler; "
                "resume with the same scheduler setting"
            )
        if scheduler is not None:
            scheduler.load_state_dict(training["scheduler"])
        progress = Progress(**training["progress"])
        best_before = RunLayout(path.parent.parent).best_checkpoint
        if self.distributed.is_main and not self.layout.best_checkpoint.is_file() and best_before.is_file():
            # continuing another run's training here: its best so far is this run's best so far
            save_checkpoint(self.layout.best_checkpoint, load_checkpoint(best_before))
        log.info(
            "resumed from %s at step %d (epoch %d, batch %d), %.1f min already spent",
            path,
            progress.step,
            progress.epoch,
            progress.batch_in_epoch,
            progress.seconds / 60,
        )
        states = training["rng"]
        if len(states) != self.distributed.world_size:
            log.warning(
                "%s was saved by %d processes, this run has %d: random draws (dropout) will differ from "
                "an uninterrupted run",
                path,
                len(states),
                self.distributed.world_size,
            )
            return progress, None
        return progress, states[self.distributed.rank]

    def average_of_last(self, count: int) -> tuple[Checkpoint, list[int]] | None:
        """The average of the last `count` step checkpoints and their steps; None with fewer than two."""
        paths = self.layout.step_checkpoints()[-count:]
        if len(paths) < 2:
            log.info(
                "no averaging: %d step checkpoint(s) (trainer.save_every sets how often they are written)", len(paths)
            )
            return None
        return average_checkpoints(paths), [self.layout.checkpoint_step(path) for path in paths]

    def promote_average(self, averaged: Checkpoint, progress: Progress) -> None:
        """Makes `averaged` the run's `best.pt`; `last.pt` learns of it too (`progress`), so a run
        resumed to train further compares with it."""
        save_checkpoint(self.layout.best_checkpoint, averaged)
        last = load_checkpoint(self.layout.last_checkpoint)
        last["training"]["progress"] = asdict(progress)
        save_checkpoint(self.layout.last_checkpoint, last)
