"""The benchmark of `nmt-benchmark`: which measurements it makes (each in a fresh process,
see `nmt.benchmark.measurements`) and the figures derived from them, gathered in a report of plain data
(JSON; `nmt.benchmark.report` prints it as Markdown).

Medians over repeats are reported next to every repeat's value: the machine's speed drifts,
and the spread says how far one figure can be trusted.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from nmt.analysis.length import LengthBucket, length_buckets, word_lengths
from nmt.benchmark.measurements import isolated, matmul_gflops
from nmt.data.corpus import read_parallel
from nmt.decoding.search import build_search
from nmt.training import experiment
from nmt.utils.device import describe_machine, resolve_device
from nmt.utils.errors import UserError
from nmt.utils.precision import choose_precision, native_16_bit

log = logging.getLogger(__name__)

GREEDY, BEAM = "nmt.decoding.search.GreedySearch", "nmt.decoding.search.BeamSearch"
UNLIMITED_TOKENS = 10**9
"""The token budget of the batch-size scaling, whose batches are capped by sentences alone."""
UNTRAINED = (
    "decoded with the first training run's model after its short window: an untrained model decodes to "
    "the length limit, so these decoding figures mean something only with --checkpoint of a trained model"
)


@dataclass(frozen=True)
class BenchmarkOptions:
    """What the benchmark measures, and for how long.

    Args:
        precisions: trainer precisions to time (None: the config's `trainer.precision`).
        warmup: untimed updates first, in each training run.
        window: timed updates after them.
        repeats: training runs per precision, and decoding repeats per search.
        flop_batches: window batches whose FLOPs are counted (from the first run). FLOPs per
            target token vary with a batch's source and target lengths: on `bahdanau` 4
            evenly spaced batches gave 45.8 million, all 100 of the window (the default) 38.2.
        checkpoint: the model to decode with (None: the first training run's, after its window).
        decode_max_tokens: source tokens per decoding batch.
        early_stopping: also decode with beam 5 and early stopping.
        scaling: also measure throughput against batch size, decoding time against beam size
            and source length, and estimate epoch time against corpus size.
        scaling_warmup: `warmup` of the batch-size scaling's training runs.
        scaling_window: `window` of the batch-size scaling's training runs.
        batch_sizes: sentences per batch of the batch-size scaling.
        beam_sizes: beam sizes of the beam-size scaling.
        corpus_fractions: leading shares of the training pairs of the corpus-size estimate.
        length_bucket_width: words per source-length bucket (buckets merge up to 50 sentences).
        square: size of the square matrix product in the ceiling.
        training: time training (with the FLOPs and the ceiling); off, only decoding, which then
            needs `checkpoint`.
        decoding: time decoding.
    """

    precisions: list[str] | None = None
    warmup: int = 30
    window: int = 100
    repeats: int = 3
    flop_batches: int = 100
    checkpoint: Path | None = None
    decode_max_tokens: int = 4000
    early_stopping: bool = False
    scaling: bool = False
    scaling_warmup: int = 5
    scaling_window: int = 20
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128, 256)
    beam_sizes: tuple[int, ...] = (1, 2, 5, 10)
    corpus_fractions: tuple[float, ...] = (0.25, 0.5, 1.0)
    length_bucket_width: int = 5
    square: int = 2048
    training: bool = True
    decoding: bool = True

    def __post_init__(self) -> None:
        if not (self.training or self.decoding):
            raise UserError("nothing to measure: leave training or decoding on")
        if not self.training and (self.checkpoint is None or self.scaling):
            raise UserError("without training the benchmark decodes only: give --checkpoint, and no --scaling")


def run_benchmark(cfg: DictConfig, overrides: list[str], options: BenchmarkOptions) -> dict[str, Any]:
    """Measures training, FLOPs, the matmul ceiling and decoding (and the scaling) for `cfg`;
    returns the report (plain data, for JSON)."""
    device = resolve_device(cfg.device)
    test_files = experiment.prepare_data(cfg)["test"]  # a missing or broken corpus stops here, before any run
    experiment.build_searches(cfg)  # and so does a bad search setting of the run
    if options.checkpoint is not None and not options.checkpoint.is_file():
        raise UserError(f"--checkpoint {options.checkpoint}: file not found")
    # `auto` as training would resolve it here; a 16-bit precision without native kernels warns
    precisions = list(
        dict.fromkeys(choose_precision(p, device).precision for p in options.precisions or [cfg.trainer.precision])
    )
    decoding = _DecodingPlan(cfg, options, read_parallel(test_files.src, test_files.tgt)[0])
    report: dict[str, Any] = {
        "machine": describe_machine(device),
        "overrides": overrides,
        "settings": {
            **asdict(options),
            "precisions": precisions,
            "checkpoint": str(options.checkpoint) if options.checkpoint else None,
            "batching": OmegaConf.to_container(cfg.batching, resolve=True),
        },
    }
    with tempfile.TemporaryDirectory(prefix="nmt-benchmark-") as folder:
        model_file = str(options.checkpoint or Path(folder) / "model.pt")
        if options.training:
            first = _training_report(cfg, options, precisions, device, report, model_file)
        if not options.decoding:
            return report
        log.info("decoding: %s", ", ".join(f"{job['name']} x {job['repeats']}" for job in decoding.jobs))
        decoded = isolated(
            "decode",
            config=_config(cfg),
            checkpoint=model_file,
            jobs=decoding.jobs,
            max_tokens=options.decode_max_tokens,
        )
    results = [_decoding_summary(job) for job in decoded.pop("jobs")]
    report.setdefault("parameters", decoded["parameters"])
    report["decoding"] = {
        **decoded,
        "checkpoint": str(options.checkpoint) if options.checkpoint else None,
        "note": None if options.checkpoint else UNTRAINED,
        "searches": [results[index] for index in decoding.main],
    }
    if options.scaling:
        report["scaling"] = {
            "batch_size": [
                {
                    "batch_sentences": size,
                    **_training_summary(
                        [
                            _train(
                                cfg,
                                options.scaling_warmup,
                                options.scaling_window,
                                precision=precisions[0],
                                **{"batching.max_sentences": size, "batching.max_tokens": UNLIMITED_TOKENS},
                            )
                        ]
                    ),
                }
                for size in options.batch_sizes
            ],
            "beam_size": [{"beam_size": size, **results[index]} for size, index in decoding.beam_sizes.items()],
            "source_length": [
                {
                    "words": bucket.label,
                    "sentences": len(bucket.indices),
                    "searches": {name: results[index] for name, index in jobs.items()},
                }
                for bucket, jobs in decoding.lengths
            ],
            "corpus_size": _corpus_estimate(
                first["epoch_batches"], report["training"][precisions[0]], cfg.trainer.accumulate
            ),
        }
    return report


def _training_report(
    cfg: DictConfig,
    options: BenchmarkOptions,
    precisions: list[str],
    device: torch.device,
    report: dict[str, Any],
    model_file: str,
) -> dict[str, Any]:
    """Times training in every precision and adds the figures, the FLOPs, the ceiling and the
    utilization to `report`; returns the first run's result."""
    # the very first run also counts FLOPs, saves its model (to decode without --checkpoint)
    # and counts the batches per epoch of the corpus shares
    first_only = {
        "flop_batches": options.flop_batches,
        "save_model": None if options.checkpoint else model_file,
        "corpus_fractions": list(options.corpus_fractions) if options.scaling else None,
    }
    runs: dict[str, list[dict[str, Any]]] = {}
    for precision in precisions:
        runs[precision] = [
            _train(
                cfg,
                options.warmup,
                options.window,
                precision=precision,
                **(first_only if not runs and repeat == 0 else {}),
            )
            for repeat in range(options.repeats)
        ]
    first = runs[precisions[0]][0]
    report["parameters"] = first["parameters"]
    report["training"] = {precision: _training_summary(done) for precision, done in runs.items()}
    report["flops"] = first["flops"]
    log.info("matmul ceiling")
    report["ceiling"] = _ceiling(first["flops"]["products"][:2], options.square, precisions, device)
    report["utilization"] = _utilization(report["flops"], report["training"], report["ceiling"])
    return first


class _DecodingPlan:
    """The decoding jobs of the benchmark, for one measuring process (`measure_decoding`).

    Built before any run, so that a bad decode setting stops the benchmark at once. The same
    search on the same lines runs once (beam 5 over the test set serves the main table and the
    beam-size scaling).

    Attributes:
        jobs: what `measure_decoding` runs.
        main: the jobs of the main table (greedy, beam 5, maybe beam 5 with early stopping).
        beam_sizes: beam size -> job, over the whole test set (with `scaling`).
        lengths: (bucket, {search name: job}) per source-length bucket (with `scaling`).
    """

    def __init__(self, cfg: DictConfig, options: BenchmarkOptions, sources: list[str]) -> None:
        self.jobs: list[dict[str, Any]] = []
        greedy, beam = _search(cfg, GREEDY), _search(cfg, BEAM, beam_size=5, stop_early=False)
        self.main = [self.add("greedy", greedy, options.repeats), self.add("beam 5", beam, options.repeats)]
        if options.early_stopping:
            self.main.append(
                self.add("beam 5, early stopping", _search(cfg, BEAM, beam_size=5, stop_early=True), options.repeats)
            )
        self.beam_sizes: dict[int, int] = {}
        self.lengths: list[tuple[LengthBucket, dict[str, int]]] = []
        if options.scaling:
            self.beam_sizes = {
                size: self.add(f"beam {size}", _search(cfg, BEAM, beam_size=size, stop_early=False), 1)
                for size in options.beam_sizes
            }
            self.lengths = [
                (
                    bucket,
                    {
                        "greedy": self.add("greedy", greedy, 1, bucket.indices),
                        "beam 5": self.add("beam 5", beam, 1, bucket.indices),
                    },
                )
                for bucket in length_buckets(word_lengths(sources), width=options.length_bucket_width)
            ]

    def add(self, name: str, search: dict[str, Any], repeats: int, indices: list[int] | None = None) -> int:
        """The job decoding test lines `indices` (None: all) with `search`, added unless there."""
        for position, job in enumerate(self.jobs):
            if (job["search"], job["indices"]) == (search, indices):
                return position
        self.jobs.append({"name": name, "search": search, "indices": indices, "repeats": repeats})
        return len(self.jobs) - 1


def _config(cfg: DictConfig, **dotted: Any) -> dict[str, Any]:
    """`cfg` with some dotted keys replaced, resolved to plain data for a measuring process."""
    copy = cfg.copy()
    for key, value in dotted.items():
        OmegaConf.update(copy, key, value)
    return OmegaConf.to_container(copy, resolve=True)


def _train(
    cfg: DictConfig,
    warmup: int,
    window: int,
    *,
    precision: str,
    flop_batches: int = 0,
    save_model: str | None = None,
    corpus_fractions: list[float] | None = None,
    **dotted: Any,
) -> dict[str, Any]:
    """One training measurement (`nmt.benchmark.measurements.measure_training`) in a fresh process."""
    log.info(
        "training, %s%s: updates %d-%d timed",
        precision,
        "".join(f", {k}={v}" for k, v in dotted.items()),
        warmup + 1,
        warmup + window,
    )
    return isolated(
        "train",
        config=_config(cfg, **{"trainer.precision": precision, **dotted}),
        warmup=warmup,
        window=window,
        flop_batches=flop_batches,
        save_model=save_model,
        corpus_fractions=corpus_fractions or [],
    )


def _search(cfg: DictConfig, target: str, **fields: Any) -> dict[str, Any]:
    """A decode config for class `target`, starting from the run's own search of that class
    (`decode` or `valid_decode`, so overrides such as `decode.alpha=0.6` apply) or the class's
    defaults; built once here so that a bad setting stops the benchmark before any run."""
    base = next(
        (
            OmegaConf.to_container(c, resolve=True)
            for c in (cfg.decode, cfg.get("valid_decode"))
            if c is not None and c._target_ == target
        ),
        {"_target_": target},
    )
    spec = {**base, **fields}
    experiment.configured("decode", lambda: build_search(spec))
    return spec


def _training_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of target tokens/s, sentences/s, seconds per update and peak memory,
    with the runs themselves."""
    return {
        "target_tokens_per_second": median(r["target_tokens"] / r["seconds"] for r in runs),
        "sentences_per_second": median(r["sentences"] / r["seconds"] for r in runs),
        "seconds_per_update": median(r["seconds"] / r["updates"] for r in runs),
        "peak_memory_mb": median(r["peak_memory_mb"] for r in runs),
        "runs": [{key: value for key, value in r.items() if key not in ("flops", "epoch_batches")} for r in runs],
    }


NOT_NATIVE = "not measured: no native kernels here"


def _ceiling(
    products: list[dict[str, Any]], square: int, precisions: list[str], device: torch.device
) -> list[dict[str, Any]]:
    """GFLOP/s of the fastest matrix-product kernel (`matmul_gflops`) at the model's two
    costliest forward product shapes and a square one, in fp32, bf16 and any other precision
    trained. A 16-bit precision the hardware has no native kernels for is not measured (its
    reference loop would take minutes at the square's size): `gflops` None, and why."""
    shapes = [("model", p["rows"], p["inner"], p["columns"]) for p in products] + [("square", square, square, square)]
    ceiling = []
    for what, rows, inner, columns in shapes:
        for precision in dict.fromkeys(["fp32", "bf16", *precisions]):
            gflops, kernel = (
                matmul_gflops(rows, inner, columns, precision, device)
                if precision == "fp32" or native_16_bit(device, precision)
                else (None, NOT_NATIVE)
            )
            ceiling.append(
                {
                    "what": what,
                    "rows": rows,
                    "inner": inner,
                    "columns": columns,
                    "precision": precision,
                    "gflops": gflops,
                    "kernel": kernel,
                }
            )
    return ceiling


def _utilization(flops: dict[str, Any], training: dict[str, Any], ceiling: list[dict[str, Any]]) -> dict[str, Any]:
    """Achieved training GFLOP/s (FLOPs per target token x target tokens/s) and its share of the
    ceilings of the same precision: the square product's and the model's costliest shape's
    (None where that ceiling was not measured)."""
    utilization = {}
    for precision, summary in training.items():
        achieved = flops["training_per_token"] * summary["target_tokens_per_second"] / 1e9
        square, costliest = (
            next(c["gflops"] for c in ceiling if c["what"] == what and c["precision"] == precision)
            for what in ("square", "model")
        )
        utilization[precision] = {
            "achieved_gflops": achieved,
            "of_square_ceiling": achieved / square if square else None,
            "of_costliest_product_ceiling": achieved / costliest if costliest else None,
        }
    return utilization


def _decoding_summary(job: dict[str, Any]) -> dict[str, Any]:
    seconds = median(job["seconds"])
    return {**job, "median_seconds": seconds, "sentences_per_second": job["sentences"] / seconds}


def _corpus_estimate(
    epoch_batches: dict[str, dict[str, int]], training: dict[str, Any], accumulate: int
) -> list[dict[str, Any]]:
    """Seconds per epoch on leading shares of the training pairs, estimated (not measured) as
    updates per epoch x the measured median seconds per update."""
    rows = []
    for fraction, counts in epoch_batches.items():
        updates = math.ceil(counts["batches"] / accumulate)
        rows.append(
            {
                "fraction": float(fraction),
                **counts,
                "updates": updates,
                "estimated_seconds_per_epoch": updates * training["seconds_per_update"],
            }
        )
    return rows
