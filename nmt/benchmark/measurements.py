"""Speed measurements, each run in a fresh Python process: a training window, decoding, and the
matrix-multiply ceiling of the machine.

`isolated(task, **arguments)` runs a task of `TASKS` as `python -m nmt.benchmark.measurements SPEC` and
returns its JSON result, so every measurement has its own peak memory and inherits no allocator
state, caches or warmed-up kernels from the one before. The tasks set up exactly as training
does, through the steps of `nmt.training.experiment`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from nmt.benchmark.flops import count_flops
from nmt.checkpoint import save_checkpoint
from nmt.data.batching import ParallelData
from nmt.data.corpus import read_parallel
from nmt.decoding.batches import translate_ids
from nmt.decoding.loading import load_model
from nmt.decoding.search import build_search
from nmt.metrics.bleu import score
from nmt.modules import onednn
from nmt.training import experiment
from nmt.training.run_layout import RunLayout
from nmt.training.train_log import peak_memory_mb
from nmt.training.trainer import Trainer
from nmt.utils.device import resolve_device
from nmt.utils.errors import UserError
from nmt.utils.heap import bound_onednn_cache
from nmt.utils.precision import AUTOCAST_DTYPES, choose_precision
from nmt.utils.rng import seed_everything

T = TypeVar("T")


def measure_training(
    config: dict[str, Any],
    warmup: int,
    window: int,
    flop_batches: int = 0,
    save_model: str | None = None,
    corpus_fractions: Sequence[float] = (),
) -> dict[str, Any]:
    """Times the training loop (`Trainer.train_until`: collate, to(device), update, logging)
    from update `warmup` to update `warmup + window`, in a temporary run directory.

    Validation is pushed past the window (so no checkpoint is written in it) and the final
    validation of `fit` never runs.

    Args:
        config: the resolved run config.
        flop_batches: also count the FLOPs of this many of the window's batches, evenly spaced
            (0: none).
        save_model: write the model after the window to this checkpoint file (for decoding).
        corpus_fractions: also report the pairs and batches per epoch of these leading shares
            of the training pairs.

    Returns:
        seconds, updates, target tokens, sentences, batches and padded target positions of the
        window, the process's peak memory (MB), threads, device, parameters; `flops` and
        `epoch_batches` when asked for.
    """
    cfg = OmegaConf.create(config)
    last = warmup + window
    for key, value in {
        "max_steps": last,
        "max_epochs": None,
        "max_minutes": None,
        "valid_every": last + 1,
        "save_every": None,
        "resume": None,
        "progress_bar": False,
    }.items():
        cfg.trainer[key] = value
    device = resolve_device(cfg.device)
    with tempfile.TemporaryDirectory(prefix="nmt-benchmark-run-") as run_dir:
        trainer = _trainer(cfg, RunLayout(Path(run_dir)), device)
        model, train_data, progress = trainer.model, trainer.train_data, trainer.progress
        trainer.train_until(warmup)
        start = (progress.epoch, progress.batch_in_epoch)
        before = (progress.step, progress.target_tokens, progress.sentences)
        seconds, _ = _timed(lambda: trainer.train_until(last), device)
        batches = [
            train_data.collate(indices)
            for indices in _batches_between(train_data, start, (progress.epoch, progress.batch_in_epoch))
        ]
        result = {
            "seconds": seconds,
            "updates": progress.step - before[0],
            "target_tokens": progress.target_tokens - before[1],
            "sentences": progress.sentences - before[2],
            "batches": len(batches),
            "padded_target_positions": sum(b.tgt_out.numel() for b in batches),
            "peak_memory_mb": peak_memory_mb(device),
            "threads": torch.get_num_threads(),
            "device": str(device),
            "precision": trainer.precision.precision,
            "parameters": experiment.parameter_count(model),
        }
        trainer.board.close()
    if flop_batches:
        sample = batches[:: max(1, len(batches) // flop_batches)][:flop_batches]
        flops = count_flops(model, sample)
        result["flops"] = {
            **asdict(flops),
            "training_per_token": flops.training_per_token,
            "forward_per_token": flops.forward_per_token,
        }
    if save_model:
        save_checkpoint(save_model, trainer.model_checkpoint({}))
    if corpus_fractions:
        shares = {str(fraction): _leading_share(train_data, fraction) for fraction in corpus_fractions}
        result["epoch_batches"] = {
            fraction: {"pairs": len(share.rows), "batches": len(share.batch_order(0))}
            for fraction, share in shares.items()
        }
    return result


def _trainer(cfg: DictConfig, layout: RunLayout, device: torch.device) -> Trainer:
    """The trainer of a training run (`nmt.training.experiment.run`'s steps, one process), seeded alike."""
    seed_everything(cfg.seed)
    _, tokenizers, train_data, valid_data = experiment.load_data(cfg, layout)
    model = experiment.build_model(cfg, *tokenizers, device)
    valid_search, _ = experiment.build_searches(cfg)
    return experiment.build_trainer(cfg, model, train_data, valid_data, tokenizers, valid_search, layout, device)


def _batches_between(data: ParallelData, start: tuple[int, int], end: tuple[int, int]) -> list[list[int]]:
    """The batches the trainer consumed from position `start` to `end`, each (epoch, position in
    that epoch's `batch_order`), as `Progress` keeps them."""
    (epoch, position), batches = start, []
    while (epoch, position) < end:
        order = data.batch_order(epoch)
        batches += order[position : end[1] if epoch == end[0] else len(order)]
        epoch, position = epoch + 1, 0
    return batches


def _leading_share(data: ParallelData, fraction: float) -> ParallelData:
    """The first `fraction` of the training pairs, batched like `data`."""
    return ParallelData(
        data.pairs, data.rows[: round(len(data.rows) * fraction)], data.max_tokens, data.max_sentences, data.seed
    )


def measure_decoding(
    config: dict[str, Any], checkpoint: str, jobs: list[dict[str, Any]], max_tokens: int
) -> dict[str, Any]:
    """Times decoding the test split of `config` with the model of `checkpoint` (loaded first;
    only generation is timed: batching, the search, no tokenization) in the config's
    `decode_precision` and `decode_compile`, and scores the output. Each search first decodes
    the first 100 sentences untimed, so no repeat includes compiling or first-call set-up.

    Repeats go round the jobs (job 1, job 2, ..., job 1, ...), so a drift in the machine's
    speed spreads over all searches instead of favouring one.

    Args:
        jobs: each {"name", "search": a decode config mapping, "indices": test lines to decode
            (None: all), "repeats"}.
        max_tokens: source tokens per batch.

    Returns:
        The test file, its sentence count, the batch budget, precision, device, threads, peak
        memory, and per job its name, search, sentences, seconds of every repeat, BLEU and chrF.
    """
    cfg = OmegaConf.create(config)
    device = resolve_device(cfg.device)
    precision = choose_precision(cfg.decode_precision, device).precision
    model, src_tokenizer, tgt_tokenizer, _ = load_model(checkpoint, device)
    if cfg.decode_compile:
        model.compile_decoding()
    files = experiment.prepare_data(cfg)["test"]
    sources, references = read_parallel(files.src, files.tgt)
    src_ids = src_tokenizer.encode(sources)
    searches = [build_search(job["search"]) for job in jobs]
    lines = [job["indices"] if job["indices"] is not None else list(range(len(sources))) for job in jobs]
    seconds: list[list[float]] = [[] for _ in jobs]
    outputs: list[list[list[int]]] = [[] for _ in jobs]
    for search in searches:
        translate_ids(model, src_ids[:100], search, max_tokens, device, precision)
    for repeat in range(max(job["repeats"] for job in jobs)):
        for number, (job, search, indices) in enumerate(zip(jobs, searches, lines)):
            if repeat < job["repeats"]:
                ids = [src_ids[i] for i in indices]
                taken, outputs[number] = _timed(
                    lambda: translate_ids(model, ids, search, max_tokens, device, precision),  # noqa: B023 - called at once
                    device,
                )
                seconds[number].append(taken)
    results = []
    for job, search, indices, times, output in zip(jobs, searches, lines, seconds, outputs):
        scores = score(tgt_tokenizer.decode(output), [[references[i] for i in indices]])
        results.append(
            {
                "name": job["name"],
                "search": repr(search),
                "sentences": len(indices),
                "seconds": times,
                "bleu": scores.bleu,
                "chrf": scores.chrf,
            }
        )
    return {
        "test_set": str(files.src),
        "sentences": len(sources),
        "max_tokens": max_tokens,
        "precision": precision,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "peak_memory_mb": peak_memory_mb(device),
        "parameters": experiment.parameter_count(model),
        "jobs": results,
    }


def matmul_gflops(
    rows: int,
    inner: int,
    columns: int,
    precision: str,
    device: torch.device,
    trials: int = 5,
    trial_seconds: float = 0.1,
) -> tuple[float, str]:
    """GFLOP/s of the fastest matrix-product kernel on this machine at (rows, inner) @ (inner,
    columns) in `precision` (fp32, bf16, fp16), and which it was: `torch.mm`, or in fp32 on a CPU
    also oneDNN's (`nmt.modules.onednn`; on some CPUs faster than the MKL behind `torch.mm`).
    Training uses oneDNN's for the decoder step's products only, so at other shapes this is
    what the machine can do rather than what training ran. Each kernel after one warm-up call:
    the best of `trials` trials, the kernels taking turns, each trial as many calls as fill
    `trial_seconds`. The best, because a ceiling is what the machine can do, and interference
    from other work only ever slows a trial down."""
    dtype = AUTOCAST_DTYPES[precision] or torch.float32
    a, b = torch.randn(rows, inner, device=device, dtype=dtype), torch.randn(inner, columns, device=device, dtype=dtype)
    out = torch.empty(rows, columns, device=device, dtype=dtype)
    kernels = {"torch.mm": lambda: torch.mm(a, b, out=out)}
    if onednn.uses_onednn(a, b):
        weight = b.t().contiguous()  # (columns, inner), as a linear layer holds it
        kernels["oneDNN"] = lambda: onednn.linear(a, weight)
    speeds = dict.fromkeys(kernels, 0.0)
    for product in kernels.values():
        product()
    for _ in range(trials):
        for name, product in kernels.items():
            calls, seconds = 0, 0.0
            while seconds < trial_seconds:
                calls += 1
                seconds += _timed(product, device)[0]
            speeds[name] = max(speeds[name], 2 * rows * inner * columns * calls / seconds / 1e9)
    fastest = max(speeds, key=speeds.get)
    return speeds[fastest], fastest


def _timed(work: Callable[[], T], device: torch.device) -> tuple[float, T]:
    """Wall seconds of `work` (queued CUDA work finished before and after) and its result."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


TASKS: dict[str, Callable[..., dict[str, Any]]] = {"train": measure_training, "decode": measure_decoding}


def isolated(task: str, **arguments: Any) -> dict[str, Any]:
    """Runs `TASKS[task](**arguments)` in a fresh Python process; returns its result.

    Raises:
        UserError: with the task's own message, when it stopped on one.
        RuntimeError: with the end of its error output, when it failed otherwise.
    """
    with tempfile.TemporaryDirectory(prefix="nmt-benchmark-") as folder:
        spec, result = Path(folder) / "spec.json", Path(folder) / "result.json"
        spec.write_text(json.dumps({"task": task, "arguments": arguments, "result": str(result)}))
        done = subprocess.run(
            [sys.executable, "-m", "nmt.benchmark.measurements", str(spec)], capture_output=True, text=True
        )
        last_line = (done.stderr.strip().splitlines() or [""])[-1]
        if done.returncode == 2 and last_line.startswith("error: "):
            raise UserError(last_line.removeprefix("error: "))
        if done.returncode != 0:
            raise RuntimeError(
                f"benchmark task {task!r} failed (exit status {done.returncode}):\n{done.stderr[-4000:]}"
            )
        return json.loads(result.read_text())


def main(argv: list[str]) -> None:
    """`python -m nmt.benchmark.measurements SPEC.json`: runs the task SPEC names and writes its result."""
    bound_onednn_cache()  # as `train.py` does, so that the benchmark measures what training runs
    spec = json.loads(Path(argv[0]).read_text())
    try:
        result = TASKS[spec["task"]](**spec["arguments"])
    except (UserError, InstantiationException) as error:  # a constructor's refusal: its cause names the key
        print(f"error: {getattr(error, '__cause__', None) or error}", file=sys.stderr)
        sys.exit(2)
    Path(spec["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
