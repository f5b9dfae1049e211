"""Training-step throughput on real batches: python scripts/benchmark_training.py [--steps N] [overrides]

Composes the config like train.py (e.g. `+experiment=bahdanau trainer.precision=bf16`), builds
the data, tokenizers and model the same way, then times `Trainer.train_step` over N batches
after a short warm-up and prints target tokens per second. No validation, no checkpoints.
Compare figures only when taken back to back: the machine's speed drifts.
"""

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from nmt.data.corpus import drop_empty_pairs, read_parallel
from nmt.experiment import resolve_device, seed_everything
from nmt.search import greedy_search
from nmt.tokenizer import build_tokenizers
from nmt.training import Trainer, ValidationData

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
    train = instantiate(cfg.data).prepare()["train"]
    src, tgt, _ = drop_empty_pairs(*read_parallel(train.src, train.tgt))
    with tempfile.TemporaryDirectory() as run_dir:
        src_tok, tgt_tok = build_tokenizers(instantiate(cfg.tokenizer), train.src, train.tgt,
                                            Path(cfg.tokenizer_cache), Path(run_dir) / "tokenizer")
        data = instantiate(cfg.batching)(src_tok.encode(src), tgt_tok.encode(tgt))
        model = instantiate(cfg.model, src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size)
        model = model.to(device)
        trainer = Trainer(model=model, optimizer=instantiate(cfg.optim)(model.parameters()), train_data=data,
                          valid_data=ValidationData([], [], []), tgt_tokenizer=tgt_tok, search=partial(greedy_search),
                          config=instantiate(cfg.trainer), run_dir=Path(run_dir), checkpoint_extras={}, device=device)
        batches = iter(data.epoch(0))
        for _ in range(args.warmup):
            trainer.train_step(next(batches).to(device))
        tokens, start = 0, time.perf_counter()
        for _ in range(args.steps):
            batch = next(batches)
            trainer.train_step(batch.to(device))
            tokens += batch.num_target_tokens
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"{' '.join(overrides)}: {args.steps} steps, {tokens / args.steps:.0f} target tokens a batch, "
              f"{tokens / seconds:.0f} target tokens/s, torch threads {torch.get_num_threads()}")
        trainer.writer.close()


if __name__ == "__main__":
    main()
