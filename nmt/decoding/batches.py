"""Translating many sentences: length-sorted batches through a search, results in input order."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from nmt.data.batching import Batch, bucket_batches, collate
from nmt.data.tokenizer import Tokenizer
from nmt.decoding.search import Decodable, Hypothesis, Search
from nmt.utils.precision import autocast

T = TypeVar("T")


def translate_hypotheses(
    model: Decodable,
    src_ids: list[list[int]],
    search: Search,
    max_tokens: int = 4000,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> list[list[Hypothesis]]:
    """Runs `search` over batches of similar-length sources; returns each source's n-best list
    (tokens, log-probability, score, attention if the search returns it), in input order.

    `precision` bf16 or fp16 runs the model's matmuls under autocast (`nmt.utils.precision`): faster
    where the hardware has 16-bit matmuls, with scores and the recurrent state still fp32.

    The searches run under `torch.no_grad`; do not wrap this in `torch.inference_mode`: autocast
    keeps no 16-bit copies of the weights there, so every decoder step would cast every weight
    matrix again.
    """
    model.eval()
    return in_length_batches(
        lambda batch, _: search(model, batch.src, batch.src_lengths), src_ids, None, max_tokens, device, precision
    )


def in_length_batches(
    run: Callable[[Batch, list[int]], list[T]],
    src_ids: list[list[int]],
    tgt_lengths: list[int] | None,
    max_tokens: int,
    device: torch.device | str,
    precision: str,
) -> list[T]:
    """`run(batch, indices)` over batches of similar-length sources (and targets, when their
    lengths are given) within `max_tokens`, under autocast in `precision`; its per-sentence
    results in input order. The one batching loop of decoding, forced decoding included."""
    outputs: list[T | None] = [None] * len(src_ids)
    for indices in bucket_batches([len(s) for s in src_ids], tgt_lengths, max_tokens):
        batch = collate([src_ids[i] for i in indices], None, indices).to(torch.device(device))
        with autocast(device, precision):
            found = run(batch, indices)
        for index, result in zip(indices, found):
            outputs[index] = result
    return outputs


def translate_ids(
    model: Decodable,
    src_ids: list[list[int]],
    search: Search,
    max_tokens: int = 4000,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> list[list[int]]:
    """The best hypothesis's target ids for each source, in input order."""
    return [
        hypotheses[0].tokens
        for hypotheses in translate_hypotheses(model, src_ids, search, max_tokens, device, precision)
    ]


def translate_lines(
    model: Decodable,
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    lines: list[str],
    search: Search,
    max_tokens: int = 4000,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> list[str]:
    """Raw sentences -> detokenized translations, one per input line.

    A blank input line gives a blank output line (the model never sees it).
    """
    todo = [i for i, line in enumerate(lines) if line.strip()]
    ids = translate_ids(model, src_tokenizer.encode([lines[i] for i in todo]), search, max_tokens, device, precision)
    outputs = [""] * len(lines)
    for index, text in zip(todo, tgt_tokenizer.decode(ids)):
        outputs[index] = text
    return outputs
