"""Model folders (`nmt.decoding.pretrained`): a checkpoint written as a folder translates exactly
as the checkpoint does, loads without unpickling anything, and carries a model card with its
scores and their signatures; damaged folders fail with one line; the Hub calls are the ones
expected (the Hub itself is not reachable from here)."""

import json
import pickle
import sys
from pathlib import Path

import pytest
import torch

from nmt import Translator
from nmt.checkpoint import save_checkpoint
from nmt.cli.export import main as export_main
from nmt.decoding import pretrained
from nmt.utils.errors import UserError
from tests.test_checkpoint import tiny_checkpoint, toy_tokenizers

SOURCES = ["ka lo mi ne su", "", "ta ri po fe gu ba do", "lo"]
SUMMARY = {
    "parameters": 1234,
    "steps": 60,
    "epochs": 2,
    "wall_seconds": 90.0,
    "training_seconds": 60.0,
    "precision": {"training": "bf16"},
    "test": {
        "bleu": 12.345,
        "chrf": 40.5,
        "ter": 70.25,
        "bleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
        "chrf_signature": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
        "ter_signature": "nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0",
    },
    "machine": {"cpu": "A Test CPU", "logical_cpus": 2, "torch": "2.13.0", "gpu": None},
}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    return toy_tokenizers(tmp_path_factory.mktemp("tokenizers"))


def write_run(root: Path, tokenizers, **model_config) -> Path:
    """A run folder as training leaves it: checkpoints/best.pt and summary.json."""
    _, payload = tiny_checkpoint(tokenizers, seed=5, **model_config)
    payload["config"].update(
        name="toy_model", seed=3, data={"_target_": "nmt.data.sources.ToyTask", "src_lang": "xx", "tgt_lang": "yy"}
    )
    save_checkpoint(root / "checkpoints" / "best.pt", payload)
    (root / "summary.json").write_text(json.dumps({**SUMMARY, "config": payload["config"]}))
    return root / "checkpoints" / "best.pt"


@pytest.mark.parametrize("model_config", [{}, {"share_embeddings": True}], ids=["plain", "shared_embeddings"])
def test_a_folder_from_a_checkpoint_translates_identically_without_unpickling(
    tokenizers, tmp_path, model_config, monkeypatch
):
    checkpoint = write_run(tmp_path / "run", tokenizers, **model_config)
    folder = tmp_path / "folder"
    export_main(["--checkpoint", str(checkpoint), "--output", str(folder), "--format", "hub"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "src.model",
        "tgt.model",
    ]
    assert SUMMARY["test"]["bleu_signature"] in (folder / "README.md").read_text()  # the run's summary.json, found
    for path in folder.iterdir():  # no pickle (protocol 2+ starts with 0x80) and no torch zip archive
        assert path.read_bytes()[:2] not in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK"), path

    reference = Translator.from_checkpoint(checkpoint, device="cpu", precision="fp32")
    expected = {search: reference.translate(SOURCES, search=search) for search in ("greedy", "beam")}
    expected_scores = reference.score(SOURCES, expected["beam"], attention=True)

    def refuse(*args, **kwargs):
        raise AssertionError("a model folder must load without unpickling")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    loaded = Translator.from_pretrained(folder, device="cpu", precision="fp32")
    for search, translations in expected.items():
        assert loaded.translate(SOURCES, search=search) == translations
    for mine, theirs in zip(loaded.score(SOURCES, expected["beam"], attention=True), expected_scores):
        assert (mine is None) == (theirs is None)
        if mine is not None:
            assert mine.log_prob == theirs.log_prob and (mine.attention == theirs.attention).all()
    for name, tensor in reference.model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name


def test_the_model_card_names_languages_size_hardware_and_scores_with_signatures(tokenizers, tmp_path):
    checkpoint = write_run(tmp_path / "run", tokenizers)
    folder = Translator.from_checkpoint(checkpoint, device="cpu").save_pretrained(tmp_path / "folder", summary=SUMMARY)
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlanguage: [xx, yy]\n") and "# toy_model: xx → yy translation" in card
    assert "| 12.35 | 40.50 | 70.25 |" in card
    for key in ("bleu_signature", "chrf_signature", "ter_signature"):
        assert SUMMARY["test"][key] in card
    assert "A Test CPU" in card and "seed 3" in card and "bf16" in card
    config = json.loads((folder / "config.json").read_text())
    assert config["parameters"] == sum(p.numel() for p in Translator.from_pretrained(folder).model.parameters())
    again = Translator.from_pretrained(folder).save_pretrained(tmp_path / "again")  # the card survives a re-save
    assert (again / "README.md").read_text() == card


def test_without_a_summary_the_card_says_so(tokenizers, tmp_path):
    checkpoint = write_run(tmp_path / "run", tokenizers)
    (tmp_path / "run" / "summary.json").unlink()
    folder = tmp_path / "folder"
    export_main(["--checkpoint", str(checkpoint), "--output", str(folder), "--format", "hub"])
    assert "its training and results are not recorded" in (folder / "README.md").read_text()


def test_damaged_or_foreign_folders_fail_with_one_line(tokenizers, tmp_path, capsys):
    checkpoint = write_run(tmp_path / "run", tokenizers)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        export_main(["--checkpoint", str(checkpoint), "--output", str(other), "--format", "hub"])
    assert "holds files of its own" in capsys.readouterr().err and (other / "notes.txt").read_text() == "mine"

    folder = Translator.from_checkpoint(checkpoint, device="cpu").save_pretrained(tmp_path / "folder")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UserError, match="model.safetensors: cannot read the weights"):
        Translator.from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="config.json: not valid JSON"):
        Translator.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(UserError, match="no such model folder"):
        Translator.from_pretrained(tmp_path / "missing")
    assert not pretrained.is_model_folder(folder)


def test_an_ensemble_cannot_be_saved_as_one_model(tokenizers, tmp_path):
    checkpoint = write_run(tmp_path / "run", tokenizers)
    with pytest.raises(UserError, match="an ensemble has no one config"):
        Translator.from_checkpoint([checkpoint, checkpoint], device="cpu").save_pretrained(tmp_path / "folder")


class FakeHub:
    """Records what `push_to_hub` asks of `huggingface_hub.HfApi`."""

    calls: list = []

    def __init__(self, token=None):
        self.calls.append(("init", token))

    def create_repo(self, repo_id, private, exist_ok):
        self.calls.append(("create_repo", repo_id, private, exist_ok))

    def upload_folder(self, folder_path, repo_id, commit_message):
        self.calls.append(("upload_folder", sorted(p.name for p in Path(folder_path).iterdir()), repo_id))


def test_push_and_download_use_the_hub_api(tokenizers, tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    checkpoint = write_run(tmp_path / "run", tokenizers)
    folder = tmp_path / "folder"
    FakeHub.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    export_main(
        ["--checkpoint", str(checkpoint), "--output", str(folder), "--format", "hub", "--push-to-hub", "me/toy"]
    )
    files = ["README.md", "config.json", "model.safetensors", "src.model", "tgt.model"]
    assert FakeHub.calls == [("init", None), ("create_repo", "me/toy", False, True), ("upload_folder", files, "me/toy")]
    with pytest.raises(UserError, match="a Hub id is owner/name"):
        pretrained.push_to_hub(folder, "no-owner")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id: str(folder))
    assert Translator.from_pretrained("me/toy").translate(SOURCES) == Translator.from_checkpoint(checkpoint).translate(
        SOURCES
    )
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(UserError, match=r"pip install 'attention-nmt\[hub\]'"):
        Translator.from_pretrained("me/elsewhere")


@pytest.mark.parametrize("kind", ["folder", "checkpoint"])
def test_a_config_that_names_foreign_code_is_refused_before_anything_runs(tokenizers, tmp_path, kind):
    """A downloaded folder's (or checkpoint's) config must not make the loader import and call
    anything but nmt's own classes."""
    checkpoint = write_run(tmp_path / "run", tokenizers)
    called = tmp_path / "called"
    payload_config = {"_target_": "pathlib.Path.touch", "self": str(called)}
    if kind == "folder":
        folder = Translator.from_checkpoint(checkpoint).save_pretrained(tmp_path / "folder")
        config = json.loads((folder / "config.json").read_text())
        config["run"]["model"]["decoder"]["scorer"] = payload_config
        (folder / "config.json").write_text(json.dumps(config))
        path = folder
    else:
        from nmt.checkpoint import load_checkpoint

        payload = load_checkpoint(checkpoint)
        payload["config"]["model"]["decoder"]["scorer"] = payload_config
        save_checkpoint(tmp_path / "evil.pt", payload)
        path = tmp_path / "evil.pt"
    with pytest.raises(UserError, match="names 'pathlib.Path.touch'; only nmt's own classes are built"):
        Translator.from_checkpoint(path)
    assert not called.exists()


def test_a_summary_of_another_model_or_a_loose_checkpoint_gives_a_card_without_results(tokenizers, tmp_path, capsys):
    checkpoint = write_run(tmp_path / "run", tokenizers)
    (tmp_path / "run" / "summary.json").write_text(json.dumps({**SUMMARY, "config": {"model": {"other": 1}}}))
    export_main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "a"), "--format", "hub"])
    assert "is of another model" in capsys.readouterr().err
    assert "not recorded" in (tmp_path / "a" / "README.md").read_text()
    loose = tmp_path / "loose.pt"
    loose.write_bytes(checkpoint.read_bytes())
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))  # beside it, but not its run's
    export_main(["--checkpoint", str(loose), "--output", str(tmp_path / "b"), "--format", "hub"])
    assert "not recorded" in (tmp_path / "b" / "README.md").read_text()


def test_an_interrupted_save_can_be_saved_again(tokenizers, tmp_path):
    checkpoint = write_run(tmp_path / "run", tokenizers)
    translator = Translator.from_checkpoint(checkpoint)
    folder = translator.save_pretrained(tmp_path / "folder")
    (folder / "config.json").unlink()  # as a save killed before its last file
    translator.save_pretrained(folder)
    assert Translator.from_pretrained(folder).translate(SOURCES) == translator.translate(SOURCES)
