"""The prepared device check: everything the GPU issue measures, in one command of a few minutes.

    python scripts/gpu_check.py --device cuda --out $OUT      # on the GPU machine (scripts/gpu_check.sh)
    python scripts/gpu_check.py --device cpu --out /tmp/check  # here, tiny sizes: the same stages, tested

Stages run one after another, each in its own processes and within its own time limit, and one
that fails or runs out of time is recorded and the next goes on: a GPU minute is too dear to lose
every figure to one error. After each stage every figure so far is written to
`<out>/gpu_check.json`, and every stage's output is appended to `<out>/gpu_check.log`, so a check
cut short still returns what it measured. The order is the priority: timings first (the
compiled kernels they build are cached on disk for the later stages), then the tests.

Stages:
- environment: the GPU, driver, torch, CUDA and cuDNN versions, the CPU, the commit.
- train_reference: `nmt-benchmark` on the reference setting (`bahdanau`'s model, 64 sentences
  a batch), training only: bf16 compiled (the config), bf16 eager, fp32 compiled, and the
  matrix-product ceilings.
- bleu: `train.py +experiment=bahdanau_best` for a few minutes (on a GPU at most the 2,500 updates
  the recipe is tuned for), then its test score (summary.json).
- decode_reference: the benchmark's greedy and beam-5 decoding of the test set with that model,
  compiled (the config) and eager.
- peer: OpenNMT-py on the same model and batch (`.device/opennmt`, see `scripts/gpu_check.sh`):
  its training tokens/s over steps 50-350, peak memory, greedy and beam-5 decoding time and BLEU.
- tests: `pytest -m cuda` (on the CPU: every test skipped, exit status 0).
- gpu_sized: training throughput of `+experiment=rnnsearch50` and of the reference model at a large
  token budget.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PeerSizes:
    """OpenNMT-py's run: `steps` steps, a report every `report_every`, steps `first`-`last` timed."""

    steps: int
    first: int
    last: int
    report_every: int


@dataclass(frozen=True)
class Profile:
    """The sizes of a check: the real ones on a GPU, tiny ones on the CPU (to test the stages).

    Attributes:
        reference: Hydra overrides of the reference setting.
        recipe: Hydra overrides of the quality recipe run (`bleu`).
        gpu_sized: named Hydra overrides of the GPU-sized settings.
        warmup, window, repeats: the benchmark's training runs.
        square: the square matrix product of the ceiling.
        bleu_minutes: the recipe's training budget.
        peer: OpenNMT-py's run.
        limits: seconds each stage may take at most.
    """

    reference: list[str]
    recipe: list[str]
    gpu_sized: dict[str, list[str]]
    warmup: int
    window: int
    repeats: int
    square: int
    bleu_minutes: float
    peer: PeerSizes
    limits: dict[str, int] = field(default_factory=dict)


PROFILES = {
    "cuda": Profile(
        reference=["+experiment=bahdanau", "batching.max_sentences=64", "batching.max_tokens=100000", "device=cuda"],
        recipe=["+experiment=bahdanau_best", "device=cuda", "trainer.max_steps=2500"],  # the updates it is tuned for
        gpu_sized={
            "rnnsearch50": ["+experiment=rnnsearch50", "device=cuda"],
            "reference_12k_tokens": ["+experiment=bahdanau", "batching.max_tokens=12000", "device=cuda"],
        },
        warmup=30,
        window=100,
        repeats=2,
        square=8192,
        bleu_minutes=3.0,
        peer=PeerSizes(400, 50, 350, 50),
        limits={
            "environment": 60,
            "train_reference": 240,
            "bleu": 300,
            "decode_reference": 150,
            "peer": 180,
            "tests": 240,
            "gpu_sized": 150,
        },
    ),
    "cpu": Profile(
        reference=[
            "data=toy",
            "data.num_train=400",
            "model.encoder.embedding_size=12",
            "model.encoder.hidden_size=10",
            "model.decoder.embedding_size=14",
            "model.decoder.hidden_size=18",
            "model.decoder.scorer.hidden_size=9",
            "batching.max_tokens=150",
            "device=cpu",
        ],
        recipe=[
            "data=toy",
            "data.num_train=400",
            "model.encoder.hidden_size=10",
            "model.decoder.hidden_size=18",
            "trainer.valid_every=10",
            "trainer.max_steps=null",
            "device=cpu",
        ],
        gpu_sized={"toy_large_batches": ["data=toy", "data.num_train=400", "batching.max_tokens=600", "device=cpu"]},
        warmup=1,
        window=3,
        repeats=1,
        square=64,
        bleu_minutes=0.1,
        peer=PeerSizes(30, 10, 30, 10),
        limits={
            "environment": 60,
            "train_reference": 300,
            "bleu": 300,
            "decode_reference": 300,
            "peer": 480,
            "tests": 300,
            "gpu_sized": 300,
        },
    ),
}


class Check:
    """Runs the stages, keeps the figures and the log."""

    def __init__(self, device: str, out: Path, work: Path, peer: Path, deadline: float, commit: str | None) -> None:
        self.device, self.profile, self.out, self.work, self.peer = device, PROFILES[device], out, work, peer
        self.deadline, self.commit = deadline, commit
        self.report: dict[str, Any] = {"device": device, "stages": {}}
        self.log = out / "gpu_check.log"
        out.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)

    def run(self, stages: list[str]) -> bool:
        """Runs `stages` in order; True if every one passed."""
        for name in stages:
            limit = min(self.profile.limits[name], self.deadline - time.monotonic())
            start = time.monotonic()
            if limit < 10:
                entry = {"status": "skipped", "reason": "out of time"}
            else:
                self._write_log(f"\n=== {name} (at most {limit:.0f} s) ===\n")
                try:
                    entry = {"status": "passed", **STAGES[name](self, start + limit)}
                except StageTimeout as error:
                    entry = {"status": "timeout", "reason": str(error)}
                except StageFailure as error:
                    entry = {"status": "failed", "reason": str(error)}
                except Exception as error:  # noqa: BLE001 - this stage's own bug: record it, go on
                    entry = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
            entry["seconds"] = round(time.monotonic() - start, 1)
            self.report["stages"][name] = entry
            print(
                f"gpu_check: {name}: {entry['status']} in {entry['seconds']} s"
                + (f" ({entry['reason'].splitlines()[0]})" if "reason" in entry else ""),
                flush=True,
            )
            (self.out / "gpu_check.json").write_text(json.dumps(self.report, indent=2) + "\n")
        return all(entry["status"] == "passed" for entry in self.report["stages"].values())

    def command(
        self,
        arguments: list[str],
        until: float,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        accept: Callable[[int], bool] = lambda code: code == 0,
    ) -> str:
        """Runs a command until the monotonic time `until`; appends its output to the log and
        returns it. Raises StageTimeout or StageFailure (with the output's end)."""
        self._write_log(f"$ {' '.join(arguments)}\n")
        started = time.monotonic()
        try:
            done = subprocess.run(
                arguments,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                capture_output=True,
                text=True,
                timeout=max(1.0, until - started),
            )
        except subprocess.TimeoutExpired as expired:
            output = _text(expired.stdout) + _text(expired.stderr)
            self._write_log(output)
            raise StageTimeout(
                f"{arguments[1] if len(arguments) > 1 else arguments[0]} ran out of time after "
                f"{time.monotonic() - started:.0f} s; output ended: {output[-1500:]}"
            ) from None
        output = done.stdout + done.stderr
        self._write_log(output + f"[exit status {done.returncode}, {time.monotonic() - started:.1f} s]\n")
        if not accept(done.returncode):
            raise StageFailure(f"exit status {done.returncode}: {output[-3000:]}")
        return output

    def benchmark(self, name: str, overrides: list[str], options: list[str], until: float) -> dict[str, Any]:
        """`nmt-benchmark` with `options` and `overrides`; its report."""
        output = self.work / f"benchmark_{name}.json"
        self.command([sys.executable, "-m", "nmt.cli.benchmark", *options, "--output", str(output), *overrides], until)
        return json.loads(output.read_text())

    def _write_log(self, text: str) -> None:
        with self.log.open("a", encoding="utf-8") as log:
            log.write(text)


class StageFailure(Exception):
    """A stage's command failed."""


class StageTimeout(Exception):
    """A stage ran out of its time."""


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


# --- the stages -----------------------------------------------------------------------------------


def environment(check: Check, until: float) -> dict[str, Any]:
    script = (
        "import json, torch; c = torch.cuda.is_available(); print(json.dumps({'torch': torch.__version__, "
        "'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(), 'gpu': "
        "torch.cuda.get_device_name() if c else None, 'capability': torch.cuda.get_device_capability() if c "
        "else None, 'gpu_memory_gib': torch.cuda.get_device_properties(0).total_memory / 2**30 if c else None, "
        "'bf16': torch.cuda.is_bf16_supported() if c else None, 'cpu_capability': "
        "torch.backends.cpu.get_cpu_capability(), 'threads': torch.get_num_threads()}))"
    )
    found = json.loads(check.command([sys.executable, "-c", script], until).strip().splitlines()[-1])
    if check.device == "cuda":
        found["driver"] = check.command(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], until
        ).strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        **found,
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": check.commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def train_reference(check: Check, until: float) -> dict[str, Any]:
    """The reference setting's training in bf16, compiled (the config) and eager."""
    profile = check.profile
    options = [
        "--no-decoding",
        "--precisions",
        "bf16",
        "--warmup",
        str(profile.warmup),
        "--window",
        str(profile.window),
        "--square",
        str(profile.square),
    ]
    compiled = check.benchmark("reference", profile.reference, [*options, "--repeats", str(profile.repeats)], until)
    eager = check.benchmark(
        "reference_eager", [*profile.reference, "trainer.compile=false"], [*options, "--repeats", "1"], until
    )
    fp32 = check.benchmark(
        "reference_fp32", profile.reference, [*options, "--repeats", "1", "--precisions", "fp32"], until
    )
    return {
        "compiled": compiled,
        "eager": eager,
        "fp32": fp32,
        "target_tokens_per_second": {
            "bf16 compiled": compiled["training"]["bf16"]["target_tokens_per_second"],
            "bf16 eager": eager["training"]["bf16"]["target_tokens_per_second"],
            "fp32 compiled": fp32["training"]["fp32"]["target_tokens_per_second"],
        },
    }


def bleu(check: Check, until: float) -> dict[str, Any]:
    """The quality recipe on a training budget of `bleu_minutes`, and its test score."""
    run_dir = check.work / "bleu"
    started = time.monotonic()
    check.command(
        [
            sys.executable,
            "train.py",
            *check.profile.recipe,
            f"trainer.max_minutes={check.profile.bleu_minutes}",
            "trainer.progress_bar=false",
            f"hydra.run.dir={run_dir}",
        ],
        until,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    keys = (
        "steps",
        "epochs",
        "wall_seconds",
        "training_seconds",
        "validation_seconds",
        "target_tokens_per_second",
        "best_step",
        "best_averaged_steps",
        "best_valid",
        "test",
        "parameters",
    )
    return {
        "process_seconds": round(time.monotonic() - started, 1),
        "checkpoint": str(run_dir / "checkpoints/best.pt"),
        **{key: summary.get(key) for key in keys},
    }


def decode_reference(check: Check, until: float) -> dict[str, Any]:
    """Greedy and beam-5 decoding of the test set with the recipe's model."""
    checkpoint = check.work / "bleu" / "checkpoints" / "best.pt"
    if not checkpoint.is_file():
        raise StageFailure(f"{checkpoint}: no model (the bleu stage writes it)")
    options = ["--no-training", "--checkpoint", str(checkpoint)]
    compiled = check.benchmark("decode", check.profile.recipe, [*options, "--repeats", "3"], until)
    eager = check.benchmark(
        "decode_eager", [*check.profile.recipe, "decode_compile=false"], [*options, "--repeats", "2"], until
    )
    return {
        "compiled": compiled,
        "eager": eager,
        "seconds": {s["name"]: s["median_seconds"] for s in compiled["decoding"]["searches"]},
        "eager_seconds": {s["name"]: s["median_seconds"] for s in eager["decoding"]["searches"]},
        "bleu": {s["name"]: s["bleu"] for s in compiled["decoding"]["searches"]},
    }


def peer(check: Check, until: float) -> dict[str, Any]:
    """OpenNMT-py 3.5.1 on the reference setting (`check.peer`, filled by `scripts/gpu_check.sh
    --prepare`): its training steps timed as `../shared/peers/opennmt/run.sh` times them, then
    its greedy and beam-5 decoding of the test set with the last checkpoint."""
    sizes, folder = check.profile.peer, check.peer
    if not (folder / "wheels").is_dir():
        raise StageFailure(f"{folder}/wheels: absent (bash scripts/gpu_check.sh --prepare brings the peer)")
    site, run, data = check.work / "onmt-site", check.work / "onmt", folder / "data"
    run.mkdir(exist_ok=True)
    if not site.is_dir():
        check.command(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--target",
                str(site),
                *map(str, sorted((folder / "wheels").glob("*.whl"))),
            ],
            until,
        )
        write_import_stubs(site)
    env = {"PYTHONPATH": str(site), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # its checkpoints pickle objects
    config = run / "config.yaml"
    config.write_text(peer_config((folder / "gru_de_en.yaml.in").read_text(), run, data, sizes, check.device))
    train = check.command(
        [
            sys.executable,
            "-c",
            f"{PEAK_AT_EXIT}; import sys; sys.argv = ['onmt_train', '-config', "
            f"{str(config)!r}]; from onmt.bin.train import main; main()",
        ],
        until,
        env=env,
        cwd=run,
    )
    result = {
        "training": peer_throughput(train, sizes),
        "peak_memory_mb": float(re.findall(r"peak memory MiB (\S+)", train)[-1]),
    }
    checkpoint = run / "model" / f"gru_step_{sizes.steps}.pt"
    gpu = ["-gpu", "0"] if check.device == "cuda" else []
    for beam in (1, 5):
        hypotheses = run / f"hyp{beam}.sp"
        started = time.monotonic()
        output = check.command(
            [
                sys.executable,
                "-m",
                "onmt.bin.translate",
                "-model",
                str(checkpoint),
                "-src",
                str(data / "test_2016_flickr.sp.de"),
                "-output",
                str(hypotheses),
                "-beam_size",
                str(beam),
                "-batch_size",
                "64",
                "-batch_type",
                "sents",
                "-max_length",
                "100",
                "-report_time",
                *gpu,
            ],
            until,
            env=env,
            cwd=run,
        )
        wall = time.monotonic() - started
        found = re.findall(r"Total translation time \(s\): ([\d.]+)", output)
        result[f"beam {beam}"] = {
            "process_seconds": round(wall, 2),
            "translation_seconds": float(found[-1]) if found else None,
            **score_pieces(hypotheses, data),
        }
    return result


PEAK_AT_EXIT = (
    "import atexit, resource, torch; atexit.register(lambda: print('peak memory MiB', "
    "torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else "
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10))"
)
"""Prints, as the peer's process ends, its peak memory as ours is measured (`nmt.training.train_log.peak_memory_mb`)."""

IMPORT_STUBS = ("spacy", "fasttext")
"""OpenNMT-py 3.5.1 imports every transform at start-up, these two packages among them (spaCy
alone is 35 MB and ~25 dependencies); the reference setting uses no transform, so empty modules
stand in for them, and any real use fails on its first attribute."""


def write_import_stubs(site: Path) -> None:
    for name in IMPORT_STUBS:
        (site / name).mkdir(exist_ok=True)
        (site / name / "__init__.py").write_text(
            f"def __getattr__(name):\n    raise AttributeError(f'{name} is a stand-in here (scripts/gpu_check.py): "
            f"no {{name}}')\n"
        )


def peer_config(template: str, run: Path, data: Path, sizes: PeerSizes, device: str) -> str:
    """The peers' config (`../shared/peers/opennmt/gru_de_en.yaml.in`) for one GPU (or the CPU):
    it trains `sizes.steps` steps and saves the last, without validating."""
    text = template.replace("@RUN@", str(run)).replace("@DATA@", str(data))
    settings = {
        "train_steps": sizes.steps,
        "save_checkpoint_steps": sizes.steps,
        "valid_steps": 10 * sizes.steps,
        "report_every": sizes.report_every,
        "gpu_ranks": "[0]" if device == "cuda" else "[]",
        "world_size": 1,
    }
    for key, value in settings.items():
        text, found = re.subn(rf"^{key}:.*$", f"{key}: {value}", text, flags=re.MULTILINE)
        if not found:
            text += f"\n{key}: {value}"
    return text + "\n"


def peer_throughput(log: str, sizes: PeerSizes) -> dict[str, float]:
    """Target tokens/s over steps `first`-`last` of OpenNMT-py's log (as
    `../shared/peers/opennmt/run.sh` reads it: each report gives the mean target tokens a batch)."""
    rows = {}
    for match in re.finditer(r"\[(\S+) (\S+),(\d+) INFO\] Step (\d+)/\s*\d+;.*?bsz:\s*(\d+)/\s*(\d+)/\s*(\d+);", log):
        stamp = time.mktime(time.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M:%S"))
        rows[int(match.group(4))] = (stamp + int(match.group(3)) / 1000, float(match.group(6)))
    if sizes.first not in rows or sizes.last not in rows:
        raise StageFailure(f"OpenNMT-py's log has no steps {sizes.first} and {sizes.last} (found {sorted(rows)})")
    seconds = rows[sizes.last][0] - rows[sizes.first][0]
    tokens = sum(mean * sizes.report_every for step, (_, mean) in rows.items() if sizes.first < step <= sizes.last)
    return {
        "seconds": seconds,
        "target_tokens_per_second": tokens / seconds,
        "sentences_per_second": (sizes.last - sizes.first) * 64 / seconds,
    }


def prepare_peer_data(multi30k: Path, folder: Path) -> None:
    """The peer's data, as `../shared/peers/opennmt/run.sh` makes it: a joint sentencepiece
    unigram model of 8000 pieces on the training sources and targets, its vocabulary, and every
    split in pieces; and the raw test references."""
    import gzip

    import sentencepiece

    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test_2016_flickr"):
        for language in ("de", "en"):
            with gzip.open(multi30k / f"{split}.{language}.gz", "rt", encoding="utf-8") as raw:
                (folder / f"{split}.{language}").write_text(raw.read(), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=f"{folder / 'train.de'},{folder / 'train.en'}",
        model_prefix=str(folder / "spm8k"),
        vocab_size=8000,
        model_type="unigram",
        character_coverage=1.0,
        num_threads=2,
        pad_id=-1,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        minloglevel=2,
    )
    pieces = (folder / "spm8k.vocab").read_text(encoding="utf-8").splitlines()
    (folder / "spm8k.vocab.txt").write_text("".join(line.split("\t")[0] + "\n" for line in pieces), encoding="utf-8")
    model = sentencepiece.SentencePieceProcessor(model_file=str(folder / "spm8k.model"))
    for split in ("train", "val", "test_2016_flickr"):
        for language in ("de", "en"):
            lines = (folder / f"{split}.{language}").read_text(encoding="utf-8").splitlines()
            (folder / f"{split}.sp.{language}").write_text(
                "".join(" ".join(model.encode(line, out_type=str)) + "\n" for line in lines), encoding="utf-8"
            )
    for split in ("train", "val"):
        for language in ("de", "en"):
            (folder / f"{split}.{language}").unlink()
    (folder / "test_2016_flickr.de").unlink()


def score_pieces(hypotheses: Path, data: Path) -> dict[str, float]:
    """sacreBLEU and chrF of sentencepiece-tokenized hypotheses against the raw references."""
    import sacrebleu
    import sentencepiece

    model = sentencepiece.SentencePieceProcessor(model_file=str(data / "spm8k.model"))
    lines = [model.decode(line.split()) for line in hypotheses.read_text(encoding="utf-8").splitlines()]
    references = (data / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()
    return {
        "bleu": sacrebleu.corpus_bleu(lines, [references]).score,
        "chrf": sacrebleu.corpus_chrf(lines, [references]).score,
    }


def tests(check: Check, until: float) -> dict[str, Any]:
    """`pytest -m cuda`: on a GPU none may fail (a case a test skips on every device, such as
    the coverage penalty without attention, stays skipped); on the CPU every one is skipped.
    pytest's "no tests ran" (exit status 5, were none collected) counts as a failure too."""
    output = check.command(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "cuda",
            "-v",
            "-p",
            "no:cacheprovider",
            "-o",
            "console_output_style=classic",
        ],
        until,
        accept=lambda code: code in (0, 1),
    )
    outcomes = re.findall(r"^(tests/\S+) (PASSED|FAILED|SKIPPED|ERROR)", output, flags=re.MULTILINE)
    counts = {
        kind: sum(1 for _, outcome in outcomes if outcome == kind) for kind in ("PASSED", "FAILED", "SKIPPED", "ERROR")
    }
    failed = [name for name, outcome in outcomes if outcome in ("FAILED", "ERROR")]
    result = {"counts": counts, "failed": failed, "summary": output.strip().splitlines()[-1]}
    all_skipped = counts["SKIPPED"] == len(outcomes)
    if not outcomes or failed or all_skipped != (check.device == "cpu"):
        raise StageFailure(json.dumps(result))
    return result


def gpu_sized(check: Check, until: float) -> dict[str, Any]:
    """Training throughput, peak memory and the share of the bf16 ceiling of larger settings."""
    profile, results = check.profile, {}
    for name, overrides in profile.gpu_sized.items():
        report = check.benchmark(
            name,
            overrides,
            [
                "--no-decoding",
                "--precisions",
                "bf16",
                "--repeats",
                "1",
                "--warmup",
                str(profile.warmup),
                "--window",
                str(max(profile.window // 2, 1)),
                "--square",
                str(profile.square),
            ],
            until,
        )
        summary = report["training"]["bf16"]
        results[name] = {
            "target_tokens_per_second": summary["target_tokens_per_second"],
            "peak_memory_mb": summary["peak_memory_mb"],
            "utilization": report["utilization"]["bf16"],
            "parameters": report["parameters"],
            "report": report,
        }
    return results


STAGES: dict[str, Callable[[Check, float], dict[str, Any]]] = {
    "environment": environment,
    "train_reference": train_reference,
    "bleu": bleu,
    "decode_reference": decode_reference,
    "peer": peer,
    "tests": tests,
    "gpu_sized": gpu_sized,
}


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures: ours against OpenNMT-py on the same GPU."""
    stages, summary = report["stages"], {}
    reference, peer_result = stages.get("train_reference", {}), stages.get("peer", {})
    if reference.get("status") == "passed" and peer_result.get("status") == "passed":
        ours = reference["target_tokens_per_second"]["bf16 compiled"]
        summary["training_ratio"] = ours / peer_result["training"]["target_tokens_per_second"]
    decoded = stages.get("decode_reference", {})
    if decoded.get("status") == "passed" and peer_result.get("status") == "passed":
        summary["greedy_ratio"] = peer_result["beam 1"]["translation_seconds"] / decoded["seconds"]["greedy"]
        summary["beam_5_ratio"] = peer_result["beam 5"]["translation_seconds"] / decoded["seconds"]["beam 5"]
    if stages.get("bleu", {}).get("status") == "passed":
        summary["recipe_bleu"] = stages["bleu"]["test"]["bleu"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=PROFILES, default="cuda")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("OUT", "gpu_check")),
        help="where gpu_check.json and gpu_check.log go (default: $OUT)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "runs" / "gpu_check",
        help="runs, benchmark reports, the peer's files (default: %(default)s)",
    )
    parser.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated, in order (default: all: %(default)s)"
    )
    parser.add_argument("--budget", type=float, default=540, help="seconds for all the stages (%(default)s)")
    parser.add_argument(
        "--peer",
        type=Path,
        default=ROOT / ".device" / "opennmt",
        help="the peer's wheels, config and data (default: %(default)s)",
    )
    parser.add_argument("--commit", default=os.environ.get("NMT_COMMIT"), help="the commit checked ($NMT_COMMIT)")
    parser.add_argument(
        "--prepare-peer-data",
        type=Path,
        metavar="MULTI30K",
        help="only write the peer's data under --peer/data from this Multi30k folder, and stop",
    )
    args = parser.parse_args()
    if args.prepare_peer_data:
        prepare_peer_data(args.prepare_peer_data, args.peer / "data")
        return
    stages = args.stages.split(",")
    unknown = [name for name in stages if name not in STAGES]
    if unknown:
        parser.error(f"unknown stage {', '.join(unknown)}: use {', '.join(STAGES)}")
    check = Check(args.device, args.out, args.work, args.peer, time.monotonic() + args.budget, args.commit)
    passed = check.run(stages)
    check.report["summary"] = summarize(check.report)
    (args.out / "gpu_check.json").write_text(json.dumps(check.report, indent=2) + "\n")
    print(json.dumps(check.report["summary"], indent=2))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
