"""`nmt.training.run_layout.RunLayout.claim`: one training process at a time writes a run directory."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.training.run_layout import RunLayout
from nmt.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def test_a_claimed_run_directory_refuses_a_second_claim_until_the_first_ends(tmp_path):
    layout = RunLayout(tmp_path / "run")
    with layout.claim():
        assert layout.root.is_dir()
        with pytest.raises(UserError, match=rf"{layout.root}: process \d+ on \S+ is training in this run directory"):
            with layout.claim():
                pass
    with layout.claim():  # released: the directory can be resumed
        pass


@pytest.mark.integration
def test_a_killed_process_leaves_its_run_directory_claimable(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from nmt.training.run_layout import RunLayout\n"
            f"with RunLayout({str(tmp_path)!r}).claim():\n    print('held', flush=True); time.sleep(600)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"process {holder.pid} "):
            with RunLayout(tmp_path).claim():
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunLayout(tmp_path).claim():
        pass


@pytest.mark.integration
def test_training_into_a_directory_another_run_holds_fails_in_one_line_and_writes_nothing(tmp_path):
    """Two launches in the same second get the same `<date_time>` directory: the second must not
    overwrite the first one's checkpoints (nor test the other run's best.pt)."""
    layout = RunLayout(tmp_path / "run")
    with layout.claim():
        train = subprocess.run(
            [sys.executable, str(ROOT / "train.py"), "hydra.run.dir=run"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert train.returncode == 2, train.stderr[-2000:]
    assert train.stderr.strip().splitlines()[-1].startswith(f"error: {layout.root}: process ")
    assert "Traceback" not in train.stderr
    assert not layout.checkpoints.exists() and not layout.tokenizer.exists()
