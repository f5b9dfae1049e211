"""The Python API: translate raw sentences with a trained checkpoint (or an ensemble of them).

    from nmt import Translator
    translator = Translator.from_checkpoint("runs/bahdanau/<date_time>/checkpoints/best.pt")
    translator.translate(["Ein Mann fährt Fahrrad."])                   # a list of strings
    best = translator.translate_nbest(["Ein Mann ..."], nbest=3, attention=True)[0][0]
    best.text, best.score, best.attention, best.alignment

No Hydra composition and no training data: the checkpoint holds the model config, the
tokenizers and the search the run was tested with (`config["decode"]`), which is the default
here and in `nmt-translate`, so the API, the tool and the test decode agree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nmt.data.alignments import Link
from nmt.data.tokenizer import Tokenizer
from nmt.decoding.batches import translate_hypotheses
from nmt.decoding.ensemble import Ensemble
from nmt.decoding.forced import force_decode_all
from nmt.decoding.loading import load_model
from nmt.decoding.pretrained import resolve_folder, save_pretrained, stored_summary
from nmt.decoding.search import Decodable, Hypothesis, Search, build_search
from nmt.metrics.alignment import argmax_alignment, grow_diag_final, pieces_to_words
from nmt.utils.device import resolve_device
from nmt.utils.errors import UserError
from nmt.utils.precision import check_precision, choose_precision

log = logging.getLogger(__name__)

SEARCHES = {
    "beam": "nmt.decoding.search.BeamSearch",
    "greedy": "nmt.decoding.search.GreedySearch",
    "sample": "nmt.decoding.search.Sampling",
}
"""The `search` names the API and the tool accept, and the classes they pick."""


@dataclass(frozen=True)
class Translation:
    """One hypothesis for one sentence.

    Attributes:
        text: the detokenized translation.
        score: the search's score (log-probability, length-normalized by the beam search).
        log_prob: log P(translation + EOS | source).
        source_pieces, target_pieces: the subword pieces, without EOS.
        attention: (len(target_pieces) + 1, len(source_pieces) + 1) weights, EOS row and column
            included, when asked for; else None.
        alignment: word-level links (source word, target word) from the attention (each target
            piece to the source piece it attends to most), when attention was asked for.
    """

    text: str
    score: float
    log_prob: float
    source_pieces: list[str]
    target_pieces: list[str]
    attention: np.ndarray | None = None
    alignment: list[tuple[int, int]] | None = None


@dataclass(frozen=True)
class PairScore:
    """A given translation of one sentence, scored by the model (forced decoding).

    Attributes:
        log_prob: log P(target + EOS | source).
        token_log_probs: log P of each target piece, then of EOS.
        perplexity: exp of the negative mean of `token_log_probs`.
        source_pieces: the source's subword pieces, without EOS.
        target_pieces: the target's subword pieces, without EOS.
        attention: (len(target_pieces) + 1, len(source_pieces) + 1) weights, EOS row and column
            included, when asked for; else None.
    """

    log_prob: float
    token_log_probs: list[float]
    perplexity: float
    source_pieces: list[str]
    target_pieces: list[str]
    attention: np.ndarray | None = None


class Translator:
    """Translates raw sentences with a model, its tokenizers and a default search.

    Args:
        model: a `Seq2Seq`, an `Ensemble` or anything with `start`/`next_token_scores`/`reorder`.
        src_tokenizer: the model's source sentencepiece model.
        tgt_tokenizer: its target sentencepiece model.
        decode: the default decode config (a `configs/decode/*.yaml` as a mapping).
        device: where the model is.
        max_tokens: source tokens per batch (sentences are sorted by length into batches).
        max_source_length: the longest source, in pieces without EOS, the model accepts;
            longer sentences are truncated with a warning (None: no limit).
        has_attention: False for models without attention (no attention matrices or alignments).
        precision: `auto` (bf16 where the hardware runs it natively, else fp32; fp16 on GPUs
            without bf16: `nmt.utils.precision.choose_precision`), `fp32`, or `bf16`/`fp16` for the
            matmuls under autocast (`nmt.utils.precision`).
        run_config: the resolved config of the run that trained the model, which `save_pretrained`
            stores (None for an ensemble: it has no one config).
        summary: that run's `summary.json`, for the model card of `save_pretrained` (a model
            folder keeps it; None: unknown).
    """

    def __init__(
        self,
        model: Decodable,
        src_tokenizer: Tokenizer,
        tgt_tokenizer: Tokenizer,
        decode: dict[str, Any],
        device: torch.device,
        max_tokens: int = 4000,
        max_source_length: int | None = None,
        has_attention: bool = True,
        precision: str = "fp32",
        run_config: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        if max_tokens < 1:
            raise UserError(f"max_tokens={max_tokens}: must be at least 1")
        try:
            check_precision(precision, "precision")
        except ValueError as error:
            raise UserError(str(error)) from None
        self.model, self.src_tokenizer, self.tgt_tokenizer = model, src_tokenizer, tgt_tokenizer
        self.decode, self.device, self.max_tokens = dict(decode), device, max_tokens
        self.precision = choose_precision(precision, device).precision
        self.max_source_length, self.has_attention = max_source_length, has_attention
        self.run_config, self.summary = run_config, summary
        self.model.eval()

    @classmethod
    def from_checkpoint(
        cls,
        paths: str | Path | Sequence[str | Path],
        device: str = "auto",
        max_tokens: int = 4000,
        precision: str | None = None,
        compile: bool | None = None,
    ) -> Translator:
        """Loads one checkpoint, or several as an ensemble (averaged probabilities); `precision`
        None takes the run's `decode_precision` (fp32 for runs that predate it), `compile` None
        the run's `decode_compile` (`Seq2Seq.compile_decoding`; off for runs that predate it).
        A model folder (`save_pretrained`) loads like a checkpoint.

        Raises:
            UserError: for an unreadable checkpoint, or ensemble members whose tokenizers differ.
        """
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not paths:
            raise UserError("no checkpoint given")
        torch_device = resolve_device(device)
        loaded = [load_model(path, torch_device) for path in paths]
        models, (_, src_tokenizer, tgt_tokenizer, config) = [m for m, *_ in loaded], loaded[0]
        if config.get("decode_compile", False) if compile is None else compile:
            for member in models:
                member.compile_decoding()
        for path, (_, src, tgt, _) in zip(paths[1:], loaded[1:]):
            if (src.model_bytes, tgt.model_bytes) != (src_tokenizer.model_bytes, tgt_tokenizer.model_bytes):
                raise UserError(f"{path}: its tokenizers differ from {paths[0]}'s; an ensemble needs the same ones")
        model = models[0] if len(models) == 1 else Ensemble(models)
        limits = [m.max_source_length - 1 for m in models if m.max_source_length is not None]  # without EOS
        return cls(
            model,
            src_tokenizer,
            tgt_tokenizer,
            decode_config(config.get("decode"), paths[0]),
            torch_device,
            max_tokens,
            min(limits) if limits else None,
            has_attention=all(m.has_attention for m in models),
            precision=precision or config.get("decode_precision", "fp32"),
            run_config=config if len(models) == 1 else None,
            summary=stored_summary(paths[0]) if len(models) == 1 else None,
        )

    @classmethod
    def from_pretrained(cls, folder_or_id: str | Path, **options: Any) -> Translator:
        """Loads a model folder (`save_pretrained`, `nmt-export --format hub`) or a Hub id
        (`owner/name`, downloaded with the `hub` extra); `options` as for `from_checkpoint`.
        Nothing is unpickled."""
        return cls.from_checkpoint(resolve_folder(folder_or_id), **options)

    def save_pretrained(self, folder: str | Path, summary: dict[str, Any] | None = None) -> Path:
        """Writes a model folder (`nmt.decoding.pretrained`): safetensors weights, config.json,
        the sentencepiece models and a model card. `summary`: the run's `summary.json` for the
        card's training and results (default: the one this translator was loaded with).

        Raises:
            UserError: for an ensemble, or a folder that holds other files.
        """
        if self.run_config is None or not isinstance(self.model, nn.Module) or isinstance(self.model, Ensemble):
            raise UserError("an ensemble has no one config to save: save each member's checkpoint")
        return save_pretrained(
            folder, self.model, (self.src_tokenizer, self.tgt_tokenizer), self.run_config, summary or self.summary
        )

    def search(self, search: str | None = None, **overrides: Any) -> Search:
        """The search to use: the default decode config, or another kind (`beam`, `greedy`,
        `sample`) with its class defaults, with fields overridden (None values are ignored).

        Raises:
            UserError: for an unknown search, unknown field or invalid value (e.g. beam_size=0).
        """
        config = self.decode
        if search is not None:
            if search not in SEARCHES:
                raise UserError(f"search={search!r}: use one of {', '.join(SEARCHES)}")
            if config.get("_target_") != SEARCHES[search]:
                config = {"_target_": SEARCHES[search]}
        try:
            return build_search(config, **{k: v for k, v in overrides.items() if v is not None})
        except ValueError as error:
            raise UserError(str(error)) from None

    def translate(
        self, sentences: Sequence[str], *, search: str | None = None, first_line: int = 1, **overrides: Any
    ) -> list[str]:
        """Detokenized best translations, one per sentence; an empty sentence gives "".

        Args:
            sentences: raw source sentences.
            search: `beam`, `greedy` or `sample` (default: the checkpoint's test search).
            first_line: the line number of `sentences[0]`, for warnings about long lines.
            overrides: search fields, e.g. `beam_size=10`, `alpha=0.6`, `max_length_ratio=1.5`.
        """
        return [
            nbest[0].text if nbest else ""
            for nbest in self.translate_nbest(sentences, search=search, first_line=first_line, **overrides)
        ]

    def translate_nbest(
        self,
        sentences: Sequence[str],
        *,
        search: str | None = None,
        nbest: int | None = None,
        attention: bool = False,
        first_line: int = 1,
        **overrides: Any,
    ) -> list[list[Translation]]:
        """The n-best translations of each sentence, best first (an empty list for an empty one).

        `sentences`, `search`, `first_line` and the search `overrides` are as in `translate`.

        Args:
            nbest: hypotheses per sentence (beam search; at most its beam size).
            attention: also return each hypothesis's attention matrix and word alignment.
        """
        if attention and not self.has_attention:
            raise UserError("this model has no attention (model/attention: null): no attention matrices or alignments")
        if nbest is not None:
            overrides["nbest"] = nbest
        decoder = self.search(search, return_attention=attention or None, **overrides)
        todo = [i for i, sentence in enumerate(sentences) if sentence.strip()]
        src_ids = self._encode([sentences[i] for i in todo], [first_line + i for i in todo])
        found = translate_hypotheses(self.model, src_ids, decoder, self.max_tokens, self.device, self.precision)
        results: list[list[Translation]] = [[] for _ in sentences]
        for index, ids, hypotheses in zip(todo, src_ids, found):
            source_pieces = self._pieces(self.src_tokenizer, ids)  # once per sentence, not per hypothesis
            results[index] = [self._translation(source_pieces, hypothesis) for hypothesis in hypotheses]
        return results

    def score(
        self, sources: Sequence[str], targets: Sequence[str], *, attention: bool = False, first_line: int = 1
    ) -> list[PairScore | None]:
        """How probable the model finds each given translation (forced decoding,
        `nmt.decoding.forced`), in the decoding precision; None for a pair with an empty side.

        Args:
            sources: raw source sentences.
            targets: their translations, one per source.
            attention: also return the attention that produced each target piece.
            first_line: the line number of the first pair, for warnings and errors.

        Raises:
            UserError: when the two lists differ in length, or `attention` for a model without it.
        """
        if len(sources) != len(targets):
            raise UserError(f"{len(sources)} sources but {len(targets)} targets: give one target per source")
        if attention and not self.has_attention:
            raise UserError("this model has no attention (model/attention: null): no attention matrices or alignments")
        todo = [i for i, (source, target) in enumerate(zip(sources, targets)) if source.strip() and target.strip()]
        src_ids = self._encode([sources[i] for i in todo], [first_line + i for i in todo])
        tgt_ids = self.tgt_tokenizer.encode([targets[i] for i in todo])
        found = force_decode_all(
            self.model, src_ids, tgt_ids, self.max_tokens, self.device, self.precision, attention=attention
        )
        results: list[PairScore | None] = [None] * len(sources)
        for index, source, target, forced in zip(todo, src_ids, tgt_ids, found):
            results[index] = PairScore(
                forced.log_prob,
                forced.token_log_probs.tolist(),
                forced.perplexity,
                self._pieces(self.src_tokenizer, source),
                self._pieces(self.tgt_tokenizer, target),
                forced.attention,
            )
        return results

    def align(
        self,
        sources: Sequence[str],
        targets: Sequence[str],
        *,
        reverse: Translator | None = None,
        first_line: int = 1,
        scores: Sequence[PairScore | None] | None = None,
    ) -> list[list[Link]]:
        """Word alignments of given translations, (source word, target word) links in Pharaoh's
        order: each target piece to the source piece it attends to most, as words. With
        `reverse`, a model of the other direction, both directions' links are symmetrized by
        grow-diag-final (`nmt.metrics.alignment.grow_diag_final`). An empty pair has no links.
        `scores`: this model's `score(sources, targets, attention=True)`, when already computed.

        Raises:
            UserError: as `score`, or when `reverse` reads another language than the targets'.
        """
        if scores is None:
            scores = self.score(sources, targets, attention=True, first_line=first_line)
        forward = [self._links(scored) for scored in scores]
        if reverse is None:
            return [sorted(links) for links in forward]
        if reverse.src_tokenizer.model_bytes != self.tgt_tokenizer.model_bytes:
            log.warning("the reverse model's source tokenizer is not this model's target tokenizer")
        backward = reverse.score(targets, sources, attention=True, first_line=first_line)
        return [
            sorted(grow_diag_final(links, {(i, j) for j, i in reverse._links(scored)}))
            for links, scored in zip(forward, backward)
        ]

    @staticmethod
    def _links(scored: PairScore | None) -> set[Link]:
        return set() if scored is None else _word_links(scored.attention, scored.source_pieces, scored.target_pieces)

    def _encode(self, sentences: list[str], line_numbers: list[int]) -> list[list[int]]:
        src_ids = self.src_tokenizer.encode(sentences)
        limit = self.max_source_length
        if limit is None:
            return src_ids
        for position, (ids, line) in enumerate(zip(src_ids, line_numbers)):
            if len(ids) > limit:
                log.warning("line %d: %d source pieces, truncated to the model's limit of %d", line, len(ids), limit)
                src_ids[position] = ids[:limit]
        return src_ids

    def _translation(self, source_pieces: list[str], hypothesis: Hypothesis) -> Translation:
        target_pieces = self._pieces(self.tgt_tokenizer, hypothesis.tokens)
        weights = alignment = None
        if hypothesis.attention is not None:
            weights = hypothesis.attention.double().cpu().numpy()
            alignment = sorted(_word_links(weights, source_pieces, target_pieces))
        return Translation(
            self.tgt_tokenizer.decode([hypothesis.tokens])[0],
            hypothesis.score,
            hypothesis.log_prob,
            source_pieces,
            target_pieces,
            weights,
            alignment,
        )

    @staticmethod
    def _pieces(tokenizer: Tokenizer, ids: list[int]) -> list[str]:
        return [tokenizer.processor.id_to_piece(i) for i in ids]


def _word_links(weights: np.ndarray, source_pieces: list[str], target_pieces: list[str]) -> set[Link]:
    """Word links from an attention matrix with its EOS row and column: the EOS output row goes;
    the EOS source column stays, so that a piece attending mostly to EOS stays unaligned
    (`pieces_to_words` drops links past the real pieces)."""
    return pieces_to_words(argmax_alignment(weights[:-1]), source_pieces, target_pieces)


def decode_config(decode: dict[str, Any] | None, checkpoint: str | Path) -> dict[str, Any]:
    """The checkpoint's test search; checkpoints from before the search classes (whose decode
    config names a function) get a `BeamSearch` with the settings both understand."""
    if not decode:
        return {"_target_": SEARCHES["beam"]}
    if decode.get("_target_") in SEARCHES.values():
        return decode
    known = {"beam_size", "alpha", "max_length_ratio", "max_length_offset"}
    kept = {key: value for key, value in decode.items() if key in known}
    log.warning(
        "%s: its decode config (%s) is from an older nmt; using BeamSearch with %s",
        checkpoint,
        decode.get("_target_"),
        kept,
    )
    return {"_target_": SEARCHES["beam"], **kept}
