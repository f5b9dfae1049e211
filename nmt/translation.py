"""Translating many sentences: length-sorted batches through a search, results in input order."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nmt.checkpoint import SIDES, load_checkpoint
from nmt.data.batching import bucket_batches, collate
from nmt.errors import UserError
from nmt.modules.seq2seq import Seq2Seq
from nmt.precision import autocast
from nmt.search import Decodable, Hypothesis, Search
from nmt.tokenizer import Tokenizer


def translate_hypotheses(model: Decodable, src_ids: list[list[int]], search: Search, max_tokens: int = 4000,
                         device: torch.device | str = "cpu", precision: str = "fp32") -> list[list[Hypothesis]]:
    """Runs `search` over batches of similar-length sources; returns each source's n-best list
    (tokens, log-probability, score, attention if the search returns it), in input order.

    `precision` bf16 or fp16 runs the model's matmuls under autocast (`nmt.precision`): faster
    where the hardware has 16-bit matmuls, with scores and the recurrent state still fp32.

    The searches run under `torch.no_grad`; do not wrap this in `torch.inference_mode`: autocast
    keeps no 16-bit copies of the weights there, so every decoder step would cast every weight
    matrix again (greedy decoding of test_2016_flickr: 2.8 s instead of 2.1 s in bf16).
    """
    model.eval()
    outputs: list[list[Hypothesis]] = [[] for _ in src_ids]
    for indices in bucket_batches([len(s) for s in src_ids], None, max_tokens):
        batch = collate([src_ids[i] for i in indices], None, indices).to(torch.device(device))
        with autocast(device, precision):
            found = search(model, batch.src, batch.src_lengths)
        for index, hypotheses in zip(indices, found):
            outputs[index] = hypotheses
    return outputs


def translate_ids(model: Decodable, src_ids: list[list[int]], search: Search, max_tokens: int = 4000,
                  device: torch.device | str = "cpu", precision: str = "fp32") -> list[list[int]]:
    """The best hypothesis's target ids for each source, in input order."""
    return [hypotheses[0].tokens
            for hypotheses in translate_hypotheses(model, src_ids, search, max_tokens, device, precision)]


def translate_lines(model: Decodable, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer,
                    lines: list[str], search: Search, max_tokens: int = 4000,
                    device: torch.device | str = "cpu", precision: str = "fp32") -> list[str]:
    """Raw sentences -> detokenized translations, one per input line.

    A blank input line gives a blank output line (the model never sees it).
    """
    todo = [i for i, line in enumerate(lines) if line.strip()]
    ids = translate_ids(model, src_tokenizer.encode([lines[i] for i in todo]), search, max_tokens, device,
                        precision)
    outputs = [""] * len(lines)
    for index, text in zip(todo, tgt_tokenizer.decode(ids)):
        outputs[index] = text
    return outputs


def load_model(checkpoint_path: str | Path, device: torch.device | str = "cpu"
               ) -> tuple[Seq2Seq, Tokenizer, Tokenizer, dict]:
    """Rebuilds a trained model and its tokenizers from a checkpoint file alone.

    The checkpoint holds the sentencepiece models and the model's `_target_` config (see
    `nmt.checkpoint`), so no run directory or data is needed: a `.pt` copied to another
    machine translates raw text.

    Returns:
        The model (in eval mode), source and target tokenizers, and the run's config.

    Raises:
        UserError: naming the file, if it is not a checkpoint or its config does not rebuild a
            model its weights fit.
    """
    checkpoint_path = Path(checkpoint_path)
    payload = load_checkpoint(checkpoint_path)
    src_tokenizer, tgt_tokenizer = (Tokenizer.from_bytes(payload["tokenizers"][side], f"{checkpoint_path} "
                                                         f"(tokenizers.{side})") for side in SIDES)
    config = payload["config"]
    if not isinstance(config.get("model"), dict):
        raise UserError(f"{checkpoint_path}: its config has no model section to rebuild the model from")
    try:
        model = instantiate(OmegaConf.create(config["model"]), src_vocab_size=src_tokenizer.vocab_size,
                            tgt_vocab_size=tgt_tokenizer.vocab_size)
    except InstantiationException as error:  # e.g. a `_target_` this version of nmt does not have
        raise UserError(f"{checkpoint_path}: its model config does not build "
                        f"({str(error).strip().splitlines()[0]})") from None
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise UserError(f"{checkpoint_path}: weights do not fit the model of its config "
                        f"({str(error).splitlines()[0]})") from None
    return model.to(device).eval(), src_tokenizer, tgt_tokenizer, config
