"""The whole pipeline through its command-line entry points, on the toy task."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from nmt.checkpoint import load_checkpoint
from nmt.utils.precision import choose_precision

pytestmark = pytest.mark.integration  # runs train.py and the console tools in subprocesses

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=600)


def test_train_translate_score(tmp_path):
    train = run(
        str(ROOT / "train.py"),
        "trainer.max_steps=150",
        "trainer.valid_every=75",
        "data.num_train=2000",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    run_dir = tmp_path / "run"
    for path in ("checkpoints/best.pt", "checkpoints/last.pt", "tokenizer/src.model", "test.hyp", "scores.json"):
        assert (run_dir / path).is_file(), path
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["bleu"] > 10 and "nrefs:1" in scores["bleu_signature"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (
        summary["steps"] == 150
        and summary["test"]["bleu"] == scores["bleu"]
        and summary["config"]["trainer"]["max_steps"] == 150
    )
    assert summary["best_step"] in (75, 150) and summary["best_valid"]["bleu"] > 0 and summary["parameters"] > 0
    assert 0 < summary["first_update_seconds"] < summary["training_seconds"] < summary["wall_seconds"]
    chosen = choose_precision("auto", "cpu")  # the configs' default, on this machine
    assert summary["precision"] == {
        "training": chosen.precision,
        "training_reason": chosen.reason,
        "decoding": chosen.precision,
        "decoding_reason": chosen.reason,
    }
    assert load_checkpoint(run_dir / "checkpoints/best.pt")["precision"] == chosen.precision
    assert f"training precision: {chosen}" in train.stdout + train.stderr

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {
        "train/loss",
        "train/ppl",
        "train/lr",
        "train/grad_norm",
        "train/tokens_per_s",
        "train/sentences_per_s",
        "train/peak_memory_mb",
        "train/skipped_steps",
        "valid/loss",
        "valid/ppl",
        "valid/bleu",
        "valid/chrf",
        "test/bleu",
        "hparams/test_bleu",
    } <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("valid/bleu")] == [75, 150]
    assert [e.step for e in events.Images("valid/attention/0")] == [75, 150] and "valid/attention/3" in tags["images"]
    samples = events.Tensors("valid/samples/text_summary")[-1].tensor_proto.string_val[0].decode()
    first_source = (tmp_path / "data/toy/valid.src").read_text().splitlines()[0]
    assert samples.startswith("| source | hypothesis | reference |") and first_source in samples
    hparams = events.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in hparams
    start = HParamsPluginData.FromString(hparams["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["precision.training"].string_value == chosen.precision
    assert start.hparams["precision.decoding_reason"].string_value == chosen.reason

    source = tmp_path / "data" / "toy" / "test.src"
    lines = source.read_text().splitlines()[:5]
    translate = run(
        "-m",
        "nmt.cli.translate",
        "--checkpoint",
        str(run_dir / "checkpoints/best.pt"),
        "--beam-size",
        "3",
        cwd=tmp_path,
        stdin="\n".join([lines[0], "", *lines[1:]]) + "\n",
    )
    assert translate.returncode == 0, translate.stderr
    outputs = translate.stdout.splitlines()
    assert len(outputs) == 6 and outputs[1] == ""  # one line out per line in; blank stays blank

    (tmp_path / "hyp.txt").write_text("\n".join(o for o in outputs if o) + "\n")
    references = (tmp_path / "data/toy/test.tgt").read_text().splitlines()
    (tmp_path / "ref.txt").write_text("\n".join(references[:5]) + "\n")
    evaluate = run("-m", "nmt.cli.evaluate", "--hyp", "hyp.txt", "--ref", "ref.txt", cwd=tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr
    assert evaluate.stdout.startswith("BLEU ") and "nrefs:1|case:mixed" in evaluate.stdout and "chrF" in evaluate.stdout

    (tmp_path / "short.txt").write_text(references[0] + "\n")
    evaluate = run("-m", "nmt.cli.evaluate", "--hyp", "hyp.txt", "--ref", "short.txt", cwd=tmp_path)
    assert evaluate.returncode == 2 and "reference 1 has 1 lines, hypotheses have 5" in evaluate.stderr


def test_user_errors_are_one_line(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    translate = run("-m", "nmt.cli.translate", "--checkpoint", "bad.pt", cwd=tmp_path, stdin="x\n")
    assert translate.returncode == 2
    assert translate.stderr.strip().count("\n") == 0 and "bad.pt: not a readable checkpoint" in translate.stderr

    train = run(str(ROOT / "train.py"), "data=multi30k", "data.local_dir=missing", cwd=tmp_path)
    assert train.returncode == 2
    assert (
        train.stderr.strip().splitlines()[-1] == "error: missing/train.de.gz: file not found (data.local_dir=missing)"
    )


@pytest.mark.parametrize(
    "setting, message",
    [
        ("decode.beam_size=0", "error: decode: decode.beam_size=0: must be at least 1"),
        ("decode_precision=fp8", "error: decode_precision='fp8': use one of auto, fp32, bf16, fp16"),
        ("decode_compile=maybe", "error: decode_compile='maybe': use true or false"),
    ],
)
def test_a_bad_search_setting_stops_the_run_before_training(tmp_path, setting, message):
    train = run(str(ROOT / "train.py"), setting, "data.num_train=300", "hydra.run.dir=run", cwd=tmp_path)
    assert train.returncode == 2
    assert train.stderr.strip().splitlines()[-1] == message
    assert not (tmp_path / "run" / "checkpoints").exists()
