"""Word alignments as data: Pharaoh lines, word links mapped onto pieces (against a brute-force
oracle), the batch's alignment targets, and the links carried through the encoded cache."""

import itertools
import random
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
import torch

from nmt.data.alignments import (
    Alignment,
    alignment_targets,
    parse_pharaoh,
    piece_links,
    word_indices,
    word_of_each_piece,
)
from nmt.data.batching import ParallelData, filter_by_length
from nmt.data.corpus import read_lines
from nmt.data.encoding import encode_corpus
from nmt.data.sources import ToyTask
from nmt.utils.errors import UserError
from tests.data.test_indexed_data import EMPTIED, corpus, write_corpus  # noqa: F401 - `corpus` is a fixture


def test_word_indices_lone_marker_and_leading_piece():
    assert word_indices(["▁", "5", "▁km"]) == [0, 0, 1]  # "▁" + "5" is the word "5"
    assert word_indices(["ab", "c", "▁d"]) == [0, 0, 1]  # no marker at the start: still word 0
    assert word_of_each_piece(np.array([True, False, True, True])).tolist() == [0, 0, 1, 2]


def test_gold_sure_links_are_possible():
    assert parse_pharaoh("0-0 1?1", "x:1") == Alignment(frozenset({(0, 0)}), frozenset({(0, 0), (1, 1)}))


def test_piece_links_by_hand():
    # source "▁Der ▁Hunde besitzer" (words 0 1 1), target "▁The ▁dog ▁own er" (words 0 1 2 2)
    links = piece_links({(0, 0), (1, 1), (1, 2)}, np.array([0, 1, 1]), np.array([0, 1, 2, 2]))
    expected = [(0, 0), (1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)]  # (target piece, source piece)
    assert links.tolist() == [list(link) for link in expected] and links.dtype == np.int32


def test_piece_links_equal_a_brute_force_oracle():
    rng = random.Random(3)
    for _ in range(200):
        source_words, target_words = (
            np.array(sorted(rng.choices(range(rng.randint(1, 6)), k=rng.randint(1, 12)))) for _ in range(2)
        )
        word_links = {
            (rng.randrange(source_words.max() + 1), rng.randrange(target_words.max() + 1))
            for _ in range(rng.randint(0, 8))
        }
        oracle = sorted(
            (t, s)
            for t, s in itertools.product(range(len(target_words)), range(len(source_words)))
            if (int(source_words[s]), int(target_words[t])) in word_links
        )
        assert [tuple(link) for link in piece_links(word_links, source_words, target_words).tolist()] == oracle


def test_alignment_targets_normalize_rows_link_the_ends_and_leave_unaligned_pairs_alone():
    # pair 0: 2 source and 3 target pieces; target piece 1 linked to both source pieces, piece 2 to none
    # pair 1: no links at all (unaligned): no guidance, not even at "</s>"
    targets = alignment_targets([np.array([0, 0, 1, 0, 1, 1]), np.array([], np.int32)], [2, 3], [3, 1], (2, 4, 4))
    expected = torch.zeros(2, 4, 4)
    expected[0, 0, 0] = 1.0
    expected[0, 1, :2] = 0.5
    expected[0, 3, 2] = 1.0  # "</s>" (target position 3) to "</s>" (source position 2)
    assert torch.equal(targets, expected)
    sums = targets.sum(-1)
    assert torch.all((sums == 0) | torch.isclose(sums, torch.ones(())))


def reversal(src: str) -> str:
    """The toy task's alignment: target word n-1-i translates source word i."""
    words = len(src.split())
    return " ".join(f"{i}-{words - 1 - i}" for i in range(words))


def write_alignments(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def write_toy_alignments(cwd: Path, num_train: int, links: Callable[[str], str] = reversal) -> Path:
    """`<cwd>/train.align`: word alignments of the toy training set that `train.py` run in `cwd`
    with `data.num_train=num_train` (and the default seed) generates: a Pharaoh line per source
    line, the task's own (`reversal`) or any other."""
    splits = ToyTask(str(cwd / "data" / "toy"), num_train=num_train).prepare()
    return write_alignments(cwd / "train.align", [links(line) for line in read_lines(splits["train"].src)])


def test_the_cache_carries_each_pairs_piece_links(corpus, tmp_path):  # noqa: F811
    alignments = write_alignments(tmp_path / "train.align", [reversal(s) for s in corpus.src_lines])
    pairs = encode_corpus(corpus.files, *corpus.tokenizers, tmp_path / "cache", workers=2, alignments=alignments)
    plain = encode_corpus(corpus.files, *corpus.tokenizers, tmp_path / "cache", workers=1)
    assert plain.links is None and len(list((tmp_path / "cache").iterdir())) == 2  # one folder each
    src_model, tgt_model = (spm.SentencePieceProcessor(model_file=str(path)) for path in corpus.models)
    kept = [(s, t) for s, t in zip(corpus.src_lines, corpus.tgt_lines) if s.strip() and t.strip()]
    assert len(pairs) == len(kept) and pairs.links is not None
    for row, (src, tgt) in enumerate(kept):  # the oracle: piece strings, encoded alone, words by their marks
        src_words, tgt_words = (
            np.array(word_indices(model.encode(line, out_type=str)))
            for model, line in ((src_model, src), (tgt_model, tgt))
        )
        expected = piece_links(parse_pharaoh(reversal(src), "").possible, src_words, tgt_words)
        assert pairs.links[row].tolist() == expected.ravel().tolist(), row
    assert np.array_equal(pairs.src.ids, plain.src.ids) and np.array_equal(pairs.tgt.ids, plain.tgt.ids)


def test_batches_carry_alignment_targets(corpus, tmp_path):  # noqa: F811
    alignments = write_alignments(tmp_path / "train.align", [reversal(s) for s in corpus.src_lines])
    pairs = encode_corpus(corpus.files, *corpus.tokenizers, tmp_path / "cache", workers=1, alignments=alignments)
    data = ParallelData(pairs, filter_by_length(pairs.src.lengths, pairs.tgt.lengths, 100), max_tokens=200)
    for indices in data.batch_order(0)[:5]:
        batch = data.collate(indices)
        rows = data.rows[indices]
        expected = alignment_targets(
            [pairs.links[row] for row in rows],
            pairs.src.lengths[rows].tolist(),
            pairs.tgt.lengths[rows].tolist(),
            (len(indices), batch.tgt_out.size(1), batch.src.size(1)),
        )
        assert torch.equal(batch.alignment, expected)
        assert torch.equal(batch.to(torch.device("cpu")).alignment, expected)
        aligned = batch.alignment.sum(-1) > 0  # every real target position of the toy task is aligned
        assert torch.equal(aligned, batch.tgt_out != 0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0-0 9-0", "link 9-0 points past the sentence pair"),
        ("0-0 0-x", "bad alignment link '0-x'"),
    ],
)
def test_a_bad_link_names_the_alignment_file_and_line(corpus, tmp_path, line, message):  # noqa: F811
    lines = [reversal(s) for s in corpus.src_lines]
    lines[40] = line
    alignments = write_alignments(tmp_path / "train.align", lines)
    with pytest.raises(UserError, match=re.escape(f"{alignments}:41: {message}")):
        encode_corpus(corpus.files, *corpus.tokenizers, tmp_path / "cache", workers=1, alignments=alignments)
    assert not list((tmp_path / "cache").iterdir())  # nothing half-written is left to be reused


def test_an_alignment_file_of_another_length_is_named(corpus, tmp_path):  # noqa: F811
    alignments = write_alignments(tmp_path / "train.align", [reversal(s) for s in corpus.src_lines[:-2]])
    with pytest.raises(UserError, match=re.escape(f"{alignments} has {len(corpus.src_lines) - 2}")):
        encode_corpus(corpus.files, *corpus.tokenizers, tmp_path / "cache", workers=1, alignments=alignments)


def test_a_pair_whose_pieces_are_not_its_words_trains_without_links(corpus, tmp_path, caplog):  # noqa: F811
    src_lines = list(corpus.src_lines)
    src_lines[0] = src_lines[0].replace(" ", "\u00a8", 1)  # NFKC makes "¨" a space and a diaeresis: one more word
    files = write_corpus(tmp_path / "files", src_lines, corpus.tgt_lines)
    lines = [reversal(s) for s in src_lines]
    alignments = write_alignments(tmp_path / "train.align", lines)
    pairs = encode_corpus(files, *corpus.tokenizers, tmp_path / "cache", workers=1, alignments=alignments)
    assert len(pairs.links[0]) == 0 and len(pairs.links[1]) > 0
    assert "1 aligned pairs split into other words" in caplog.text
