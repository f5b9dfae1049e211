"""Sweeps: every job runs, a failed one leaves its reason and does not cost the others' results."""

import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import InstantiationException

from nmt.analysis.results import job_status
from nmt.analysis.sweep import one_line, sweep_jobs
from nmt.cli.attention import main as attention_main
from nmt.cli.collect import main as collect_main
from nmt.training.run_layout import RunLayout
from nmt.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
TINY = ["trainer.max_steps=20", "trainer.valid_every=10", "data.num_train=300", "trainer.progress_bar=false"]


def sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", *overrides, *TINY, "hydra.sweep.dir=sweep"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_one_line_names_the_users_mistake_or_the_error_type():
    assert one_line(UserError("data.train: file not found")) == "data.train: file not found"
    wrapped = InstantiationException("Error in call to target 'x.Y'")
    wrapped.__cause__ = ValueError("beam_size=0: must be at least 1")
    assert one_line(wrapped) == "beam_size=0: must be at least 1"
    assert one_line(RuntimeError("CUDA out of memory.\nTried to allocate")) == "RuntimeError: CUDA out of memory."
    assert one_line(KeyError()) == "KeyError"


def test_job_status_reads_the_files_a_job_leaves(tmp_path):
    for job in ("0", "1", "2", "10", "lr=0.1"):
        (tmp_path / job / ".hydra").mkdir(parents=True)
    (tmp_path / ".submitit" / "1234").mkdir(parents=True)  # a launcher's own folder: no job
    RunLayout(tmp_path / "0").summary.write_text("{}")
    RunLayout(tmp_path / "1").failure.write_text("data.train: file not found\n")
    jobs = [tmp_path / name for name in ("0", "1", "2", "10", "lr=0.1")]  # numbers in numeric order
    assert sweep_jobs(tmp_path) == jobs
    assert [job_status(job) for job in jobs] == [
        "finished",
        "failed: data.train: file not found",
        "unfinished",
        "unfinished",
        "unfinished",
    ]


@pytest.mark.parametrize(
    "launcher",
    [
        [],  # Hydra's basic launcher: the jobs one after another in this process
        pytest.param(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], id="joblib"),  # worker processes
        pytest.param(["hydra/launcher=submitit_local"], id="submitit"),  # SLURM's launcher, run locally
    ],
)
@pytest.mark.integration
def test_a_failed_job_leaves_its_reason_and_the_others_finish(tmp_path, launcher):
    if launcher:
        plugin = launcher[0].removeprefix("hydra/launcher=").removesuffix("_local")
        pytest.importorskip(f"hydra_plugins.hydra_{plugin}_launcher")
    result = sweep(tmp_path, *launcher, "decode_precision=fp8,fp32")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-3:] == [
        "error: 1 of 2 jobs did not finish (the others' results are in place):",
        "  sweep/0: failed: decode_precision='fp8': use one of auto, fp32, bf16, fp16",
        "    again: python train.py decode_precision=fp8 trainer.max_steps=20 trainer.valid_every=10 "
        # the overrides as Hydra wrote them
        "data.num_train=300 trainer.progress_bar=False hydra.run.dir=sweep/0 trainer.resume=auto",
    ]
    failed, finished = RunLayout(tmp_path / "sweep/0"), RunLayout(tmp_path / "sweep/1")
    assert not failed.summary.exists() and "the job failed: decode_precision='fp8'" in failed.log.read_text()
    assert finished.summary.is_file() and finished.test_hypotheses.is_file() and not finished.failure.exists()


@pytest.mark.integration
def test_a_two_by_two_sweep_on_the_toy_task_gives_the_table_and_the_figures(tmp_path, capsys):
    result = sweep(tmp_path, "model/attention=additive,dot", "seed=1,2")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = sweep_jobs(tmp_path / "sweep")
    assert [job_status(job) for job in jobs] == ["finished"] * 4

    test_files = [str(tmp_path / "data/toy/test.src"), str(tmp_path / "data/toy/test.tgt")]
    collect_main(
        [
            str(tmp_path / "sweep"),
            "--bootstrap",
            "200",
            "--output",
            str(tmp_path / "results"),
            "--by-length",
            str(tmp_path / "by_length"),
            "--min-bucket",
            "20",
        ]
    )  # the test files of the summaries
    assert f"against {test_files[1]}" in capsys.readouterr().out
    with open(tmp_path / "results.csv") as table:
        rows = {row["system"].removesuffix(" (baseline)"): row for row in csv.DictReader(table)}
    summaries = [json.loads(RunLayout(job).summary.read_text()) for job in jobs]
    for scorer in ("additive", "dot"):
        bleu = [
            s["test"]["bleu"]
            for s in summaries
            if s["config"]["model"]["decoder"]["scorer"]["_target_"].endswith(
                "AdditiveScorer" if scorer == "additive" else "DotScorer"
            )
        ]
        row = rows[f"model/attention={scorer}"]
        assert row["runs"] == "2" and row["seeds"] == "1 2"
        assert float(row["test BLEU"]) == pytest.approx(statistics.mean(bleu))
        assert float(row["test BLEU std"]) == pytest.approx(statistics.stdev(bleu))
    assert sorted(row["p BLEU"] == "" for row in rows.values()) == [False, True]  # the baseline has none
    for suffix in (".md", ".png", ".svg"):
        assert (tmp_path / f"by_length{suffix}").stat().st_size > 0
    assert "model/attention=dot" in (tmp_path / "by_length.md").read_text()

    attention_main(
        [
            "--system",
            f"additive={RunLayout(jobs[0]).best_checkpoint}",
            "--system",
            f"dot={RunLayout(jobs[2]).best_checkpoint}",
            "--src",
            test_files[0],
            "--ref",
            test_files[1],
            "--lines",
            "1",
            "2",
            "--output",
            str(tmp_path / "attention"),
        ]
    )
    assert (tmp_path / "attention.png").stat().st_size > 0 and (tmp_path / "attention.svg").stat().st_size > 0
