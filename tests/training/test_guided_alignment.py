"""Guided alignment through `train.py`: the word alignments of the toy task read from a file,
carried through the cache and the batches into the loss. Weight 0 trains bitwise like no
guidance; a weight pulls the attention onto the given alignment; bad settings stop with one line."""

import subprocess

import pytest
import torch

from nmt import Translator
from nmt.data.alignments import parse_pharaoh
from nmt.data.corpus import read_parallel
from nmt.metrics.alignment import alignment_error_rate
from nmt.training.run_layout import RunLayout
from tests.data.test_alignments import write_toy_alignments
from tests.training.test_resume import NUM_TRAIN, final_state, train_command

pytestmark = pytest.mark.integration  # runs train.py in subprocesses

GUIDED = ("trainer.guided_alignment.alignments=train.align",)


def train(cwd, run_dir, *overrides) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(run_dir, *overrides), cwd=cwd, capture_output=True, text=True, timeout=600)


def test_weight_zero_trains_bitwise_like_no_guidance_and_a_weight_pulls_attention_onto_the_links(tmp_path):
    """The links given are not the task's (target word n-1-i translates source word i) but the
    diagonal, which the task would never teach: the guided model's attention follows them anyway."""
    write_toy_alignments(tmp_path, NUM_TRAIN, diagonal)
    runs = {
        "none": (),
        "zero": (*GUIDED, "trainer.guided_alignment.weight=0"),
        "guided": (*GUIDED, "trainer.guided_alignment.weight=5"),
    }
    for name, overrides in runs.items():
        result = train(tmp_path, name, "trainer.max_steps=150", *overrides)
        assert result.returncode == 0, result.stderr[-2000:]
    assert len(list((tmp_path / "data" / "encoded").iterdir())) == 3  # training without and with links, validation
    states = {name: final_state(tmp_path / name) for name in runs}
    for name, tensor in states["none"]["model"].items():
        assert torch.equal(tensor, states["zero"]["model"][name]), name
    assert any(not torch.equal(t, states["guided"]["model"][n]) for n, t in states["none"]["model"].items())

    sources, targets = read_parallel(tmp_path / "data/toy/train.src", tmp_path / "data/toy/train.tgt")
    sources, targets = sources[:100], targets[:100]  # pairs the guided run was shown the links of
    given = [parse_pharaoh(diagonal(source), "") for source in sources]
    aer = {
        name: alignment_error_rate(
            Translator.from_checkpoint(RunLayout(tmp_path / name).last_checkpoint).align(sources, targets), given
        ).aer
        for name in ("none", "guided")
    }
    assert aer["guided"] < 0.25 and aer["none"] > 0.75, aer  # measured: 0.10 and 0.92


def diagonal(source: str) -> str:
    """Source word i with target word i: not the toy task's alignment."""
    return " ".join(f"{i}-{i}" for i in range(len(source.split())))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ("trainer.guided_alignment.weight=1",),
            "trainer.guided_alignment.weight=1 needs trainer.guided_alignment.alignments",
        ),
        (
            ("trainer.guided_alignment.weight=1", "trainer.guided_alignment.alignments=missing.align"),
            "trainer.guided_alignment.alignments=missing.align: file not found",
        ),
        (
            (*GUIDED, "trainer.guided_alignment.weight=1", "~model/attention", "~model/attention/normalizer"),
            "trainer.guided_alignment.weight > 0 needs attention to guide",
        ),
    ],
    ids=["no_file", "missing_file", "no_attention"],
)
def test_bad_guided_alignment_settings_stop_with_one_line(tmp_path, overrides, message):
    write_toy_alignments(tmp_path, NUM_TRAIN)
    result = train(tmp_path, "run", "trainer.max_steps=2", *overrides)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
