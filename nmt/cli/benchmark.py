"""`nmt-benchmark`: training and decoding speed, FLOPs and the machine's matmul ceiling for a config:

    nmt-benchmark +experiment=bahdanau --checkpoint runs/<run>/checkpoints/best.pt

Hydra overrides pick the config, as for train.py. Prints Markdown tables and writes every
figure to a JSON file. Each measurement runs in a fresh process (see `nmt.benchmark.run`).
Compare figures only when taken back to back: the machine's speed drifts.
"""

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException

from nmt.benchmark.report import to_markdown
from nmt.benchmark.run import BenchmarkOptions, run_benchmark
from nmt.utils.errors import UserError
from nmt.utils.precision import PRECISIONS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"  # the checkout's (installed with -e)
DEFAULTS = BenchmarkOptions()


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if int(text) < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return int(text)

    return parse


def _list(kind: Callable[[str], float]) -> Callable[[str], tuple]:
    return lambda text: tuple(kind(item) for item in text.split(","))


def _precisions(text: str) -> list[str]:
    unknown = [p for p in text.split(",") if p not in PRECISIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown precision {', '.join(unknown)}: use {', '.join(PRECISIONS)}")
    return text.split(",")


def parse_args(argv: list[str]) -> tuple[BenchmarkOptions, Path, list[str]]:
    """The benchmark's options, the JSON file, and the Hydra overrides (every other argument)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Other arguments are Hydra overrides, e.g. +experiment=bahdanau"
    )
    add = parser.add_argument
    add(
        "--checkpoint",
        type=Path,
        help="decode with this model (default: the first training run's, after its window: untrained)",
    )
    add("--output", type=Path, default=Path("benchmark.json"), help="the JSON report (default: %(default)s)")
    add("--precisions", type=_precisions, help="trainer precisions to time, e.g. bf16,fp32 (default: the config's)")
    add("--warmup", type=_at_least(0), default=DEFAULTS.warmup, help="untimed updates first (%(default)s)")
    add("--window", type=_at_least(1), default=DEFAULTS.window, help="timed updates (%(default)s)")
    add(
        "--repeats",
        type=_at_least(1),
        default=DEFAULTS.repeats,
        help="training runs per precision, decoding repeats per search; medians reported (%(default)s)",
    )
    add(
        "--flop-batches",
        type=_at_least(1),
        default=DEFAULTS.flop_batches,
        help="window batches whose FLOPs are counted (%(default)s)",
    )
    add(
        "--decode-max-tokens",
        type=_at_least(1),
        default=DEFAULTS.decode_max_tokens,
        help="source tokens per decoding batch (%(default)s)",
    )
    add("--early-stopping", action="store_true", help="also decode with beam 5 and early stopping")
    add(
        "--scaling",
        action="store_true",
        help="also measure against batch size, beam size and source length, "
        "and estimate epoch time against corpus size",
    )
    add("--scaling-warmup", type=_at_least(0), default=DEFAULTS.scaling_warmup, help="(%(default)s)")
    add("--scaling-window", type=_at_least(1), default=DEFAULTS.scaling_window, help="(%(default)s)")
    add(
        "--batch-sizes",
        type=_list(_at_least(1)),
        default=DEFAULTS.batch_sizes,
        help="sentences per batch, comma-separated (%(default)s)",
    )
    add("--beam-sizes", type=_list(_at_least(1)), default=DEFAULTS.beam_sizes, help="(%(default)s)")
    add("--corpus-fractions", type=_list(float), default=DEFAULTS.corpus_fractions, help="(%(default)s)")
    add(
        "--length-bucket-width",
        type=_at_least(1),
        default=DEFAULTS.length_bucket_width,
        help="words per source-length bucket (%(default)s)",
    )
    add("--square", type=_at_least(1), default=DEFAULTS.square, help="size of the square matmul (%(default)s)")
    add("--no-training", dest="training", action="store_false", help="decode only (needs --checkpoint)")
    add("--no-decoding", dest="decoding", action="store_false", help="time training only")
    args, overrides = parser.parse_known_args(argv)
    unknown = [o for o in overrides if o.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return BenchmarkOptions(**{f.name: getattr(args, f.name) for f in fields(BenchmarkOptions)}), args.output, overrides


def main(argv: list[str] | None = None) -> None:
    """Runs the benchmark; Hydra overrides and options as `parse_args` reads them."""
    logging.basicConfig(level=logging.INFO, format="benchmark: %(message)s")  # progress, on stderr
    try:
        options, output, overrides = parse_args(sys.argv[1:] if argv is None else argv)
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        report = run_benchmark(cfg, overrides, options)
    except (UserError, HydraException) as error:  # HydraException: also a constructor's refusal, caused by it
        print(f"error: {getattr(error, '__cause__', None) or error}", file=sys.stderr)
        sys.exit(2)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(to_markdown(report))
    print(f"All figures: {output}")


if __name__ == "__main__":
    main()
