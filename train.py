"""Trains a model: `python train.py` (toy task) or `python train.py +experiment=bahdanau`.

Under `torchrun --nproc_per_node=N train.py ...` every process trains on its share of each
batch; rank 0 alone logs, validates and writes the run.
"""

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from nmt.errors import UserError
from nmt.experiment import run


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Runs one configuration; returns test BLEU (the value a Hydra sweeper would optimize)."""
    if int(os.environ.get("RANK", "0")) > 0:
        logging.getLogger().setLevel(logging.WARNING)  # one log per run: rank 0's
    try:
        scores = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (UserError, InstantiationException) as error:
        # InstantiationException: a constructor refused a config value; its cause names the key
        print(f"error: {getattr(error, '__cause__', None) or error}", file=sys.stderr)
        sys.exit(2)
    return scores.bleu if scores is not None else None


if __name__ == "__main__":
    main()
