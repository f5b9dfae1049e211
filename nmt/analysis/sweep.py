"""Sweeps that survive their failures: a failed job is recorded in its own folder, the others go on.

Hydra's launchers run every job of a sweep, but a job that raises makes the sweeper re-raise at
the end of its batch, and one that calls `sys.exit` (as a single run does on a `UserError`) ends
the whole sweep, or kills a joblib worker. So in a multirun the task function records the
failure in its run directory (`RunLayout.failure`: one line; the traceback goes to the job's
log) and returns, and `SweepReport`, a Hydra callback, lists every job that has no
`summary.json` when the sweep ends, with the command that runs it again, and exits with status 1
if there is one. Both work from the files alone, so they hold for any launcher (basic, joblib,
submitit), wherever the jobs ran. A job killed from outside (out of memory, a cluster's time
limit) raises nothing it could record: the launcher then stops the sweep itself, and
`nmt.analysis.results.job_status` still tells each job's state from its folder.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from nmt.analysis.results import job_status, natural_order, read_overrides
from nmt.training.run_layout import RunLayout
from nmt.utils.errors import UserError

log = logging.getLogger(__name__)


def one_line(error: BaseException) -> str:
    """The message a user reads: a `UserError`'s own line, or the cause of Hydra's
    `InstantiationException` (a constructor refused a config value; its message names the key);
    for anything else, the type and the first line of the message."""
    if isinstance(error, (UserError, InstantiationException)):
        return _first_line(error.__cause__ or error)
    message = _first_line(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def record_failure(run_dir: Path, error: BaseException) -> None:
    """Logs the failure (with its traceback, unless it is a mistake in the user's input) and writes
    the one-line reason to the job's failure file."""
    user_mistake = isinstance(error, (UserError, InstantiationException))
    log.error("the job failed: %s", one_line(error), exc_info=None if user_mistake else error)
    layout = RunLayout(run_dir)
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.failure.write_text(one_line(error) + "\n", encoding="utf-8")


def sweep_jobs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep (those Hydra wrote a `.hydra` folder into), in job order."""
    return sorted(
        (path.parent for path in Path(sweep_dir).glob("**/.hydra") if path.parent != Path(sweep_dir)), key=natural_order
    )


def rerun_command(job_dir: Path) -> str:
    """The command that runs one job again in its own folder, continuing from its last checkpoint:
    re-running the sweep would number its jobs anew (and retest the finished ones)."""
    kept = [o for o in read_overrides(RunLayout(job_dir)) or () if not o.lstrip("+~").startswith("hydra.")]
    return shlex.join(["python", "train.py", *kept, f"hydra.run.dir={job_dir}", "trainer.resume=auto"])


class SweepReport(Callback):
    """At the end of a sweep: one line per job that did not finish, exit status 1 if any."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = sweep_jobs(sweep_dir)
        problems = [(job, status) for job in jobs if (status := job_status(job)) != "finished"]
        if not problems:
            log.info("sweep finished: %d jobs in %s", len(jobs), sweep_dir)
            return
        lines = [f"error: {len(problems)} of {len(jobs)} jobs did not finish (the others' results are in place):"]
        lines += [f"  {job}: {status}\n    again: {rerun_command(job)}" for job, status in problems]
        print("\n".join(lines), file=sys.stderr)
        sys.exit(1)
