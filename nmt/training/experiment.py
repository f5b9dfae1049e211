"""One training run from a composed config, as small steps that scripts reuse:

    prepare_data -> make_tokenizers -> load_training_data / load_validation_data (= load_data) -> build_model
    -> build_trainer -> Trainer.fit -> test -> write_summary

`run` chains them; the benchmark and other tools call the steps they need, so their set-up can
never drift from training's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nmt.checkpoint import load_checkpoint
from nmt.data.batching import ParallelData, filter_by_length
from nmt.data.corpus import drop_empty_pairs, read_parallel
from nmt.data.encoding import encode_corpus
from nmt.data.sources import SplitFiles
from nmt.data.tokenizer import Tokenizer, build_tokenizers
from nmt.decoding.batches import translate_lines
from nmt.decoding.search import Search, build_search
from nmt.metrics.bleu import Scores, score
from nmt.modules.seq2seq import Seq2Seq
from nmt.training.distributed import Distributed, init_distributed, shutdown_distributed
from nmt.training.run_layout import RunLayout
from nmt.training.trainer import Trainer
from nmt.training.validation import ValidationData
from nmt.utils.config import flatten_config
from nmt.utils.device import describe_machine
from nmt.utils.errors import UserError
from nmt.utils.fileio import file_fingerprint, write_bytes_atomically
from nmt.utils.precision import PrecisionChoice, check_precision, choose_precision
from nmt.utils.rng import seed_everything

log = logging.getLogger(__name__)
T = TypeVar("T")


def prepare_data(cfg: DictConfig) -> dict[str, SplitFiles]:
    """Writes (downloads, copies or generates) the corpus; returns each split's files."""
    return instantiate(cfg.data).prepare()


def make_tokenizers(cfg: DictConfig, splits: dict[str, SplitFiles], layout: RunLayout) -> tuple[Tokenizer, Tokenizer]:
    """Trains (or reuses from the cache) the source and target sentencepiece models."""
    return build_tokenizers(
        instantiate(cfg.tokenizer),
        splits["train"].src,
        splits["train"].tgt,
        Path(cfg.tokenizer_cache),
        layout.tokenizer,
    )


def load_training_data(
    cfg: DictConfig, splits: dict[str, SplitFiles], src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer
) -> ParallelData:
    """Encodes the training pairs (once per corpus and tokenizers: cached in `cfg.encoded_cache`),
    with their word alignments when guided alignment has a file, memory-maps them and
    length-filters them; returns their batching."""
    files = splits["train"]
    if cfg.encode_workers is not None and cfg.encode_workers < 1:
        raise UserError(f"encode_workers={cfg.encode_workers}: must be at least 1 (null: min(4, CPU count))")
    guidance = instantiate(cfg.trainer.guided_alignment) if cfg.trainer.get("guided_alignment") else None
    alignments = guidance.alignments if guidance is not None else None
    if alignments is not None and not Path(alignments).is_file():
        raise UserError(f"trainer.guided_alignment.alignments={alignments}: file not found")
    if guidance is not None and guidance.weight and OmegaConf.select(cfg, "model.decoder.scorer") is None:
        raise UserError("trainer.guided_alignment.weight > 0 needs attention to guide (model/attention is null)")
    pairs = encode_corpus(
        files,
        src_tokenizer,
        tgt_tokenizer,
        Path(cfg.encoded_cache),
        cfg.encode_workers,
        None if alignments is None else Path(alignments),
    )
    if pairs.empty_pairs:
        log.info("dropped %d training pairs with an empty side", pairs.empty_pairs)
    rows = filter_by_length(pairs.src.lengths, pairs.tgt.lengths, cfg.max_length)
    log.info(
        "training pairs: %d kept, %d longer than %d tokens dropped", len(rows), len(pairs) - len(rows), cfg.max_length
    )
    if not len(rows):
        raise UserError(
            f"{files.src}: no training pairs left after dropping empty lines and pairs over max_length={cfg.max_length}"
        )
    return configured("batching", lambda: instantiate(cfg.batching)(pairs, rows))


def load_validation_data(
    cfg: DictConfig, splits: dict[str, SplitFiles], src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer
) -> ValidationData:
    """The validation pairs with both sides non-empty: their ids encoded once and memory-mapped
    like the training pairs', their text for BLEU and samples."""
    files = splits["valid"]
    src, tgt, _ = drop_empty_pairs(*read_parallel(files.src, files.tgt))
    if not src:
        raise UserError(f"{files.src}: no validation pairs with both sides non-empty")
    pairs = encode_corpus(files, src_tokenizer, tgt_tokenizer, Path(cfg.encoded_cache), cfg.encode_workers)
    return ValidationData(pairs.src, pairs.tgt, tgt, src)  # the same pairs: both drop them by `is_complete`


class RunData(NamedTuple):
    """What a run reads before it builds a model: the splits' files, the tokenizers, the
    training pairs and the validation set."""

    splits: dict[str, SplitFiles]
    tokenizers: tuple[Tokenizer, Tokenizer]
    train_data: ParallelData
    valid_data: ValidationData


def load_data(cfg: DictConfig, layout: RunLayout) -> RunData:
    """`prepare_data`, `make_tokenizers`, `load_training_data` and `load_validation_data` in turn;
    the first call does the downloads, training and encoding, later ones find them cached."""
    splits = prepare_data(cfg)
    tokenizers = make_tokenizers(cfg, splits, layout)
    return RunData(
        splits, tokenizers, load_training_data(cfg, splits, *tokenizers), load_validation_data(cfg, splits, *tokenizers)
    )


def build_model(cfg: DictConfig, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, device: torch.device) -> Seq2Seq:
    """The model of `cfg.model`, sized to the vocabularies, on `device`."""
    if cfg.model.get("share_embeddings") and not cfg.tokenizer.joint:
        raise UserError("model.share_embeddings=true needs one vocabulary for both sides: set tokenizer.joint=true")
    model = instantiate(cfg.model, src_vocab_size=src_tokenizer.vocab_size, tgt_vocab_size=tgt_tokenizer.vocab_size).to(
        device
    )
    log.info(
        "model: %d parameters, vocabularies %d/%d, device %s",
        parameter_count(model),
        src_tokenizer.vocab_size,
        tgt_tokenizer.vocab_size,
        device,
    )
    return model


def parameter_count(model: torch.nn.Module) -> int:
    """Parameters, shared matrices counted once."""
    return sum(p.numel() for p in model.parameters())


def configured(group: str, build: Callable[[], T]) -> T:
    """Runs `build` (a constructor fed from config group `group`) and turns a constructor's
    refusal (ValueError, or TypeError for an unknown key) into a one-line error naming the group.

    Partial configs (optimizer, scheduler, batching) are called outside Hydra's `instantiate`,
    and searches are built by `build_search`, so their errors would otherwise be tracebacks.
    """
    try:
        return build()
    except (ValueError, TypeError) as error:
        raise UserError(f"{group}: {error}") from None


def build_searches(cfg: DictConfig) -> tuple[Search, Search]:
    """Validation's search (`cfg.valid_decode`) and the test search (`cfg.decode`), built before
    training so a bad decode setting stops the run at once, not after hours of training."""
    try:
        check_precision(cfg.decode_precision, "decode_precision")
    except ValueError as error:
        raise UserError(str(error)) from None
    if not isinstance(cfg.decode_compile, bool):
        raise UserError(f"decode_compile={cfg.decode_compile!r}: use true or false")
    return (
        configured("valid_decode", lambda: build_search(cfg.valid_decode)),
        configured("decode", lambda: build_search(cfg.decode)),
    )


def build_trainer(
    cfg: DictConfig,
    model: Seq2Seq,
    train_data: ParallelData,
    valid_data: ValidationData,
    tokenizers: tuple[Tokenizer, Tokenizer],
    valid_search: Search,
    layout: RunLayout,
    device: torch.device,
    distributed: Distributed = Distributed(),
) -> Trainer:
    """The trainer with the optimizer and schedule of `cfg`, validating with `valid_search`."""
    optimizer = configured("optim", lambda: instantiate(cfg.optim)(model.parameters()))
    scheduler = configured("scheduler", lambda: instantiate(cfg.scheduler)(optimizer)) if cfg.get("scheduler") else None
    return Trainer(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        train_data=train_data,
        valid_data=valid_data,
        tokenizers=tokenizers,
        search=valid_search,
        config=instantiate(cfg.trainer),
        layout=layout,
        run_config=OmegaConf.to_container(cfg, resolve=True),
        device=device,
        distributed=distributed,
    )


def test(
    checkpoint: Path,
    search: Search,
    splits: dict[str, SplitFiles],
    tokenizers: tuple[Tokenizer, Tokenizer],
    model: Seq2Seq,
    layout: RunLayout,
    device: torch.device,
    precision: str = "fp32",
) -> dict[str, Scores]:
    """Decodes the test set, and any extra test sets of the data source, with `checkpoint`'s
    weights, `search` and `precision`; writes the translations and scores (`test.hyp`, `scores.json`;
    `extra_tests/<name>.*`). Returns the scores by split name, `test` first."""
    model.load_state_dict(load_checkpoint(checkpoint, map_location=device)["model"])
    results = {}
    for name, files in splits.items():
        if name in ("train", "valid"):
            continue
        test_src, test_refs = read_parallel(files.src, files.tgt)
        hypotheses = translate_lines(model, *tokenizers, test_src, search, device=device, precision=precision)
        scores = results[name] = score(hypotheses, [test_refs])
        hypotheses_path, scores_path = (
            (layout.test_hypotheses, layout.scores)
            if name == "test"
            else (layout.extra_test_hypotheses(name), layout.extra_test_scores(name))
        )
        write_bytes_atomically(hypotheses_path, "".join(f"{h}\n" for h in hypotheses).encode())
        _write_json(scores_path, {"split": str(files.src), "checkpoint": str(checkpoint), **scores.as_dict()})
        log.info("%s (%s, %s): %s", name, files.src.name, search, scores)
    return {"test": results.pop("test"), **results}


def write_summary(
    cfg: DictConfig,
    trainer: Trainer,
    tests: dict[str, Scores],
    test_files: SplitFiles,
    layout: RunLayout,
    wall_seconds: float,
    decode_precision: PrecisionChoice,
) -> dict[str, Any]:
    """Writes `summary.json`: what result tables need, so they never open a checkpoint. `tests`
    are `test`'s results: the test set's scores, and the extra test sets' under `extra_tests`;
    `test_files` are recorded with their checksums, so tables can score against the very files;
    `precision` is what training and the test decode ran in (`auto` resolved), and why."""
    progress = trainer.progress
    training_seconds = progress.seconds - progress.validation_seconds
    summary = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "parameters": parameter_count(trainer.model),
        "steps": progress.step,
        "epochs": progress.epoch,
        "skipped_steps": progress.skipped_steps,
        "stopped_early": progress.stopped_early,
        "wall_seconds": wall_seconds,
        "first_update_seconds": trainer.first_update_seconds,
        "training_seconds": training_seconds,
        "validation_seconds": progress.validation_seconds,
        "logging_seconds": progress.logging_seconds,
        "precision": {
            "training": trainer.precision.precision,
            "training_reason": trainer.precision.reason,
            "decoding": decode_precision.precision,
            "decoding_reason": decode_precision.reason,
        },
        "target_tokens_per_second": progress.target_tokens / max(training_seconds, 1e-9),
        "sentences_per_second": progress.sentences / max(training_seconds, 1e-9),
        "best_step": progress.best_step,
        "best_averaged_steps": progress.best_averaged,
        "best_valid": progress.best,
        "machine": describe_machine(trainer.device),
        "test": tests["test"].as_dict(),
        "test_files": {
            side: {"path": str(path.resolve()), "sha256": file_fingerprint(path)}
            for side, path in (("src", test_files.src), ("tgt", test_files.tgt))
        },
    }
    extra = {name: scores.as_dict() for name, scores in tests.items() if name != "test"}
    if extra:
        summary["extra_tests"] = extra
    _write_json(layout.summary, summary)
    return summary


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_bytes_atomically(path, (json.dumps(data, indent=2) + "\n").encode())


def run(cfg: DictConfig, run_dir: Path) -> Scores | None:
    """Trains and tests one configuration; returns the test scores (None on ranks other than 0).

    Under `torchrun` every rank trains; rank 0 alone validates, tests and writes the run.
    """
    start = time.monotonic()
    seed_everything(cfg.seed)
    distributed, device = init_distributed(cfg.device)
    trainer = None
    claim = contextlib.ExitStack()
    try:
        layout = RunLayout(distributed.broadcast(run_dir))  # rank 0's: Hydra's timestamps may differ by rank
        if distributed.is_main:  # rank 0 first: it claims the run directory, downloads, trains the tokenizers, ...
            claim.enter_context(layout.claim())  # no other training process may write there meanwhile
            splits, tokenizers, train_data, valid_data = load_data(cfg, layout)
        distributed.barrier()
        if not distributed.is_main:  # ... what the other ranks then find in the caches
            splits, tokenizers, train_data, valid_data = load_data(cfg, layout)
        model = build_model(cfg, *tokenizers, device)
        valid_search, test_search = build_searches(cfg)
        if cfg.decode_compile:
            model.compile_decoding()
        if distributed.rank > 0:  # own dropout masks per rank; rank 0 draws what one process would
            seed_everything(cfg.seed + distributed.rank)
        trainer = build_trainer(
            cfg, model, train_data, valid_data, tokenizers, valid_search, layout, device, distributed
        )
        decode_precision = choose_precision(cfg.decode_precision, device)
        log.info("test decoding precision: %s", decode_precision)
        best = trainer.fit()
        if not distributed.is_main:
            distributed.barrier()  # rank 0 tests alone; the ranks then leave the process group together
            return None
        tests = test(best, test_search, splits, tokenizers, model, layout, device, decode_precision.precision)
        for name, result in tests.items():
            trainer.board.scalars(
                "test" if name == "test" else f"test/{name}",
                {"bleu": result.bleu, "chrf": result.chrf},
                trainer.progress.step,
            )
        scores = tests["test"]
        summary = write_summary(cfg, trainer, tests, splits["test"], layout, time.monotonic() - start, decode_precision)
        trainer.board.hparams(
            {**flatten_config(summary["config"]), **flatten_config({"precision": summary["precision"]})},
            {
                "test_bleu": scores.bleu,
                "test_chrf": scores.chrf,
                **{f"valid_{name}": value for name, value in trainer.progress.best.items()},
            },
        )
        # With gloo, a rank that destroys the group while another still works in it can abort
        # ("terminate called without an active exception"): wait for each other first.
        distributed.barrier()
        return scores
    finally:
        if trainer is not None:  # also after a failure: a sweep's next job runs in this process
            trainer.board.close()
        claim.close()
        shutdown_distributed()
