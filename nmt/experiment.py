"""One training run from a composed config: data -> tokenizers -> batches -> model -> training ->
beam-search decoding of the test set -> sacrebleu scores in the run directory."""

from __future__ import annotations

import json
import logging
import random
from functools import partial
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nmt.checkpoint import load_checkpoint
from nmt.data.batching import filter_by_length
from nmt.data.corpus import drop_empty_pairs, read_parallel
from nmt.errors import UserError
from nmt.evaluation import Scores, score
from nmt.search import greedy_search
from nmt.tokenizer import build_tokenizers
from nmt.training import Trainer, ValidationData
from nmt.translation import translate_lines

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seeds Python's and torch's generators: with the same seed, CPU runs repeat exactly."""
    random.seed(seed)
    torch.manual_seed(seed)


def run(cfg: DictConfig, run_dir: Path) -> Scores:
    """Trains and tests one configuration; returns the test scores (also in `scores.json`)."""
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    splits = instantiate(cfg.data).prepare()

    train_src, train_tgt = read_parallel(splits["train"].src, splits["train"].tgt)
    train_src, train_tgt, empty = drop_empty_pairs(train_src, train_tgt)
    if empty:
        log.info("dropped %d training pairs with an empty side", empty)
    src_tokenizer, tgt_tokenizer = build_tokenizers(
        instantiate(cfg.tokenizer), splits["train"].src, splits["train"].tgt,
        Path(cfg.tokenizer_cache), run_dir / "tokenizer")
    src_ids, tgt_ids, too_long = filter_by_length(
        src_tokenizer.encode(train_src), tgt_tokenizer.encode(train_tgt), cfg.max_length)
    log.info("training pairs: %d kept, %d longer than %d tokens dropped", len(src_ids), too_long, cfg.max_length)
    if not src_ids:
        raise UserError(f"{splits['train'].src}: no training pairs left after dropping empty lines and pairs "
                        f"over max_length={cfg.max_length}")
    train_data = instantiate(cfg.batching)(src_ids, tgt_ids)

    valid_src, valid_tgt = drop_empty_pairs(*read_parallel(splits["valid"].src, splits["valid"].tgt))[:2]
    if not valid_src:
        raise UserError(f"{splits['valid'].src}: no validation pairs with both sides non-empty")
    valid_data = ValidationData(src_tokenizer.encode(valid_src), tgt_tokenizer.encode(valid_tgt), valid_tgt)
    if cfg.model.get("share_embeddings") and not cfg.tokenizer.joint:
        raise UserError("model.share_embeddings=true needs one vocabulary for both sides: set tokenizer.joint=true")

    model = instantiate(cfg.model, src_vocab_size=src_tokenizer.vocab_size,
                        tgt_vocab_size=tgt_tokenizer.vocab_size).to(device)
    log.info("model: %d parameters, vocabularies %d/%d, device %s",
             sum(p.numel() for p in model.parameters()), src_tokenizer.vocab_size, tgt_tokenizer.vocab_size,
             device)
    trainer = Trainer(
        model=model, optimizer=instantiate(cfg.optim)(model.parameters()), train_data=train_data,
        valid_data=valid_data, tgt_tokenizer=tgt_tokenizer,
        search=partial(greedy_search, max_length_ratio=cfg.decode.max_length_ratio,
                       max_length_offset=cfg.decode.max_length_offset),
        config=instantiate(cfg.trainer), run_dir=run_dir,
        checkpoint_extras={"config": OmegaConf.to_container(cfg, resolve=True)}, device=device)
    best = trainer.fit()

    model.load_state_dict(load_checkpoint(best, map_location=device)["model"])
    test_src, test_refs = read_parallel(splits["test"].src, splits["test"].tgt)
    hypotheses = translate_lines(model, src_tokenizer, tgt_tokenizer, test_src, instantiate(cfg.decode),
                                 device=device)
    (run_dir / "test.hyp").write_text("".join(f"{h}\n" for h in hypotheses), encoding="utf-8")
    scores = score(hypotheses, [test_refs])
    (run_dir / "scores.json").write_text(json.dumps(
        {"split": str(splits["test"].src), "checkpoint": str(best), **scores.as_dict()}, indent=2) + "\n")
    trainer.writer.add_scalar("test/bleu", scores.bleu, trainer.step)
    trainer.writer.add_scalar("test/chrf", scores.chrf, trainer.step)
    trainer.writer.close()
    log.info("test (%s, beam %s): %s", splits["test"].src.name, cfg.decode.beam_size, scores)
    return scores
