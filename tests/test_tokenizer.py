from nmt import tokenizer as tokenizer_module
from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TokenizerConfig, build_tokenizers
from tests.test_sources import write_toy


def test_trains_once_then_reuses_and_stores_with_the_run(tmp_path, monkeypatch):
    files = write_toy(tmp_path / "toy")["train"]
    config = TokenizerConfig(vocab_size=60)
    src, tgt = build_tokenizers(config, files.src, files.tgt, tmp_path / "cache", tmp_path / "run1")
    assert (tmp_path / "run1" / "src.model").is_file() and (tmp_path / "run1" / "tgt.model").is_file()
    line = "ka lo mi"
    assert src.decode([src.encode([line])[0]]) == [line]
    assert [src.processor.pad_id(), src.processor.unk_id(), src.processor.bos_id(), src.processor.eos_id()] == [
        PAD_ID, UNK_ID, BOS_ID, EOS_ID]

    trained, train_model = [], tokenizer_module._train_model
    monkeypatch.setattr(tokenizer_module, "_train_model", lambda *args: (trained.append(args), train_model(*args)))
    build_tokenizers(config, files.src, files.tgt, tmp_path / "cache", tmp_path / "run2")
    assert trained == []  # same data and settings: reused
    build_tokenizers(TokenizerConfig(vocab_size=61), files.src, files.tgt, tmp_path / "cache", tmp_path / "run3")
    assert len(trained) == 1  # new settings: one joint model trained


def test_separate_vocabularies_differ(tmp_path):
    files = write_toy(tmp_path / "toy")["train"]
    src, tgt = build_tokenizers(TokenizerConfig(vocab_size=60, joint=False), files.src, files.tgt,
                                tmp_path / "cache", tmp_path / "run")
    assert src.processor.piece_to_id("▁ka") != UNK_ID
    assert tgt.processor.piece_to_id("▁ka") == UNK_ID
