"""`scripts/gpu_check.py`: the parts that read the peer's output and write its config, which
only a GPU run would otherwise exercise."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
gpu_check = sys.modules["gpu_check"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up there
_spec.loader.exec_module(gpu_check)

SIZES = gpu_check.PeerSizes(steps=400, first=50, last=350, report_every=50)


def report(step: int, seconds: float, target_tokens: int) -> str:
    """One of OpenNMT-py 3.5.1's training reports, as its log writes it."""
    whole, millis = divmod(round(seconds * 1000), 1000)
    stamp = f"2026-12-04 10:{whole // 60:02d}:{whole % 60:02d},{millis:03d}"
    return (
        f"[{stamp} INFO] Step {step}/400; acc: 20.1; ppl: 300.2; xent: 5.7; lr: 0.00100; "
        f"sents:    3200; bsz: 1234/{target_tokens}/64; 9000/8000 tok/s;     30 sec;\n"
    )


def test_the_peers_throughput_is_its_target_tokens_over_the_timed_steps():
    """Steps 50-350: six reports after step 50, each the mean target tokens of 50 batches."""
    log = "".join(report(step, 2.0 + step * 0.05, 900 + step) for step in range(50, 401, 50))
    found = gpu_check.peer_throughput("noise line\n" + log, SIZES)
    tokens = sum(50 * (900 + step) for step in range(100, 351, 50))
    assert found["seconds"] == pytest.approx(300 * 0.05, abs=1e-3)
    assert found["target_tokens_per_second"] == pytest.approx(tokens / (300 * 0.05), rel=1e-4)
    assert found["sentences_per_second"] == pytest.approx(300 * 64 / (300 * 0.05), rel=1e-4)


def test_a_peer_log_without_the_window_is_a_failure_that_says_what_it_found():
    with pytest.raises(gpu_check.StageFailure, match=r"no steps 50 and 350 \(found \[50, 100\]\)"):
        gpu_check.peer_throughput(report(50, 1.0, 900) + report(100, 3.0, 900), SIZES)


def test_the_peers_config_trains_the_steps_on_one_gpu_without_validating():
    template = "save_model: @RUN@/model/gru\ntrain_steps: 1000000\nvalid_steps: 1000\ndata: @DATA@/train\n"
    text = gpu_check.peer_config(template, Path("/run"), Path("/data"), SIZES, "cuda")
    lines = text.splitlines()
    for line in (
        "save_model: /run/model/gru",
        "train_steps: 400",
        "valid_steps: 4000",
        "data: /data/train",
        "save_checkpoint_steps: 400",
        "report_every: 50",
        "gpu_ranks: [0]",
        "world_size: 1",
    ):
        assert lines.count(line) == 1, line
    assert "gpu_ranks: []" in gpu_check.peer_config(template, Path("/run"), Path("/data"), SIZES, "cpu")
