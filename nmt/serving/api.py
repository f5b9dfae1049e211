"""The explorer's JSON API, apart from HTTP: each request body checked field by field, answered by
the `Translator`, or refused with an `ApiError` that says what to fix (a 4xx answer).

    POST /api/translate  {"text": "..."} or {"texts": [...]}; optional "nbest" (1 to the beam
                         size), "search" ("beam" or "greedy"), "attention" (pieces, per-token
                         probabilities, attention matrix and word alignment of every hypothesis;
                         default: true for a model with attention)
    POST /api/score      {"source": "...", "target": "..."}: the given translation, scored and
                         aligned (forced decoding)
    GET  /api/info       the model: languages, size, default search, limits

What a hypothesis shows comes from scoring its text (`Translator.score`): the probabilities and
the attention the page draws are the model's for exactly the pieces it labels (teacher forcing
equals the search's steps, so for the search's own pieces they are the search's).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from nmt.decoding.translator import PairScore, Translator
from nmt.utils.errors import UserError

T = TypeVar("T")


@dataclass
class ApiError(Exception):
    """A request the API refuses: the HTTP status (4xx) and a one-line reason."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Limits:
    """What one request may ask for.

    Args:
        max_chars: characters of one text (longer: 413).
        max_texts: texts of one translate request (more: 413).
    """

    max_chars: int = 1000
    max_texts: int = 64


class ExplorerApi:
    """Answers the API's requests with one translator, one request at a time (a lock: the model
    is shared, and a CPU is best used by one batch at a time anyway).

    Args:
        translator: the model to serve.
        limits: per-request limits.
        name: shown by the page (e.g. the checkpoint's path).
    """

    def __init__(self, translator: Translator, limits: Limits = Limits(), name: str = "model") -> None:
        self.translator, self.limits, self.name = translator, limits, name
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """The model and the server's limits, for the page's header and for programs."""
        run = self.translator.run_config or {}
        data = run.get("data") or {}
        search = self.translator.search()
        return {
            "name": self.name,
            "source_language": data.get("src_lang"),
            "target_language": data.get("tgt_lang"),
            "parameters": sum(p.numel() for p in self.translator.model.parameters()),
            "attention": self.translator.has_attention,
            "search": type(search).__name__,
            "beam_size": getattr(search, "beam_size", 1),
            "max_chars": self.limits.max_chars,
            "max_texts": self.limits.max_texts,
        }

    def translate(self, body: Any) -> dict[str, Any]:
        """The n-best translations of one text or several.

        Raises:
            ApiError: 400 for a malformed request, 413 for one over the limits.
        """
        fields = _fields(body, {"text": str, "texts": list, "nbest": int, "search": str, "attention": bool})
        if ("text" in fields) == ("texts" in fields):
            raise ApiError(400, 'give "text" (one string) or "texts" (a list of strings), not both')
        texts = [fields["text"]] if "text" in fields else fields["texts"]
        if not texts:
            raise ApiError(400, '"texts" is empty')
        if len(texts) > self.limits.max_texts:
            raise ApiError(413, f"{len(texts)} texts; this server takes at most {self.limits.max_texts} per request")
        for index, text in enumerate(texts):
            self._check_text(text, "text" if "text" in fields else f"texts[{index}]")
        search = fields.get("search")
        if search is not None and search not in ("beam", "greedy"):
            raise ApiError(400, f'"search": {search!r}: use "beam" or "greedy"')
        nbest = fields.get("nbest", 1)
        beam = getattr(self.translator.search(search), "beam_size", 1)
        if not 1 <= nbest <= beam:
            raise ApiError(400, f'"nbest": {nbest}: between 1 and the beam size, {beam}')
        attention = fields.get("attention", self.translator.has_attention)
        if attention and not self.translator.has_attention:
            raise ApiError(400, 'this model has no attention: send "attention": false')
        with self._lock:
            found = _answered(self.translator.translate_nbest, texts, search=search, nbest=nbest if nbest > 1 else None)
            results = []
            for text, hypotheses in zip(texts, found):
                shown = [{"text": h.text, "score": h.score, "log_prob": h.log_prob} for h in hypotheses]
                if attention:
                    scores = _answered(
                        self.translator.score, [text] * len(hypotheses), [h.text for h in hypotheses], attention=True
                    )
                    for entry, scored in zip(shown, scores):
                        entry.update(self._explained(text, entry["text"], scored))
                results.append({"source": text, "nbest": shown})
        return {"translations": results}

    def score(self, body: Any) -> dict[str, Any]:
        """A given translation of a source, scored and aligned.

        Raises:
            ApiError: 400 for a malformed request or a model without attention, 413 for an
                over-long text.
        """
        fields = _fields(body, {"source": str, "target": str}, required=("source", "target"))
        for name in ("source", "target"):
            self._check_text(fields[name], name)
        if not self.translator.has_attention:
            raise ApiError(400, "this model has no attention: nothing to align")
        with self._lock:
            (scored,) = _answered(self.translator.score, [fields["source"]], [fields["target"]], attention=True)
        return {
            "log_prob": scored.log_prob,
            "perplexity": scored.perplexity,
            **self._explained(fields["source"], fields["target"], scored),
        }

    def _explained(self, source: str, target: str, scored: PairScore | None) -> dict[str, Any]:
        """Pieces, per-token probabilities, attention and word alignment of one scored pair."""
        if scored is None:  # an empty translation: nothing to show
            return {
                "source_pieces": [],
                "target_pieces": [],
                "token_probabilities": [],
                "attention": [],
                "alignment": [],
                "source_words": source.split(),
                "target_words": [],
            }
        (links,) = self.translator.align([source], [target], scores=[scored])
        return {
            "source_pieces": [*scored.source_pieces, "</s>"],
            "target_pieces": [*scored.target_pieces, "</s>"],
            "token_probabilities": [math.exp(value) for value in scored.token_log_probs],
            "attention": np.round(scored.attention, 5).tolist(),
            "alignment": [list(link) for link in links],
            "source_words": source.split(),
            "target_words": target.split(),
        }

    def _check_text(self, text: Any, name: str) -> None:
        if not isinstance(text, str):
            raise ApiError(400, f'"{name}" must be a string')
        if not text.strip():
            raise ApiError(400, f'"{name}" is empty')
        if len(text) > self.limits.max_chars:
            raise ApiError(
                413, f'"{name}" has {len(text)} characters; this server takes at most {self.limits.max_chars}'
            )


def _fields(body: Any, allowed: dict[str, type], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The body's fields, checked: a JSON object with known keys of the right types."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(400, f'unknown field "{unknown[0]}" (this request takes {", ".join(allowed)})')
    for name in required:
        if name not in body:
            raise ApiError(400, f'"{name}" is missing')
    for name, value in body.items():
        kind = allowed[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ApiError(400, f'"{name}" must be {_KIND_NAMES[kind]}')
    return body


def _answered(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The translator's answer; its refusal (a `UserError`) becomes a 400."""
    try:
        return method(*args, **kwargs)
    except UserError as error:
        raise ApiError(400, str(error)) from None


_KIND_NAMES = {str: "a string", list: "a list of strings", int: "an integer", bool: "true or false"}
