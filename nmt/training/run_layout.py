"""The run directory's layout: the one place that knows where a run's files go.

Training, testing, the tools and the result tables ask a `RunLayout` for paths instead of
joining names themselves, so the layout can change here alone.

    <run>/
      .hydra/config.yaml     the composed config (Hydra); overrides.yaml: the command line's overrides
      train.log              the log
      tokenizer/             src.model, tgt.model (copies; checkpoints also hold them)
      checkpoints/           last.pt (resumable), best.pt, step-<N>.pt (the last K)
      tensorboard/           event files
      test.hyp, scores.json  test translations and their scores
      extra_tests/           <name>.hyp, <name>.json: the same for each extra test set (data=files)
      summary.json           config values, sizes, times, best validation, test scores
      failed.txt             why the run failed, in one line (a sweep job that did not finish)
      .claim                 held by the training process writing the run (`RunLayout.claim`)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nmt.utils.errors import UserError

_STEP_CHECKPOINT = re.compile(r"step-(\d+)\.pt")


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run directory.

    Args:
        root: the run directory (`runs/<name>/<date_time>` or a sweep job's folder).
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        """The latest training state: what `trainer.resume=auto` picks up."""
        return self.checkpoints / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        """The best checkpoint by the validation metric."""
        return self.checkpoints / "best.pt"

    def step_checkpoint(self, step: int) -> Path:
        """The checkpoint kept for `step` (the last K are kept, for averaging)."""
        return self.checkpoints / f"step-{step}.pt"

    @staticmethod
    def checkpoint_step(path: Path) -> int:
        """The step of a step checkpoint's file name (`step-<N>.pt`)."""
        return int(_STEP_CHECKPOINT.fullmatch(path.name).group(1))

    def step_checkpoints(self) -> list[Path]:
        """Existing step checkpoints, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = [path for path in self.checkpoints.iterdir() if _STEP_CHECKPOINT.fullmatch(path.name)]
        return sorted(found, key=self.checkpoint_step)

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def test_hypotheses(self) -> Path:
        return self.root / "test.hyp"

    @property
    def scores(self) -> Path:
        return self.root / "scores.json"

    def extra_test_hypotheses(self, name: str) -> Path:
        """Translations of the extra test set `name` (`data.extra_tests`)."""
        return self.root / "extra_tests" / f"{name}.hyp"

    def extra_test_scores(self, name: str) -> Path:
        """Scores of the extra test set `name`."""
        return self.root / "extra_tests" / f"{name}.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def failure(self) -> Path:
        """Written by a failed sweep job: the reason in one line (the traceback is in the log)."""
        return self.root / "failed.txt"

    @property
    def claim_file(self) -> Path:
        """Locked by the training process that writes the run; says which process that is."""
        return self.root / ".claim"

    @contextlib.contextmanager
    def claim(self) -> Iterator[None]:
        """Holds the run directory for this process while it trains and writes there.

        Why: two runs that would share a directory (two launches in the same second get the same
        `<date_time>` name) would overwrite each other's checkpoints, and each would test
        whichever `best.pt` was written last. The second one fails at once instead, with a
        one-line error. The claim is an exclusive `flock`, which the system drops when the
        process ends, however it ends: a killed run's directory can be resumed at once.

        Raises:
            UserError: another process holds the directory.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.claim_file, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise UserError(
                    f"{self.root}: {holder} is training in this run directory; give this run its own "
                    f"(hydra.run.dir=...), or wait for that one to end to resume it"
                ) from None
            handle.truncate(0)
            handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
            yield

    @property
    def overrides(self) -> Path:
        """The command-line overrides Hydra ran the run with (a YAML list of `key=value` strings)."""
        return self.root / ".hydra" / "overrides.yaml"
