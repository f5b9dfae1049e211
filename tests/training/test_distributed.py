"""Data parallelism: two gloo processes under torchrun train like one process on the same batches."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt.checkpoint import load_checkpoint
from nmt.training.distributed import shard
from nmt.training.run_layout import RunLayout
from nmt.utils.device import resolve_device
from nmt.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = [
    "trainer.max_steps=6",
    "trainer.valid_every=3",
    "data.num_train=400",
    "data.num_valid=10",
    "data.num_test=4",
    "trainer.progress_bar=false",
    "batching.max_tokens=300",
    "device=cpu",
    "optim=sgd",
    "optim.lr=0.5",  # SGD: unlike Adam, sensitive to the gradient's scale
    "trainer.precision=fp32",
]  # fp32 on any CPU: the comparison is to fp32 rounding


def test_shards_are_disjoint_and_cover_the_batch():
    batch = [7, 3, 9, 1, 4]
    shares = [shard(batch, rank, 2) for rank in range(2)]
    assert sorted(shares[0][0] + shares[1][0]) == sorted(batch) and all(w == 1.0 for _, w in shares)
    # a batch smaller than the world: the idle rank recomputes a sentence with weight 0
    assert shard([5], 0, 2) == ([5], 1.0) and shard([5], 1, 2) == ([5], 0.0)


@pytest.mark.integration
def test_two_processes_equal_one_over_the_same_global_batches(tmp_path):
    single = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "hydra.run.dir=single", *OVERRIDES],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(ROOT / "train.py"),
            "hydra.run.dir=ddp",
            *OVERRIDES,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    expected, actual = (load_checkpoint(RunLayout(tmp_path / name).last_checkpoint) for name in ("single", "ddp"))
    assert actual["step"] == expected["step"] == 6
    assert len(actual["training"]["rng"]) == 2  # both ranks' generators, for resuming each
    changed = 0
    for name, tensor in expected["model"].items():
        torch.testing.assert_close(actual["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
        changed += int(
            not torch.equal(tensor, load_checkpoint(RunLayout(tmp_path / "single").step_checkpoint(3))["model"][name])
        )
    assert changed > 0  # training moved the weights, so the comparison means something
    log = (tmp_path / "ddp" / "train.log").read_text()
    assert log.count("valid loss") == 2  # validation ran once per validation step, on rank 0 only


def test_device_names_are_checked_at_the_boundary(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="device='gpu': use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(UserError, match="device=cuda:1: CUDA is not available"):
        resolve_device("cuda:1")
