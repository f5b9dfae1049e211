"""Word alignments as data: Pharaoh files, and word links mapped onto sentencepiece pieces.

A link `(i, j)` joins source word i to target word j, and is written `i-j` in Pharaoh format
(source first, as Moses, fast_align, eflomal and the usual gold standards do); words are the
whitespace tokens of the line, counted from 0. Gold files mark sure links `i-j` and possible
links `i?j` on one line per sentence; sure links are possible too (S ⊆ P), as AER requires.

Models see pieces, not words. Guided alignment (`nmt.training.loss.guided_alignment_loss`) needs
the links between pieces: every piece of a target word is linked to every piece of each source
word the word is linked to (`piece_links`), and a batch turns them into one target distribution
over the source per target position (`alignment_targets`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nmt.data.corpus import read_lines
from nmt.data.tokenizer import WORD_START
from nmt.utils.errors import UserError

Link = tuple[int, int]
"""(source position, target position)."""


def word_indices(pieces: Sequence[str]) -> list[int]:
    """The word each sentencepiece piece belongs to: a piece starting with "▁" begins a new word
    (a lone "▁" too: the piece after it continues that word); leading pieces without it are word 0."""
    return word_of_each_piece(np.array([piece.startswith(WORD_START) for piece in pieces], dtype=bool)).tolist()


def word_of_each_piece(begins_word: np.ndarray) -> np.ndarray:
    """(P,) whether each piece begins a word -> (P,) the word of each piece (see `word_indices`)."""
    marks = begins_word.astype(np.int64)
    marks[:1] = 0  # the first piece is word 0, with or without its mark
    return np.cumsum(marks)


@dataclass(frozen=True)
class Alignment:
    """One sentence's links: for gold, AER's S and P; for hypotheses, `possible` (every link) is A."""

    sure: frozenset[Link]
    possible: frozenset[Link]  # includes every sure link


def parse_pharaoh(line: str, where: str) -> Alignment:
    """Parses `0-0 1-2 2?3`: `i-j` a sure link, `i?j` a possible one (an empty line: no links).

    Args:
        where: "file:line", for the error message.

    Raises:
        UserError: naming `where` and the first token that is not `i-j` or `i?j`.
    """
    sure, possible = set(), set()
    for token in line.split():
        separator = "-" if "-" in token else "?"
        source, _, target = token.partition(separator)
        if not (source.isdecimal() and target.isdecimal()):  # also rejects "", signs and "1-2-3"
            raise UserError(f"{where}: bad alignment link {token!r} (expected i-j for sure or i?j for possible)")
        link = (int(source), int(target))
        possible.add(link)
        if separator == "-":
            sure.add(link)
    return Alignment(frozenset(sure), frozenset(possible))


def read_pharaoh(path: str | Path) -> list[Alignment]:
    """One `Alignment` per line of a Pharaoh file.

    Raises:
        UserError: if the file is unreadable or a link is malformed (naming file and line).
    """
    return [parse_pharaoh(line, f"{path}:{number}") for number, line in enumerate(read_lines(path), start=1)]


def format_pharaoh(links: Iterable[Link]) -> str:
    """Links as one Pharaoh line `i-j ...`, sorted by source then target position."""
    return " ".join(f"{i}-{j}" for i, j in sorted(links))


def write_pharaoh(path: str | Path, alignments: Iterable[Iterable[Link]]) -> None:
    """Writes one line of sure links per sentence."""
    Path(path).write_text("".join(format_pharaoh(links) + "\n" for links in alignments), encoding="utf-8")


def piece_links(word_links: Iterable[Link], source_words: np.ndarray, target_words: np.ndarray) -> np.ndarray:
    """Word links -> links between the words' pieces: every piece of target word j with every
    piece of source word i, for each link (i, j).

    Args:
        word_links: (source word, target word) links.
        source_words: (S,) the word of each source piece (`word_of_each_piece`).
        target_words: (T,) the word of each target piece.

    Returns:
        (L, 2) int32 (target piece, source piece) links, sorted.
    """
    links = np.array(sorted(word_links), dtype=np.int64).reshape(-1, 2)  # (K, 2) source word, target word
    source_hit = source_words[None, :] == links[:, :1]  # (K, S): piece s belongs to link k's source word
    target_hit = target_words[None, :] == links[:, 1:]  # (K, T)
    linked = target_hit.T.astype(np.int32) @ source_hit.astype(np.int32)  # (T, S): links joining t and s
    return np.argwhere(linked > 0).astype(np.int32)


def alignment_targets(
    links: Sequence[np.ndarray], src_lengths: Sequence[int], tgt_lengths: Sequence[int], shape: tuple[int, int, int]
) -> torch.Tensor:
    """What guided alignment pulls each step's attention towards: (B, T, S) rows that each sum to
    one over the source positions the target position is linked to, or are all zero (no link).

    A sentence with links also links its target "</s>" to its source "</s>" (as Garg et al. 2019
    do), so the model learns where to look when it ends; a sentence without any (unaligned, or
    its pieces not matching its words) gets no guidance at all.

    Args:
        links: per sentence, flat (target piece, source piece) pairs (`piece_links`, flattened).
        src_lengths: source pieces per sentence ("</s>" not counted: it sits at that index).
        tgt_lengths: target pieces per sentence (likewise).
        shape: (B, T, S) of the batch's `tgt_out` and `src`.
    """
    targets = np.zeros(shape, np.float32)
    for row, (pairs, src_length, tgt_length) in enumerate(zip(links, src_lengths, tgt_lengths)):
        if len(pairs):
            pairs = np.asarray(pairs).reshape(-1, 2)
            targets[row, pairs[:, 0], pairs[:, 1]] = 1.0
            targets[row, tgt_length, src_length] = 1.0
    totals = targets.sum(-1, keepdims=True)
    np.divide(targets, totals, out=targets, where=totals > 0)
    return torch.from_numpy(targets)
