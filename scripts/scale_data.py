"""The cost of the data at scale: python scripts/scale_data.py [--sizes 100000 1000000 4000000] [overrides]

For each size, generates a synthetic parallel corpus (no download), prepares it with empty caches
(sentencepiece training on a sample, then encoding in worker processes), then trains a few hundred
steps on the warm cache. Each preparation and each training runs in a fresh process, set up by the
steps of `nmt.training.experiment` with `data=files` (composed like train.py, so overrides apply), and
reports: preparation time, encoded cache size, start-up to the first step (process launch to the
end of the first update), peak resident memory (VmHWM, and its anonymous part: the rest is the
page cache of the memory-mapped arrays, shared and reclaimable) and target tokens per second of
wall time and of the process's CPU time (steady when other processes share the machine). Prints a
Markdown table and writes JSON.

The model is the default, toy-size one, on one torch thread: what is measured is the cost of the
data, not the model's, and one thread keeps the figures steady on a shared machine (with two, each
small matrix product can stall waiting for a core another process holds).

The corpus: sentences of Zipf-distributed pseudo-words (lengths log-normal, median 12 words); the
target translates every word through a fixed dictionary and swaps neighbouring words, so it is
learnable and needs attention.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from nmt.training import experiment
from nmt.training.run_layout import RunLayout
from nmt.utils.device import resolve_device
from nmt.utils.rng import seed_everything

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
HELD_OUT = 500  # validation and test pairs
VOCABULARY = 20_000  # pseudo-words per language


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 4_000_000], help="pairs")
    parser.add_argument("--steps", type=int, default=300, help="training updates per size")
    parser.add_argument("--warmup", type=int, default=20, help="first updates left out of tokens/s")
    parser.add_argument("--workers", type=int, default=2, help="encoding processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    parser.add_argument("--work", type=Path, default=Path("data/scale"), help="corpora and caches (git-ignored data/)")
    parser.add_argument("--json", type=Path, default=None, help="results file (default: <work>/scale.json)")
    parser.add_argument("--child", choices=["prepare", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args()
    if args.child:
        result = CHILDREN[args.child](args, overrides)
        print(json.dumps(result))
        return
    rows = [measure(size, args, overrides) for size in args.sizes]
    report = {
        "date": date.today().isoformat(),
        "command": " ".join(sys.argv),
        "steps": args.steps,
        "warmup": args.warmup,
        "workers": args.workers,
        "threads": args.threads,
        "overrides": overrides,
        "sizes": rows,
    }
    if len(rows) > 1:
        report["bytes_per_pair"] = {
            key: (rows[-1][key] - rows[0][key]) * 2**20 / (rows[-1]["pairs"] - rows[0]["pairs"])
            for key in ("peak_rss_mb", "peak_anonymous_mb")
        }
    json_path = args.json or args.work / "scale.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"\nwrote {json_path}")


def measure(size: int, args: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    """Generates (once), prepares (cold) and trains (warm) on one corpus size."""
    corpus = args.work / f"corpus-{size}"
    if not (corpus / "done").is_file():
        generate(corpus, size)
    shutil.rmtree(args.work / f"data-{size}", ignore_errors=True)  # cold caches for the preparation
    prepared = child("prepare", size, args, overrides)
    encoded = args.work / f"data-{size}" / "encoded"
    launched = time.time()
    trained = child("train", size, args, overrides)
    return {
        "pairs": size,
        "corpus_mb": sum(f.stat().st_size for f in corpus.glob("train.*")) / 2**20,
        **prepared,
        "cache_mb": sum(f.stat().st_size for f in encoded.rglob("*") if f.is_file()) / 2**20,
        "startup_seconds": trained.pop("first_step_at") - launched,
        **trained,
    }


def child(kind: str, size: int, args: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--size",
        str(size),
        "--work",
        str(args.work),
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        *overrides,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{kind} of {size} pairs failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the corpus ---------------------------------------------------------------------------------


def pseudo_words(consonants: str, vowels: str, count: int) -> list[str]:
    """`count` distinct words of consonant-vowel syllables, shortest first (the frequent ones)."""
    syllables = [c + v for c in consonants for v in vowels]
    words, length = [], 1
    while len(words) < count:
        for index in range(len(syllables) ** length):
            digits = [(index // len(syllables) ** k) % len(syllables) for k in range(length)]
            words.append("".join(syllables[d] for d in digits))
            if len(words) == count:
                break
        length += 1
    return words


def generate(folder: Path, size: int, seed: int = 11) -> None:
    """Writes `{train,valid,test}.{src,tgt}` under `folder` (the same text for the same size)."""
    rng = np.random.default_rng(seed)
    source = np.array(pseudo_words("bdfgklmnprstvz", "aeiou", VOCABULARY), dtype=object)
    target = np.array(pseudo_words("BCDFGHJKLMNPQRSTVWXZ", "aeiouy", VOCABULARY), dtype=object)
    dictionary = target[rng.permutation(VOCABULARY)]  # source word i -> target word dictionary[i]
    zipf = 1.0 / (np.arange(VOCABULARY) + 2.7) ** 1.1
    folder.mkdir(parents=True, exist_ok=True)
    for split, pairs in (("train", size), ("valid", HELD_OUT), ("test", HELD_OUT)):
        with open(folder / f"{split}.src", "w") as src_file, open(folder / f"{split}.tgt", "w") as tgt_file:
            for start in range(0, pairs, 100_000):
                lengths = np.clip(rng.lognormal(2.5, 0.5, min(100_000, pairs - start)).astype(int), 1, 60)
                words = rng.choice(VOCABULARY, int(lengths.sum()), p=zipf / zipf.sum())
                position = np.arange(len(words)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
                last = position == np.repeat(lengths, lengths) - 1
                neighbour = np.where(position % 2 == 1, -1, np.where(last, 0, 1))  # swap pairs (a lone last stays)
                src_text = source[words].tolist()
                tgt_text = dictionary[words[np.arange(len(words)) + neighbour]].tolist()
                bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
                for a, b in zip(bounds[:-1], bounds[1:]):
                    src_file.write(" ".join(src_text[a:b]) + "\n")
                    tgt_file.write(" ".join(tgt_text[a:b]) + "\n")
    (folder / "done").write_text(f"{size} pairs, seed {seed}\n")


# --- the measured processes ---------------------------------------------------------------------


def compose_config(args: argparse.Namespace, overrides: list[str]) -> DictConfig:
    corpus = args.work.resolve() / f"corpus-{args.size}"
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                "data=files",
                f"data.train={corpus}/train",
                f"data.valid={corpus}/valid",
                f"data.test={corpus}/test",
                "data.src_lang=src",
                "data.tgt_lang=tgt",
                f"data_root={args.work.resolve()}/data-{args.size}",
                f"encode_workers={args.workers}",
                "device=cpu",
                "trainer.progress_bar=false",
                *overrides,
            ],
        )


def prepare(args: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    """Tokenizer training and encoding, timed separately (the caches are empty)."""
    cfg = compose_config(args, overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.monotonic()
        splits = experiment.prepare_data(cfg)
        tokenizers = experiment.make_tokenizers(cfg, splits, RunLayout(Path(run_dir)))
        trained = time.monotonic()
        experiment.load_training_data(cfg, splits, *tokenizers)
        return {"tokenizer_seconds": trained - start, "encoding_seconds": time.monotonic() - trained}


def train(args: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    """Set-up from the warm caches, then `args.steps` updates; memory is watched throughout."""
    watcher = AnonymousPeak()
    torch.set_num_threads(args.threads)
    cfg = compose_config(args, overrides)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    with tempfile.TemporaryDirectory() as run_dir:
        layout = RunLayout(Path(run_dir))
        start = time.monotonic()
        splits = experiment.prepare_data(cfg)
        tokenizers = experiment.make_tokenizers(cfg, splits, layout)
        train_data = experiment.load_training_data(cfg, splits, *tokenizers)
        data_seconds = time.monotonic() - start
        valid_data = experiment.load_validation_data(cfg, splits, *tokenizers)
        model = experiment.build_model(cfg, *tokenizers, device)
        valid_search, _ = experiment.build_searches(cfg)
        trainer = experiment.build_trainer(cfg, model, train_data, valid_data, tokenizers, valid_search, layout, device)
        batches = iter(train_data.batch_order(0))

        def step() -> int:
            indices = next(batches)
            trainer.train_step([train_data.collate(indices).to(device)], [1.0], train_data.target_tokens(indices))
            return train_data.target_tokens(indices)

        step()
        first_step_at = time.time()
        for _ in range(args.warmup - 1):
            step()
        timed, cpu = time.monotonic(), time.process_time()
        tokens = sum(step() for _ in range(args.steps - args.warmup))
        seconds, cpu_seconds = time.monotonic() - timed, time.process_time() - cpu
        trainer.board.close()
    return {
        "first_step_at": first_step_at,
        "data_setup_seconds": data_seconds,
        "training_pairs": len(train_data.rows),
        "tokens_per_second": tokens / seconds,
        "tokens_per_cpu_second": tokens / cpu_seconds,
        "peak_rss_mb": status_kb("VmHWM") / 1024,
        "peak_anonymous_mb": watcher.stop() / 1024,
    }


CHILDREN = {"prepare": prepare, "train": train}


def status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


class AnonymousPeak:
    """The largest anonymous resident memory (RssAnon) seen, sampled every 5 ms in a thread: the
    kernel keeps a peak only for the total, which includes mapped files."""

    def __init__(self) -> None:
        self.peak, self._running = 0, True
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while self._running:
            self.peak = max(self.peak, status_kb("RssAnon"))
            time.sleep(0.005)

    def stop(self) -> int:
        self._running = False
        self._thread.join()
        return max(self.peak, status_kb("RssAnon"))


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| pairs | corpus (MB) | tokenizer training (s) | encoding (s) | encoded cache (MB) | start-up to first "
        "step (s) | of which data (s) | peak RSS (MB) | peak anonymous RSS (MB) | target tokens/s "
        "| per CPU-second |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["sizes"]:
        lines.append(
            f"| {row['pairs']:,} | {row['corpus_mb']:.0f} | {row['tokenizer_seconds']:.1f} | "
            f"{row['encoding_seconds']:.1f} | {row['cache_mb']:.0f} | {row['startup_seconds']:.1f} | "
            f"{row['data_setup_seconds']:.1f} | {row['peak_rss_mb']:.0f} | {row['peak_anonymous_mb']:.0f} | "
            f"{row['tokens_per_second']:.0f} | {row['tokens_per_cpu_second']:.0f} |"
        )
    if "bytes_per_pair" in report:
        slope = report["bytes_per_pair"]
        lines.append(
            f"\nGrowth per sentence pair: peak RSS {slope['peak_rss_mb']:.1f} bytes, anonymous "
            f"{slope['peak_anonymous_mb']:.1f} bytes."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
