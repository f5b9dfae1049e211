import gzip
import json
import os
from pathlib import Path

import pytest

from nmt.data.corpus import read_lines, read_parallel
from nmt.data.sources import Multi30k, ParallelFiles, SplitFiles, ToyTask
from nmt.training.experiment import prepare_data, run
from nmt.training.run_layout import RunLayout
from nmt.utils.errors import UserError
from tests.test_configs import compose_train

SHARED_MULTI30K = Path(__file__).resolve().parents[3] / "shared" / "data" / "multi30k"
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


def write_files(folder: Path, name: str, pairs: dict[str, list[str]], gzipped: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for lang, lines in pairs.items():
        data = "".join(f"{line}\n" for line in lines).encode()
        path = folder / f"{name}.{lang}"
        if gzipped:
            path.with_name(f"{path.name}.gz").write_bytes(gzip.compress(data))
        else:
            path.write_bytes(data)


def test_files_are_found_by_prefix_and_language_plain_or_gzipped(tmp_path):
    write_files(tmp_path, "train", {"de": ["a"], "en": ["b"]}, gzipped=True)
    for name in ("dev", "test", "nt15"):
        write_files(tmp_path, name, {"de": ["c", "d"], "en": ["e", "f"]})
    source = ParallelFiles(
        train=f"{tmp_path}/train",
        valid=f"{tmp_path}/dev",
        test=f"{tmp_path}/test",
        src_lang="de",
        tgt_lang="en",
        extra_tests={"newstest2015": f"{tmp_path}/nt15"},
    )
    splits = source.prepare()
    assert list(splits) == ["train", "valid", "test", "newstest2015"]
    assert splits["train"] == SplitFiles(tmp_path / "train.de.gz", tmp_path / "train.en.gz")
    assert splits["newstest2015"] == SplitFiles(tmp_path / "nt15.de", tmp_path / "nt15.en")
    reverse = ParallelFiles(f"{tmp_path}/train", f"{tmp_path}/dev", f"{tmp_path}/test", src_lang="en", tgt_lang="de")
    assert reverse.prepare()["valid"] == SplitFiles(tmp_path / "dev.en", tmp_path / "dev.de")


def test_files_errors_name_the_key_file_and_line(tmp_path):
    write_files(tmp_path, "train", {"de": ["a"], "en": ["b"]})
    write_files(tmp_path, "dev", {"de": ["a", "b"], "en": ["c"]})
    write_files(tmp_path, "test", {"de": ["a"], "en": ["b"]})
    (tmp_path / "test.en").write_bytes(b"ok\n\xff\n")
    prefixes = {"train": f"{tmp_path}/train", "valid": f"{tmp_path}/dev", "test": f"{tmp_path}/test"}
    with pytest.raises(UserError, match=r"^data\.test=.*/tst: neither .*/tst\.de nor .*/tst\.de\.gz exists$"):
        ParallelFiles(**{**prefixes, "test": f"{tmp_path}/tst"}, src_lang="de", tgt_lang="en").prepare()
    with pytest.raises(UserError, match=r"dev\.de has 2 lines, .*dev\.en has 1$"):
        ParallelFiles(**prefixes, src_lang="de", tgt_lang="en").prepare()
    with pytest.raises(UserError, match=r"test\.en:2: invalid UTF-8"):
        ParallelFiles(**{**prefixes, "valid": f"{tmp_path}/train"}, src_lang="de", tgt_lang="en").prepare()
    with pytest.raises(UserError, match="data.extra_tests.valid: name a test set"):
        ParallelFiles(**prefixes, src_lang="de", tgt_lang="en", extra_tests={"valid": f"{tmp_path}/dev"})


def test_own_files_train_end_to_end_and_score_every_test_set(tmp_path):
    toy = ToyTask(str(tmp_path / "toy"), num_train=300, num_valid=10, num_test=6).prepare()
    corpus = tmp_path / "corpus"
    for split, files in toy.items():
        write_files(corpus, split, {"xx": read_lines(files.src), "yy": read_lines(files.tgt)}, gzipped=split == "train")
    write_files(corpus, "other", {"xx": ["ka lo", "mi"], "yy": ["two one", "three"]})
    cfg = compose_train(
        "data=files",
        f"data.train={corpus}/train",
        f"data.valid={corpus}/valid",
        f"data.test={corpus}/test",
        "data.src_lang=xx",
        "data.tgt_lang=yy",
        f"data.extra_tests={{other: {corpus}/other}}",
        f"data_root={tmp_path}/data",
        "tokenizer.vocab_size=60",
        "trainer.max_steps=3",
        "trainer.valid_every=3",
        "trainer.progress_bar=false",
        "decode.beam_size=2",
        "device=cpu",
        "encode_workers=2",
    )
    scores = run(cfg, tmp_path / "run")
    layout = RunLayout(tmp_path / "run")
    summary = json.loads(layout.summary.read_text())
    assert summary["steps"] == 3 and summary["test"]["bleu"] == scores.bleu
    assert set(summary["extra_tests"]) == {"other"} and layout.extra_test_scores("other").is_file()
    assert len(read_lines(layout.extra_test_hypotheses("other"))) == 2
    assert len(list((tmp_path / "data" / "encoded").iterdir())) == 2  # training and validation pairs, encoded once


@pytest.mark.skipif(not LOCAL_MULTI30K.is_dir(), reason="no local Multi30k copy")
def test_multi30k_english_to_french_by_overriding_the_languages(tmp_path):
    cfg = compose_train(
        "data=multi30k",
        "data.src_lang=en",
        "data.tgt_lang=fr",
        f"data.local_dir={LOCAL_MULTI30K}",
        f"data_root={tmp_path}",
    )
    splits = prepare_data(cfg)
    assert splits["train"] == SplitFiles(tmp_path / "multi30k" / "train.en", tmp_path / "multi30k" / "train.fr")
    for split, stem in (("train", "train"), ("valid", "val"), ("test", "test_2016_flickr")):
        src, tgt = read_parallel(splits[split].src, splits[split].tgt)
        assert len(src) == {"train": 29000, "valid": 1014, "test": 1000}[split]
        assert (src[0], tgt[0]) == (
            read_lines(LOCAL_MULTI30K / f"{stem}.en.gz")[0],
            read_lines(LOCAL_MULTI30K / f"{stem}.fr.gz")[0],
        )
