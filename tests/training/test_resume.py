"""A run killed with SIGKILL and resumed ends bitwise equal to an uninterrupted one.

Each case trains the toy task three times through `train.py` in one working folder (sharing the
data and tokenizer caches): uninterrupted; killed right after its first checkpoint appears (so
between two checkpoints, mid-epoch); and that run resumed with `trainer.resume=auto`.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nmt.checkpoint import load_checkpoint
from nmt.training.run_layout import RunLayout
from tests.data.test_alignments import write_toy_alignments

pytestmark = pytest.mark.integration  # runs train.py and the console tools in subprocesses

ROOT = Path(__file__).resolve().parents[2]
MAX_STEPS = 60
NUM_TRAIN = 600


def train_command(run_dir: str, *overrides: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        f"hydra.run.dir={run_dir}",
        f"trainer.max_steps={MAX_STEPS}",
        "trainer.valid_every=25",
        "trainer.save_every=4",
        "trainer.log_every=5",
        "trainer.resume=auto",
        f"data.num_train={NUM_TRAIN}",
        "data.num_valid=20",
        "data.num_test=5",
        "model.encoder.embedding_dropout=0.3",
        "model.decoder.output_dropout=0.3",
        "trainer.progress_bar=false",
        *overrides,
    ]


def final_state(run_dir: Path) -> dict:
    return load_checkpoint(RunLayout(run_dir).last_checkpoint)


def kill_after_first_checkpoint(command: list[str], cwd: Path, run_dir: Path) -> None:
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = RunLayout(run_dir).last_checkpoint
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("trainer.accumulate=2", "scheduler=inverse_sqrt", "scheduler.warmup_steps=10"),
        ("model.cell=lstm", "model/decoder=luong", "model/attention/normalizer=entmax15"),
        ("trainer.guided_alignment.weight=1", "trainer.guided_alignment.alignments=train.align"),
    ],
    ids=["plain", "accumulate_scheduler", "lstm_luong_entmax15", "guided_alignment"],
)
def test_a_killed_run_resumes_to_the_same_parameters(tmp_path, overrides):
    write_toy_alignments(tmp_path, NUM_TRAIN)  # the toy task's word alignments, for the guided case
    whole = subprocess.run(
        train_command("whole", *overrides), cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert whole.returncode == 0, whole.stderr[-2000:]

    kill_after_first_checkpoint(train_command("killed", *overrides), tmp_path, tmp_path / "killed")
    interrupted_at = final_state(tmp_path / "killed")["training"]["progress"]
    assert interrupted_at["step"] < MAX_STEPS  # the kill really came mid-run
    resumed = subprocess.run(
        train_command("killed", *overrides), cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = (tmp_path / "killed" / "train.log").read_text()
    assert f"resumed from checkpoints/last.pt at step {interrupted_at['step']}" in log.replace(
        str(tmp_path / "killed") + "/", ""
    )

    expected, actual = final_state(tmp_path / "whole"), final_state(tmp_path / "killed")
    assert actual["step"] == expected["step"] == MAX_STEPS
    for name, tensor in expected["model"].items():
        assert torch.equal(tensor, actual["model"][name]), name
    expected_moments = expected["training"]["optimizer"]["state"]
    for key, state in actual["training"]["optimizer"]["state"].items():
        for moment in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[moment], expected_moments[key][moment]), (key, moment)
    assert actual["training"]["scheduler"] == expected["training"]["scheduler"]
