import pytest
import torch

from nmt import checkpoint as checkpoint_module
from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.errors import UserError


def test_round_trip(tmp_path):
    payload = {"model": {"w": torch.arange(3.0)}, "config": {"seed": 1}, "step": 7}
    save_checkpoint(tmp_path / "c.pt", payload)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["model"]["w"], payload["model"]["w"]) and loaded["step"] == 7


def test_a_corrupt_checkpoint_is_named(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"bad\.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(UserError, match=r"none\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "c.pt", {"model": {}, "config": {}, "step": 1})

    def crash(obj, path):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "c.pt", {"model": {}, "config": {}, "step": 2})
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind
