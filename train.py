"""Trains a model: `python train.py` (toy task) or `python train.py +experiment=bahdanau`."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nmt.errors import UserError
from nmt.experiment import run


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Runs one configuration; returns test BLEU (the value a Hydra sweeper would optimize)."""
    try:
        return run(cfg, Path(HydraConfig.get().runtime.output_dir)).bleu
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
