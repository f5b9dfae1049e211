"""Training-step throughput on real batches: python scripts/benchmark_training.py [--steps N] [overrides]

Composes the config like train.py (e.g. `+experiment=bahdanau trainer.precision=bf16`) and
builds data, tokenizers, model and trainer with the same functions as a training run
(`nmt.experiment`), then times `Trainer.train_step` over N batches after a short warm-up and
prints target tokens per second. No validation, no checkpoints. Compare figures only when taken
back to back: the machine's speed drifts.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from nmt import experiment
from nmt.distributed import resolve_device
from nmt.rng import seed_everything
from nmt.run_layout import RunLayout

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    args, overrides = parser.parse_known_args()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    with tempfile.TemporaryDirectory() as run_dir:
        layout = RunLayout(Path(run_dir))
        splits = experiment.prepare_data(cfg)
        tokenizers = experiment.make_tokenizers(cfg, splits, layout)
        train_data = experiment.load_training_data(cfg, splits, *tokenizers)
        valid_data = experiment.load_validation_data(splits, *tokenizers)
        model = experiment.build_model(cfg, *tokenizers, device)
        valid_search, _ = experiment.build_searches(cfg)
        trainer = experiment.build_trainer(cfg, model, train_data, valid_data, tokenizers, valid_search, layout,
                                           device)
        order = iter(train_data.batch_order(0))

        def step() -> int:
            indices = next(order)
            trainer.train_step([train_data.collate(indices).to(device)], [1.0], train_data.target_tokens(indices))
            return train_data.target_tokens(indices)

        for _ in range(args.warmup):
            step()
        start = time.perf_counter()
        tokens = sum(step() for _ in range(args.steps))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"{' '.join(overrides)}: {args.steps} steps, {tokens / args.steps:.0f} target tokens a batch, "
              f"{tokens / seconds:.0f} target tokens/s, torch threads {torch.get_num_threads()}")
        trainer.board.close()


if __name__ == "__main__":
    main()
