"""The silver alignments (`nmt.analysis.silver_alignments`): eflomal finds the toy task's known
alignment, and the table scores every system against the reference it is given."""

import importlib.util
import sys
from pathlib import Path

import pytest

from nmt.analysis.silver_alignments import SilverAlignments, against, eflomal_alignments, silver_table
from nmt.data.alignments import Alignment, read_pharaoh
from nmt.data.corpus import read_parallel
from nmt.data.sources import ToyTask
from nmt.metrics.alignment import alignment_error_rate
from nmt.utils.errors import UserError
from tests.data.test_sources import write_toy

ROOT = Path(__file__).resolve().parents[2]


def reversal(sentences: list[str]) -> list[set[tuple[int, int]]]:
    return [{(i, len(s.split()) - 1 - i) for i in range(len(s.split()))} for s in sentences]


def test_eflomal_finds_the_reversal_of_the_toy_task(tmp_path):
    pytest.importorskip("eflomal")
    splits = write_toy(tmp_path / "toy")
    train, test = (read_parallel(splits[name].src, splits[name].tgt) for name in ("train", "test"))
    silver = eflomal_alignments(train, test)
    assert len(silver.symmetrized) == len(test[0])
    gold = reversal(test[0])
    assert against(silver.symmetrized, gold).aer < 0.005  # one stray link in 1,500 at most
    for f, b, s in zip(silver.forward, silver.backward, silver.symmetrized):
        assert f & b <= s <= f | b


def test_both_directions_come_back_as_source_target_links(tmp_path):
    """A task whose gold alignment changes when flipped: the target is "start" and then each word
    translated in order, so source word i is target word i + 1 (flipped: (i + 1, i))."""
    pytest.importorskip("eflomal")
    splits = write_toy(tmp_path / "toy")
    dictionary = dict(zip(ToyTask.SOURCE_WORDS, ToyTask.TARGET_WORDS))

    def monotone(name: str) -> tuple[list[str], list[str]]:
        sources = read_parallel(splits[name].src, splits[name].tgt)[0]
        return sources, ["start " + " ".join(dictionary[word] for word in s.split()) for s in sources]

    silver = eflomal_alignments(monotone("train"), test := monotone("test"))
    gold = [{(i, i + 1) for i in range(len(s.split()))} for s in test[0]]
    for links in (silver.forward, silver.backward, silver.symmetrized):
        assert against(links, gold).aer < 0.01


def test_the_table_scores_each_system_against_the_silver_reference():
    silver = SilverAlignments(forward=[{(0, 0), (1, 1)}], backward=[{(0, 0), (1, 2)}], symmetrized=[{(0, 0), (1, 1)}])
    rows = silver_table(silver, {"model": [[(0, 1), (1, 1)]]})
    assert [(r["system"], r["against"]) for r in rows] == [
        ("eflomal forward", "silver"),
        ("eflomal backward", "silver"),
        ("eflomal forward", "eflomal backward"),
        ("model", "silver"),
    ]
    reference = [Alignment(frozenset({(0, 0), (1, 1)}), frozenset({(0, 0), (1, 1)}))]
    assert rows[3]["aer"] == alignment_error_rate([[(0, 1), (1, 1)]], reference).aer == 0.5
    assert rows[0]["aer"] == 0.0 and rows[1]["recall"] == 0.5
    with pytest.raises(UserError, match="model: 2 alignments for 1 test sentences"):
        silver_table(silver, {"model": [[], []]})


def test_a_missing_eflomal_is_named_with_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "eflomal", None)
    with pytest.raises(UserError, match="pip install eflomal"):
        eflomal_alignments((["a"], ["b"]), (["a"], ["b"]))


def test_the_script_writes_a_line_aligned_pharaoh_file_of_the_corpus(tmp_path, capsys):
    """`scripts/silver_alignments.py` on the toy training set with an empty pair: a line per pair,
    the reversal found, the empty pair unaligned; the file is what guided alignment reads."""
    pytest.importorskip("eflomal")
    spec = importlib.util.spec_from_file_location("silver_script", ROOT / "scripts" / "silver_alignments.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    splits = write_toy(tmp_path / "toy")
    sources, targets = read_parallel(splits["train"].src, splits["train"].tgt)
    sources[3] = ""
    (tmp_path / "train.src").write_text("".join(f"{line}\n" for line in sources))
    (tmp_path / "train.tgt").write_text("".join(f"{line}\n" for line in targets))
    output = tmp_path / "train.align"
    script.main(["--src", str(tmp_path / "train.src"), "--tgt", str(tmp_path / "train.tgt"), "--output", str(output)])
    written = read_pharaoh(output)
    assert len(written) == len(sources) and not written[3].possible
    kept = [i for i in range(len(sources)) if i != 3]
    assert against([written[i].possible for i in kept], reversal([sources[i] for i in kept])).aer < 0.005
    assert f"wrote {output}: {len(sources)} pairs" in capsys.readouterr().out
