"""Trains a model: `python train.py` (toy task) or `python train.py +experiment=bahdanau`.

Under `torchrun --nproc_per_node=N train.py ...` every process trains on its share of each
batch; rank 0 alone logs, validates and writes the run. In a sweep (`-m`), a job that fails
leaves its reason in its run directory and the others go on (`nmt.analysis.sweep`).
"""

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig

from nmt.analysis.sweep import one_line, record_failure
from nmt.training.experiment import run
from nmt.training.run_layout import RunLayout
from nmt.utils.errors import UserError
from nmt.utils.heap import bound_onednn_cache


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Runs one configuration; returns test BLEU (the value a Hydra sweeper would optimize)."""
    bound_onednn_cache()
    if int(os.environ.get("RANK", "0")) > 0:
        logging.getLogger().setLevel(logging.WARNING)  # one log per run: rank 0's
    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    if hydra_config.mode == RunMode.MULTIRUN:
        RunLayout(run_dir).failure.unlink(missing_ok=True)  # a job run again: its old failure is past
        try:
            scores = run(cfg, run_dir)
        except Exception as error:  # noqa: BLE001 - any failure: record it, let the other jobs run
            record_failure(run_dir, error)
            return None
    else:
        try:
            scores = run(cfg, run_dir)
        except (UserError, InstantiationException) as error:
            print(f"error: {one_line(error)}", file=sys.stderr)
            sys.exit(2)
    return scores.bleu if scores is not None else None


if __name__ == "__main__":
    main()
