import gzip

import pytest

from nmt.data import tokenizer as tokenizer_module
from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TokenizerConfig, build_tokenizers
from nmt.utils.errors import UserError
from tests.data.test_sources import write_toy


def test_trains_once_then_reuses_and_stores_with_the_run(tmp_path, monkeypatch):
    files = write_toy(tmp_path / "toy")["train"]
    config = TokenizerConfig(vocab_size=60)
    src, tgt = build_tokenizers(config, files.src, files.tgt, tmp_path / "cache", tmp_path / "run1")
    assert (tmp_path / "run1" / "src.model").is_file() and (tmp_path / "run1" / "tgt.model").is_file()
    line = "ka lo mi"
    assert src.decode([src.encode([line])[0]]) == [line]
    assert [src.processor.pad_id(), src.processor.unk_id(), src.processor.bos_id(), src.processor.eos_id()] == [
        PAD_ID,
        UNK_ID,
        BOS_ID,
        EOS_ID,
    ]

    trained, train_model = [], tokenizer_module._train_model
    monkeypatch.setattr(tokenizer_module, "_train_model", lambda *args: (trained.append(args), train_model(*args)))
    build_tokenizers(config, files.src, files.tgt, tmp_path / "cache", tmp_path / "run2")
    assert trained == []  # same data and settings: reused
    build_tokenizers(TokenizerConfig(vocab_size=61), files.src, files.tgt, tmp_path / "cache", tmp_path / "run3")
    assert len(trained) == 1  # new settings: one joint model trained


def test_separate_vocabularies_differ(tmp_path):
    files = write_toy(tmp_path / "toy")["train"]
    src, tgt = build_tokenizers(
        TokenizerConfig(vocab_size=60, joint=False), files.src, files.tgt, tmp_path / "cache", tmp_path / "run"
    )
    assert src.processor.piece_to_id("▁ka") != UNK_ID
    assert tgt.processor.piece_to_id("▁ka") == UNK_ID


def pieces(tokenizer) -> list[tuple[str, float]]:
    return [(tokenizer.processor.id_to_piece(i), tokenizer.processor.get_score(i)) for i in range(tokenizer.vocab_size)]


def test_a_sampled_model_repeats_and_gzipped_text_trains_like_plain_text(tmp_path):
    files = write_toy(tmp_path / "toy")["train"]
    for path in (files.src, files.tgt):
        (tmp_path / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    sampled = TokenizerConfig(vocab_size=60, input_sentence_size=300)  # of 1000 sentences
    plain = build_tokenizers(sampled, files.src, files.tgt, tmp_path / "cache", tmp_path / "run1")[0]
    gzipped = build_tokenizers(
        sampled, tmp_path / "train.src.gz", tmp_path / "train.tgt.gz", tmp_path / "cache", tmp_path / "run2"
    )[0]
    assert pieces(gzipped) == pieces(plain)  # the same lines, the same seeded sample
    everything = build_tokenizers(
        TokenizerConfig(vocab_size=60, input_sentence_size=0),
        files.src,
        files.tgt,
        tmp_path / "cache",
        tmp_path / "run3",
    )[0]
    assert pieces(everything) != pieces(plain)  # the bound took effect


def test_invalid_utf8_in_training_text_names_file_and_line(tmp_path):
    (tmp_path / "x.de").write_bytes(b"gut\nschl\xe4cht\n")
    (tmp_path / "x.en").write_text("good\nbad\n")
    with pytest.raises(UserError, match=r"x\.de:2: invalid UTF-8 at byte 4 of the line$"):
        build_tokenizers(
            TokenizerConfig(vocab_size=20), tmp_path / "x.de", tmp_path / "x.en", tmp_path / "cache", tmp_path / "run"
        )
