import os
import pickle
import random
import shutil
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from nmt import checkpoint as checkpoint_module
from nmt.checkpoint import Checkpoint, build_checkpoint, load_checkpoint, save_checkpoint
from nmt.data.tokenizer import Tokenizer, TokenizerConfig, build_tokenizers
from nmt.decoding.batches import translate_lines
from nmt.decoding.loading import load_model
from nmt.decoding.search import GreedySearch
from nmt.modules.seq2seq import Seq2Seq
from nmt.utils.errors import UserError
from tests.data.test_sources import write_toy

# `tests.conftest.tiny_model` as a `_target_` config, so `load_model` can rebuild it.
TINY_MODEL = {
    "_target_": "nmt.modules.seq2seq.Seq2Seq",
    "encoder": {"_target_": "nmt.modules.encoder.RNNEncoder", "_partial_": True, "embedding_size": 8, "hidden_size": 8},
    "decoder": {
        "_target_": "nmt.modules.decoder.BahdanauDecoder",
        "_partial_": True,
        "embedding_size": 8,
        "hidden_size": 16,
        "readout_size": 8,
        "scorer": {"_target_": "nmt.modules.attention.AdditiveScorer", "_partial_": True, "hidden_size": 12},
    },
}
TOKENIZERS = {"src": b"src model", "tgt": b"tgt model"}
SOURCES = ["ka lo mi", "", "lo lo ka"]
search = GreedySearch(max_length_ratio=2.0, max_length_offset=5)


def toy_tokenizers(root: Path) -> tuple[Tokenizer, Tokenizer]:
    """A joint sentencepiece model trained on the toy task under `root`."""
    files = write_toy(root / "toy")["train"]
    return build_tokenizers(TokenizerConfig(vocab_size=60), files.src, files.tgt, root / "cache", root / "run")


def tiny_checkpoint(
    tokenizers: tuple[Tokenizer, Tokenizer], seed: int = 0, **model_config
) -> tuple[Seq2Seq, Checkpoint]:
    """A fresh tiny model (weights drawn with `seed`) and the checkpoint that holds it."""
    torch.manual_seed(seed)
    config = {"model": {**TINY_MODEL, **model_config}}
    src, tgt = tokenizers
    model = instantiate(OmegaConf.create(config["model"]), src_vocab_size=src.vocab_size, tgt_vocab_size=tgt.vocab_size)
    return model, build_checkpoint(
        model.state_dict(), config, {"src": src.model_bytes, "tgt": tgt.model_bytes}, step=seed, valid={}
    )


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory) -> tuple[Tokenizer, Tokenizer]:
    return toy_tokenizers(tmp_path_factory.mktemp("tokenizers"))


def test_round_trip_with_provenance(tmp_path):
    payload = build_checkpoint(
        {"w": torch.arange(3.0)},
        {"seed": 1},
        TOKENIZERS,
        step=7,
        valid={"bleu": 1.5},
        training={"rng": {"python": random.getstate()}},
    )
    save_checkpoint(tmp_path / "c.pt", payload)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["model"]["w"], payload["model"]["w"]) and loaded["step"] == 7
    assert loaded["tokenizers"] == TOKENIZERS and loaded["valid"] == {"bleu": 1.5}
    assert loaded["training"] == payload["training"]
    provenance = loaded["provenance"]
    for key in ("nmt", "torch", "sentencepiece", "sacrebleu", "python", "git_commit", "git_dirty", "created"):
        assert key in provenance, key
    assert provenance["nmt"] is not None  # the installed distribution's version (pip's name for it)
    assert provenance["torch"] == torch.__version__ and provenance["created"].endswith("+00:00")


def test_a_checkpoint_from_before_the_layered_layout_finds_its_classes_at_their_new_homes(tmp_path):
    old = {
        "decode": {"_target_": "nmt.search.BeamSearch", "beam_size": 2},
        "scheduler": {"_target_": "nmt.schedulers.InverseSqrt", "warmup": 10},
        "tokenizer": {"_target_": "nmt.tokenizer.TokenizerConfig"},
        "trainer": {"_target_": "nmt.training.TrainerConfig"},
        "model": {"_target_": "nmt.modules.seq2seq.Seq2Seq", "scorer": {"_target_": "nmt.modules.attention.DotScorer"}},
        "searches": [{"_target_": "nmt.search.GreedySearch"}],
    }
    save_checkpoint(tmp_path / "old.pt", build_checkpoint({}, old, TOKENIZERS, step=1, valid={}))
    config = load_checkpoint(tmp_path / "old.pt")["config"]
    targets = [
        config["decode"]["_target_"],
        config["scheduler"]["_target_"],
        config["tokenizer"]["_target_"],
        config["trainer"]["_target_"],
        config["model"]["_target_"],
        config["model"]["scorer"]["_target_"],
        config["searches"][0]["_target_"],
    ]
    assert targets == [
        "nmt.decoding.search.BeamSearch",
        "nmt.training.schedulers.InverseSqrt",
        "nmt.data.tokenizer.TokenizerConfig",
        "nmt.training.trainer.TrainerConfig",
        "nmt.modules.seq2seq.Seq2Seq",
        "nmt.modules.attention.DotScorer",
        "nmt.decoding.search.GreedySearch",
    ]
    assert all(get_class(target) for target in targets)  # each one imports
    assert config["decode"]["beam_size"] == 2 and config["scheduler"]["warmup"] == 10


def test_provenance_has_no_commit_outside_a_repository(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "_SOURCE_DIR", tmp_path)
    checkpoint_module._source_provenance.cache_clear()
    try:
        assert checkpoint_module.provenance()["git_commit"] is None
        assert checkpoint_module.provenance()["git_dirty"] is None
    finally:
        checkpoint_module._source_provenance.cache_clear()


def test_a_corrupt_checkpoint_is_named(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"bad\.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(UserError, match=r"none\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_a_checkpoint_without_tokenizers_is_not_an_nmt_checkpoint(tmp_path):
    torch.save({"model": {}, "config": {}, "step": 1}, tmp_path / "old.pt")
    with pytest.raises(UserError, match=r"old\.pt: not an nmt checkpoint \(no tokenizers\)$"):
        load_checkpoint(tmp_path / "old.pt")


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_pickle_that_would_run_code_is_refused_in_one_line(tmp_path, writer):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    payload = {"model": {}, "config": {}, "tokenizers": TOKENIZERS, "hook": RunsCode(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UserError) as error:
        load_checkpoint(path)
    assert str(error.value) == (
        f"{path}: refused to load: it holds Python objects that could run code "
        "(only tensors and plain data are accepted)"
    )
    assert not marker.exists()


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "c.pt", build_checkpoint({}, {}, TOKENIZERS, step=1, valid={}))

    def crash(obj, path):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "c.pt", build_checkpoint({}, {}, TOKENIZERS, step=2, valid={}))
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_a_checkpoint_copied_alone_translates_raw_text(tmp_path):
    tokenizers = toy_tokenizers(tmp_path / "train")
    model, payload = tiny_checkpoint(tokenizers)
    save_checkpoint(tmp_path / "train" / "run" / "checkpoints" / "best.pt", payload)
    with torch.inference_mode():
        expected = translate_lines(model.eval(), *tokenizers, SOURCES, search)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(tmp_path / "train" / "run" / "checkpoints" / "best.pt", elsewhere / "model.pt")
    shutil.rmtree(tmp_path / "train")  # data, tokenizer cache and run directory are gone

    loaded, src, tgt, config = load_model(elsewhere / "model.pt")
    with torch.inference_mode():
        assert translate_lines(loaded, src, tgt, SOURCES, search) == expected
    assert config == {"model": TINY_MODEL} and expected[0] and expected[1] == ""


def test_a_damaged_tokenizer_is_named(tmp_path, tokenizers):
    _, payload = tiny_checkpoint(tokenizers)
    save_checkpoint(tmp_path / "c.pt", {**payload, "tokenizers": {**payload["tokenizers"], "tgt": b"junk"}})
    with pytest.raises(UserError, match=r"c\.pt \(tokenizers\.tgt\): not a sentencepiece model"):
        load_model(tmp_path / "c.pt")
