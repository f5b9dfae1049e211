import gzip
import os
from pathlib import Path

import pytest

from nmt.data.corpus import read_lines
from nmt.data.sources import Multi30k, ToyTask
from nmt.errors import UserError

SHARED_MULTI30K = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"
LOCAL_MULTI30K = Path(os.environ.get("NMT_MULTI30K", SHARED_MULTI30K))


def write_toy(root: Path, num_train: int = 500):
    return ToyTask(str(root), num_train=num_train, num_valid=20, num_test=20).prepare()


def test_toy_task_is_deterministic_and_follows_its_rule(tmp_path):
    first, second = write_toy(tmp_path / "a"), write_toy(tmp_path / "b")
    assert read_lines(first["train"].src) == read_lines(second["train"].src)
    task = ToyTask(str(tmp_path))
    for src, tgt in zip(read_lines(first["test"].src), read_lines(first["test"].tgt)):
        assert tgt == task.translate(src)
        assert len(tgt.split()) == len(src.split())
    assert task.translate("ka lo") == "two one"


def write_fake_multi30k(folder: Path, lengths: dict[str, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem in ("train", "val", "test_2016_flickr"):
        for lang in ("de", "en"):
            count = lengths.get(f"{stem}.{lang}", 3)
            (folder / f"{stem}.{lang}.gz").write_bytes(gzip.compress(f"{stem} {lang}\n".encode() * count))


def test_multi30k_from_a_local_folder(tmp_path):
    write_fake_multi30k(tmp_path / "orig", {})
    splits = Multi30k(str(tmp_path / "data"), local_dir=str(tmp_path / "orig")).prepare()
    assert read_lines(splits["valid"].tgt) == ["val en"] * 3
    assert splits["test"].src == tmp_path / "data" / "test_2016_flickr.de"


def test_multi30k_names_the_file_of_unequal_length(tmp_path):
    write_fake_multi30k(tmp_path / "orig", {"val.en": 2})
    with pytest.raises(UserError, match=r"val\.de has 3 lines, .*val\.en has 2"):
        Multi30k(str(tmp_path / "data"), local_dir=str(tmp_path / "orig")).prepare()


def test_multi30k_names_a_missing_local_file(tmp_path):
    (tmp_path / "orig").mkdir()
    with pytest.raises(UserError, match=r"train\.de\.gz: file not found"):
        Multi30k(str(tmp_path / "data"), local_dir=str(tmp_path / "orig")).prepare()


def test_multi30k_rejects_an_unknown_language(tmp_path):
    with pytest.raises(UserError, match="data.tgt_lang='cs'"):
        Multi30k(str(tmp_path), tgt_lang="cs")


@pytest.mark.skipif(not LOCAL_MULTI30K.is_dir(), reason="no local Multi30k copy")
def test_real_multi30k_from_the_local_copy(tmp_path):
    splits = Multi30k(str(tmp_path), "de", "en", local_dir=str(LOCAL_MULTI30K)).prepare()
    assert [len(read_lines(splits[s].src)) for s in ("train", "valid", "test")] == [29000, 1014, 1000]
