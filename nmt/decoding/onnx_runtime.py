"""Translating with an ONNX export (`nmt.decoding.onnx_export`) on ONNX Runtime: numpy,
onnxruntime and sentencepiece only; this module never imports torch.

`OnnxModel` runs the two graphs; `greedy_search` and `beam_search` are numpy versions of
`nmt.decoding.search.GreedySearch` and `BeamSearch` under the same rules (length limits, the
never-generated symbols, EOS decided last, the length penalties, the exact stopping rule, n-best),
kept to the same float widths so that their outputs equal PyTorch's token for token in fp32
(`tests/decoding/test_onnx.py` checks it). They decode a batch of sentences with one decoder call
per step; each sentence's rules run on its own rows (`_Beam`). Coverage penalties, n-gram
blocking and early stopping are not implemented here: a decode config that asks for them is
refused. `OnnxTranslator` wraps it all for raw text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from nmt.decoding.rules import LENGTH_PENALTIES, NEVER_GENERATED
from nmt.utils.errors import UserError

NEG_INF = -np.inf
SUPPORTED = {
    "nmt.decoding.search.GreedySearch": {
        "min_length_ratio",
        "min_length_offset",
        "max_length_ratio",
        "max_length_offset",
    },
    "nmt.decoding.search.BeamSearch": {
        "min_length_ratio",
        "min_length_offset",
        "max_length_ratio",
        "max_length_offset",
        "beam_size",
        "nbest",
        "length_penalty",
        "alpha",
    },
}
"""The decode fields each search reads here; others must keep their off values (`OFF`)."""
OFF = {"no_repeat_ngram_size": 0, "coverage_penalty": 0.0, "stop_early": False, "return_attention": False}


@dataclass(frozen=True)
class OnnxHypothesis:
    """One translation: target ids without BOS/EOS, log P (with EOS), the search's score."""

    tokens: list[int]
    log_prob: float
    score: float


class OnnxModel:
    """The exported encoder and decoder step on ONNX Runtime sessions (CPU).

    Args:
        encoder: the encoder's session.
        decoder: the decoder step's session.
        state_names: the decoder state's tensors, in the graphs' order.
    """

    def __init__(self, encoder: Any, decoder: Any, state_names: list[str]) -> None:
        self.encoder, self.decoder, self.state_names = encoder, decoder, state_names

    @classmethod
    def load(
        cls,
        folder: str | Path,
        manifest: dict[str, Any] | None = None,
        quantized: bool = False,
        threads: int | None = None,
    ) -> OnnxModel:
        """The graphs of an export folder (`quantized`: the int8 ones); `manifest` None reads it;
        `threads`: ONNX Runtime's threads per graph (None: its default, one per physical core).

        Raises:
            UserError: naming the file that is missing, or when onnxruntime is not installed.
        """
        try:
            import onnxruntime
        except ImportError:
            raise UserError("decoding an ONNX export needs onnxruntime: pip install 'attention-nmt[onnx]'") from None
        folder = Path(folder)
        manifest = manifest if manifest is not None else read_manifest(folder)
        names = (manifest.get("quantized") or {}) if quantized else manifest.get("graphs", {})
        if quantized and not names:
            raise UserError(f"{folder}: has no int8 graphs (export with --quantize)")
        paths = [folder / names.get(part, f"{part}.onnx") for part in ("encoder", "decoder")]
        for path in paths:
            if not path.is_file():
                raise UserError(f"{path}: file not found (not a complete ONNX export)")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = options.inter_op_num_threads = threads
        sessions = [
            onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]) for path in paths
        ]
        return cls(*sessions, list(manifest["state"]))

    def start(self, src: np.ndarray, src_lengths: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """src (B, S) int64, src_lengths (B,) -> memory [keys, values, mask] and the initial state."""
        outputs = self.encoder.run(None, {"src": src.astype(np.int64), "src_lengths": src_lengths.astype(np.int64)})
        return outputs[:3], outputs[3:]

    def next_token_scores(
        self, prev_tokens: np.ndarray, state: Sequence[np.ndarray], memory: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
        """y(i-1) (B,) -> scores (B, V), normalizers (B,), the new state, attention (B, S), as
        `Seq2Seq.next_token_scores` gives them eagerly: the log-probabilities and zeros."""
        feeds = {"prev_tokens": prev_tokens.astype(np.int64), "keys": memory[0], "values": memory[1], "mask": memory[2]}
        feeds.update(zip(self.state_names, state))
        outputs = self.decoder.run(None, feeds)
        log_probs = outputs[0]
        return log_probs, np.zeros(len(log_probs), log_probs.dtype), outputs[1:-1], outputs[-1]


def read_manifest(folder: Path) -> dict[str, Any]:
    """An ONNX export's manifest.

    Raises:
        UserError: if it is missing, not JSON, or not of an ONNX export.
    """
    path = folder / "manifest.json"
    if not path.is_file():
        raise UserError(f"{path}: file not found (not an export, or an unfinished one)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    if manifest.get("format") != "onnx":
        raise UserError(f"{path}: not an ONNX export (nmt-export --format onnx writes one)")
    return manifest


def length_limits(source_length: int, config: dict[str, Any]) -> tuple[int, int]:
    """Minimum and maximum output lengths, EOS counted, of a source of `source_length` (EOS counted)."""
    minimum = math.ceil(source_length * config.get("min_length_ratio", 0.0)) + config.get("min_length_offset", 0)
    maximum = math.ceil(source_length * config.get("max_length_ratio", 2.0)) + config.get("max_length_offset", 10)
    return minimum, max(maximum, 1)


def masked(scores: np.ndarray, length: int, minimum: int, maximum: int) -> np.ndarray:
    """`Search._step`'s masks on (N, V) scores, for outputs of `length` tokens with the next one."""
    scores = scores.copy()
    eos = scores[:, EOS_ID].copy()
    scores[:, [*NEVER_GENERATED, EOS_ID]] = NEG_INF
    if length >= maximum:
        scores[:] = NEG_INF
    if length < minimum:
        something_else = scores.max(axis=-1) > NEG_INF
        eos = np.where(something_else, NEG_INF, eos).astype(scores.dtype)
    scores[:, EOS_ID] = eos
    return scores


def greedy_search(model: OnnxModel, sources: Sequence[np.ndarray], config: dict[str, Any]) -> list[OnnxHypothesis]:
    """The most probable token at every step, for a batch of sources (each (S,) with its EOS);
    a sentence leaves the batch when it ends."""
    if not sources:
        return []
    memory, state = model.start(*_padded(sources))
    limits = [length_limits(len(src), config) for src in sources]
    active = list(range(len(sources)))  # the sentence of each row
    tokens: list[list[int]] = [[BOS_ID] for _ in sources]
    totals = [0.0] * len(sources)
    for step in range(max(maximum for _, maximum in limits)):
        scores, normalizers, state, _ = model.next_token_scores(
            np.array([tokens[i][-1] for i in active]), state, memory
        )
        kept = []
        for row, sentence in enumerate(active):
            masked_row = masked(scores[row : row + 1], step + 1, *limits[sentence])[0]
            token = int(masked_row.argmax())  # the first of equal maxima, as torch's max
            totals[sentence] += float(masked_row[token]) - float(normalizers[row])
            tokens[sentence].append(token)
            if token != EOS_ID:
                kept.append(row)
        if not kept:
            break
        active = [active[row] for row in kept]
        state, memory = ([tensor[kept] for tensor in tensors] for tensors in (state, memory))
    return [OnnxHypothesis(found[1:-1], total, total) for found, total in zip(tokens, totals)]


class _Beam:
    """One sentence's beam search (`BeamSearch`, exact stopping): its open hypotheses, and the
    finished ones, best first, at most nbest."""

    def __init__(self, source_length: int, config: dict[str, Any]) -> None:
        self.beam, self.nbest = config.get("beam_size", 5), config.get("nbest", 1)
        self.penalty = LENGTH_PENALTIES[config.get("length_penalty", "gnmt")]
        self.alpha = config.get("alpha", 1.0)
        self.minimum, self.maximum = length_limits(source_length, config)
        self.limit_penalty = self.penalty(self.maximum, self.alpha)
        self.open_log_probs = np.full(self.beam, NEG_INF, dtype=np.float32)
        self.open_log_probs[0] = 0.0  # the beams start identical: only the first may expand
        self.history = np.full((self.beam, 1), BOS_ID, dtype=np.int64)
        self.finished: list[tuple[float, float, list[int]]] = []  # (score, log P, tokens)

    def advance(self, scores: np.ndarray, normalizers: np.ndarray, step: int) -> np.ndarray | None:
        """One step from the model's (K, V) scores and (K,) normalizers: the parent row of each
        new open hypothesis (K,), or None when the sentence is done."""
        scores = masked(scores, step + 1, self.minimum, self.maximum)
        ending = self.open_log_probs + (scores[:, EOS_ID] - normalizers)  # (K,) float32, as torch keeps it
        scores[:, EOS_ID] = NEG_INF
        row_tokens = _top(scores, min(self.beam, scores.shape[-1]))  # (K, K') best first
        row_best = np.take_along_axis(scores, row_tokens, 1) - normalizers[:, None]  # log P of each
        candidates = (self.open_log_probs[:, None] + row_best).reshape(-1)  # (K*K',)
        step_penalty = np.float32(self.penalty(step + 1, self.alpha))
        for row in np.flatnonzero(ending > NEG_INF):
            score = float(ending[row] / step_penalty)  # divided in float32, compared in float64
            self.finished.append((score, float(ending[row]), self.history[row, 1:].tolist()))
        self.finished = sorted(self.finished, key=lambda item: -item[0])[: self.nbest]
        best = _top(candidates[None], self.beam)[0]
        self.open_log_probs = candidates[best]
        parents, tokens = best // row_best.shape[1], row_tokens.reshape(-1)[best]
        worst_kept = self.finished[-1][0] if len(self.finished) == self.nbest else NEG_INF
        if worst_kept >= float(self.open_log_probs[0]) / self.limit_penalty:  # no open one can beat it
            return None
        self.history = np.concatenate([self.history[parents], tokens[:, None]], 1)
        return parents

    def hypotheses(self) -> list[OnnxHypothesis]:
        return [OnnxHypothesis(tokens, log_prob, score) for score, log_prob, tokens in self.finished]


def beam_search(model: OnnxModel, sources: Sequence[np.ndarray], config: dict[str, Any]) -> list[list[OnnxHypothesis]]:
    """`BeamSearch` (exact stopping) for a batch of sources (each (S,) with its EOS): the n-best
    of each, best first. Every open hypothesis of every sentence steps in one call of the
    decoder; a sentence leaves the batch when it is done."""
    if not sources:
        return []
    memory, state = model.start(*_padded(sources))
    beams = [_Beam(len(src), config) for src in sources]
    size = beams[0].beam
    # the first step runs one row per sentence, then each row is copied to its sentence's beams
    scores, normalizers, state, _ = model.next_token_scores(np.full(len(sources), BOS_ID), state, memory)
    copies = np.repeat(np.arange(len(sources)), size)
    scores, normalizers = scores[copies], normalizers[copies]
    state, memory = ([tensor[copies] for tensor in tensors] for tensors in (state, memory))
    active = list(range(len(sources)))  # the sentence of each group of `size` rows
    for step in range(max(beam.maximum for beam in beams)):
        if step > 0:
            tokens = np.concatenate([beams[sentence].history[:, -1] for sentence in active])
            scores, normalizers, state, _ = model.next_token_scores(tokens, state, memory)
        rows, kept = [], []
        for position, sentence in enumerate(active):
            group = slice(position * size, (position + 1) * size)
            parents = beams[sentence].advance(scores[group], normalizers[group], step)
            if parents is not None:
                rows.append(position * size + parents)
                kept.append(sentence)
        if not kept:
            break
        index = np.concatenate(rows)
        active = kept
        state, memory = ([tensor[index] for tensor in tensors] for tensors in (state, memory))
    return [beam.hypotheses() for beam in beams]


def _padded(sources: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(B, S) sources padded with PAD_ID and their (B,) lengths."""
    lengths = np.array([len(src) for src in sources], dtype=np.int64)
    batch = np.full((len(sources), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, src in enumerate(sources):
        batch[row, : len(src)] = src
    return batch, lengths


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of each row's k largest values, largest first (a partition first: a full
    sort of every row of the vocabulary would dominate a step). Equal values are ordered by index
    among those chosen; which of equal values at the k-th place are chosen is arbitrary, as in
    torch's topk, so exact float ties are the one place the two searches may part."""
    if k < values.shape[-1]:
        chosen = np.argpartition(-values, k - 1, axis=-1)[:, :k]
    else:
        chosen = np.broadcast_to(np.arange(values.shape[-1]), values.shape)
    picked = np.take_along_axis(values, chosen, -1)
    order = np.lexsort((chosen, -picked), axis=-1)
    return np.take_along_axis(chosen, order, -1)


class OnnxTranslator:
    """Raw sentences -> translations with an ONNX export and its decode config.

    Args:
        folder: the export (nmt-export --format onnx).
        quantized: use the int8 graphs.
        search: `beam` or `greedy` (None: the export's decode config).
        threads: ONNX Runtime's threads (None: its default).
    """

    def __init__(
        self, folder: str | Path, quantized: bool = False, search: str | None = None, threads: int | None = None
    ) -> None:
        folder = Path(folder)
        self.manifest = read_manifest(folder)
        self.model = OnnxModel.load(folder, self.manifest, quantized, threads)
        self.src_tokenizer, self.tgt_tokenizer = (Tokenizer(folder / f"{side}.model") for side in ("src", "tgt"))
        self.config = _search_config(self.manifest.get("decode") or {}, search)
        self.limit = self.manifest.get("max_source_length")

    def translate_ids(self, ids: Sequence[list[int]]) -> list[list[OnnxHypothesis]]:
        """The n-best of each sentence's piece ids (without EOS), decoded together."""
        cut = None if self.limit is None else self.limit - 1  # pieces the model reads, EOS not counted
        sources = [np.array([*sentence[:cut], EOS_ID], dtype=np.int64) for sentence in ids]
        if self.config["_target_"].endswith("GreedySearch"):
            return [[hypothesis] for hypothesis in greedy_search(self.model, sources, self.config)]
        return beam_search(self.model, sources, self.config)

    def translate(self, sentences: Sequence[str], batch_size: int = 64) -> list[str]:
        """The best translation of each sentence ("" for an empty one), decoded in batches of
        `batch_size` sentences of similar length."""
        ids = self.src_tokenizer.encode(list(sentences))
        todo = sorted((i for i, sentence in enumerate(sentences) if sentence.strip()), key=lambda i: len(ids[i]))
        outputs = [""] * len(sentences)
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            for index, hypotheses in zip(batch, self.translate_ids([ids[i] for i in batch])):
                if hypotheses:
                    outputs[index] = self.tgt_tokenizer.decode([hypotheses[0].tokens])[0]
        return outputs


def _search_config(decode: dict[str, Any], search: str | None) -> dict[str, Any]:
    """The decode config the numpy searches follow, checked for what they do not implement."""
    targets = {"beam": "nmt.decoding.search.BeamSearch", "greedy": "nmt.decoding.search.GreedySearch"}
    if search is not None:
        if search not in targets:
            raise UserError(f"search={search!r}: the ONNX runtime has beam and greedy")
        if decode.get("_target_") != targets[search]:
            decode = {"_target_": targets[search]}
    if decode.get("_target_") not in SUPPORTED:
        raise UserError(
            f"decode._target_={decode.get('_target_')!r}: the ONNX runtime has {', '.join(SUPPORTED)} "
            "(choose one with --search)"
        )
    decode = dict(decode)
    for key, off in OFF.items():
        if decode.get(key, off) != off:
            raise UserError(f"decode.{key}={decode[key]!r}: the ONNX runtime does not implement it (use {off!r})")
    return decode
