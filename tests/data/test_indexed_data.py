"""Prepared training data: encoded once into memory-mapped arrays that hold exactly the ids of
direct sentencepiece encoding, reused only while corpus, tokenizers and files are intact, and
batched like in-memory lists."""

import gzip
import logging
import os
import stat
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import sentencepiece as spm
import torch
from omegaconf import OmegaConf

from nmt.data import encoding
from nmt.data.batching import ParallelData, filter_by_length
from nmt.data.encoding import encode_corpus
from nmt.data.indexed import CorruptData, IndexedTokens, id_dtype, open_pairs
from nmt.data.sources import SplitFiles
from nmt.data.tokenizer import Tokenizer, TokenizerConfig, build_tokenizers
from nmt.training.experiment import load_validation_data
from nmt.utils.errors import UserError
from tests.data.test_sources import write_toy

EMPTIED = {5: ("", "x"), 17: ("ka lo", "   "), 18: ("", "")}  # pairs with an empty side: left out


class Corpus(NamedTuple):
    files: SplitFiles
    tokenizers: tuple[Tokenizer, Tokenizer]
    models: tuple[Path, Path]
    src_lines: list[str]
    tgt_lines: list[str]


def write_corpus(folder: Path, src_lines: list[str], tgt_lines: list[str]) -> SplitFiles:
    """The source side plain, the target side gzipped: both kinds of file are read."""
    folder.mkdir(parents=True, exist_ok=True)
    files = SplitFiles(folder / "train.src", folder / "train.tgt.gz")
    files.src.write_text("".join(f"{line}\n" for line in src_lines))
    files.tgt.write_bytes(gzip.compress("".join(f"{line}\n" for line in tgt_lines).encode()))
    return files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    toy = write_toy(root / "toy", num_train=300)["train"]
    src_lines, tgt_lines = toy.src.read_text().splitlines(), toy.tgt.read_text().splitlines()
    for index, (src, tgt) in EMPTIED.items():
        src_lines[index], tgt_lines[index] = src, tgt
    files = write_corpus(root / "files", src_lines, tgt_lines)
    tokenizers = build_tokenizers(
        TokenizerConfig(vocab_size=60, joint=False), files.src, files.tgt, root / "tokenizers", root / "run"
    )
    return Corpus(files, tokenizers, (root / "run" / "src.model", root / "run" / "tgt.model"), src_lines, tgt_lines)


def direct_encoding(corpus: Corpus) -> tuple[list[list[int]], list[list[int]]]:
    """The oracle: each kept line encoded alone by sentencepiece, from the model files."""
    src_model, tgt_model = (spm.SentencePieceProcessor(model_file=str(path)) for path in corpus.models)
    kept = [(s, t) for s, t in zip(corpus.src_lines, corpus.tgt_lines) if s.strip() and t.strip()]
    return [src_model.encode(s) for s, _ in kept], [tgt_model.encode(t) for _, t in kept]


@pytest.fixture
def builds(monkeypatch) -> list[Path]:
    """The folders `encode_corpus` encodes into (empty while it reuses its cache)."""
    built, build = [], encoding._build
    monkeypatch.setattr(
        encoding,
        "_build",
        lambda files, tokenizers, folder, *rest: (built.append(folder), build(files, tokenizers, folder, *rest)),
    )
    return built


def test_every_sentence_has_the_ids_of_direct_encoding(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(encoding, "CHUNK_PAIRS", 7)  # many chunks over two workers: their order must hold
    pairs = encode_corpus(corpus.files, *corpus.tokenizers, tmp_path / "cache", workers=2)
    src_ids, tgt_ids = direct_encoding(corpus)
    assert len(pairs) == len(src_ids) == 300 - len(EMPTIED) and pairs.empty_pairs == len(EMPTIED)
    assert [pairs.src[i].tolist() for i in range(len(pairs))] == src_ids
    assert [pairs.tgt[i].tolist() for i in range(len(pairs))] == tgt_ids
    assert pairs.src.lengths.tolist() == [len(ids) for ids in src_ids]
    assert pairs.src.ids.dtype == np.uint16 and pairs.tgt.ids.dtype == np.uint16  # 60 pieces fit
    assert id_dtype(70_000) == np.int32
    umask = os.umask(0)
    os.umask(umask)
    (folder,) = (tmp_path / "cache").iterdir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask  # a cache others may share, not 0700


def test_the_cache_is_reused_until_the_corpus_or_a_tokenizer_changes(corpus, tmp_path, builds, caplog):
    caplog.set_level(logging.INFO)
    files = write_corpus(tmp_path / "copy", corpus.src_lines, corpus.tgt_lines)
    first = encode_corpus(files, *corpus.tokenizers, tmp_path / "cache", workers=1)
    encode_corpus(files, *corpus.tokenizers, tmp_path / "cache", workers=1)
    assert len(builds) == 1 and f"reusing encoded corpus {builds[0]}" in caplog.text

    files = write_corpus(tmp_path / "copy", [*corpus.src_lines, "mi ne"], [*corpus.tgt_lines, "three four"])
    assert len(encode_corpus(files, *corpus.tokenizers, tmp_path / "cache", workers=1)) == len(first) + 1
    assert len(builds) == 2 and builds[1] != builds[0]

    other = build_tokenizers(
        TokenizerConfig(vocab_size=50, joint=False), files.src, files.tgt, tmp_path / "tokenizers", tmp_path / "run"
    )
    encode_corpus(files, corpus.tokenizers[0], other[1], tmp_path / "cache", workers=1)
    assert len(builds) == 3 and len({*builds}) == 3


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-2])


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated ids": ("src.ids", truncate, "src.ids has .* bytes, its header says"),
    "altered offsets": ("tgt.offsets", flip_a_byte, "tgt.offsets does not match its checksum"),
    "altered lengths": ("src.lengths", flip_a_byte, "src.lengths does not match its checksum"),
    "missing lengths": ("tgt.lengths", Path.unlink, "tgt.lengths is missing"),
    "no header": ("header.json", Path.unlink, "no header.json"),
    "garbled header": ("header.json", truncate, "header.json is malformed"),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_cache_is_never_used_but_rebuilt_with_a_warning(corpus, tmp_path, builds, caplog, damage):
    name, spoil, reason = damage
    encode_corpus(corpus.files, *corpus.tokenizers, tmp_path / "cache", workers=1)
    folder = builds[0]
    spoil(folder / name)
    with pytest.raises(CorruptData, match=reason):
        open_pairs(folder)

    caplog.set_level(logging.WARNING)
    pairs = encode_corpus(corpus.files, *corpus.tokenizers, tmp_path / "cache", workers=1)
    assert builds == [folder, folder]
    assert f"encoded corpus {folder} is unusable" in caplog.text and "encoding it again" in caplog.text
    assert [pairs.src[i].tolist() for i in range(len(pairs))] == direct_encoding(corpus)[0]
    open_pairs(folder)  # whole again


@pytest.mark.parametrize("max_sentences", [None, 5])
def test_batches_of_the_mapped_corpus_equal_those_of_in_memory_lists(corpus, tmp_path, max_sentences):
    pairs = encode_corpus(corpus.files, *corpus.tokenizers, tmp_path / "cache", workers=1)
    rows = filter_by_length(pairs.src.lengths, pairs.tgt.lengths, 8)
    assert 0 < len(rows) < len(pairs)  # the filter drops some: batches must map through `rows`
    src_ids, tgt_ids = direct_encoding(corpus)
    mapped = ParallelData(pairs, rows, max_tokens=60, max_sentences=max_sentences, seed=3)
    in_memory = ParallelData.from_lists(
        [src_ids[r] for r in rows], [tgt_ids[r] for r in rows], max_tokens=60, max_sentences=max_sentences, seed=3
    )
    for epoch in (0, 1):
        order = mapped.batch_order(epoch)
        assert order == in_memory.batch_order(epoch)
        for indices in order:
            expected, actual = in_memory.collate(indices), mapped.collate(indices)
            for field in ("src", "src_lengths", "tgt_in", "tgt_out"):
                assert torch.equal(getattr(actual, field), getattr(expected, field)), field
            assert mapped.target_tokens(indices) == expected.num_target_tokens


def test_unequal_training_files_name_both_and_leave_no_folder(corpus, tmp_path):
    files = write_corpus(tmp_path / "files", ["a b", "c", "d"], ["x", "y"])
    with pytest.raises(UserError, match=r"train\.src has 3 lines, .*train\.tgt\.gz has 2$"):
        encode_corpus(files, *corpus.tokenizers, tmp_path / "cache", workers=2)
    assert not any((tmp_path / "cache").iterdir())  # the half-written folder is gone


def test_invalid_utf8_in_a_training_file_names_file_and_line(corpus, tmp_path):
    files = write_corpus(tmp_path / "files", ["a", "b", "c"], ["x", "y", "z"])
    files.src.write_bytes(b"a\nb\nschl\xe4cht\n")
    with pytest.raises(UserError, match=r"train\.src:3: invalid UTF-8"):
        encode_corpus(files, *corpus.tokenizers, tmp_path / "cache", workers=1)


def test_in_memory_tokens_slice_like_the_lists_they_come_from():
    sequences = [[4, 5, 6], [], [7], [8, 9]]
    tokens = IndexedTokens.from_lists(sequences)
    assert [tokens[i].tolist() for i in range(len(tokens))] == sequences
    assert tokens.offsets.tolist() == [0, 3, 3, 4, 6]


def test_validation_ids_are_mapped_from_the_cache_and_match_their_text(corpus, tmp_path):
    cfg = OmegaConf.create({"encoded_cache": str(tmp_path / "cache"), "encode_workers": 1})
    data = load_validation_data(cfg, {"valid": corpus.files}, *corpus.tokenizers)
    src_ids, tgt_ids = direct_encoding(corpus)
    assert isinstance(data.src_ids.ids.base, np.memmap) and isinstance(data.tgt_ids.ids.base, np.memmap)  # mapped
    assert [ids.tolist() for ids in data.src_ids] == src_ids and [ids.tolist() for ids in data.tgt_ids] == tgt_ids
    kept = [(s, t) for s, t in zip(corpus.src_lines, corpus.tgt_lines) if s.strip() and t.strip()]
    assert data.sources == [s for s, _ in kept] and data.references == [t for _, t in kept]
