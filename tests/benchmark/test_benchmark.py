"""The FLOP count against one written by hand, and nmt-benchmark end to end on the toy task."""

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import random_sentences
from hydra import compose, initialize_config_dir

from nmt.benchmark.flops import count_flops
from nmt.benchmark.run import NOT_NATIVE
from nmt.checkpoint import save_checkpoint
from nmt.data.batching import Batch, ParallelData, collate
from nmt.modules.attention import AdditiveScorer
from nmt.modules.decoder import BahdanauDecoder
from nmt.modules.encoder import RNNEncoder
from nmt.modules.seq2seq import Seq2Seq
from nmt.training import experiment
from nmt.training.run_layout import RunLayout
from nmt.utils.precision import choose_precision, native_16_bit
from tests.test_checkpoint import tiny_checkpoint, toy_tokenizers

ROOT = Path(__file__).resolve().parents[2]
# All sizes differ, so a product counted with the wrong size cannot match by accident.
SIZES = {"E": 5, "H": 7, "TE": 6, "D": 9, "A": 11, "R": 4, "V": 29}


def linear(rows: int, inputs: int, outputs: int) -> float:
    return 2.0 * rows * inputs * outputs


def flops_by_hand(batch: Batch, E: int, H: int, TE: int, D: int, A: int, R: int, V: int) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs of RNNsearch (bidirectional GRU encoder over packed
    sequences, additive attention, Bahdanau GRU decoder, maxout deep output) on `batch`,
    counting matrix products only: E/H encoder embedding/state per direction, TE/D decoder
    embedding/state, A attention size, R deep-output size, V target vocabulary."""
    B, S = batch.src.shape
    T = batch.tgt_in.shape[1]
    K = 2 * H  # annotations
    lengths = batch.src_lengths.tolist()
    # packed: each direction runs only the real tokens, input and recurrent gate products
    encoder = 2 * (linear(sum(lengths), E, 3 * H) + linear(sum(lengths), H, 3 * H))
    keys = linear(B * S, K, A)  # U h(j) once per batch, padded positions too
    initial = linear(B, H, D)  # s(0) from the backward state
    embedding_gates = linear(B * T, TE, 3 * D)  # the embedding's part of the GRU input, all steps at once
    step = (
        linear(B, D, A)  # W s(i-1)
        + linear(B * S, A, 1)  # v^T tanh(...)
        + 2.0 * B * S * K  # context: weights @ annotations
        + linear(B, K, 3 * D)
        + linear(B, D, 3 * D)
    )  # GRU gates from context and state
    N = batch.num_target_tokens  # the output layers run at real target positions only
    deep_output = linear(N, D + K + TE, 2 * R)  # maxout: two pieces per unit
    output = linear(N, R, V)
    forward = encoder + keys + initial + embedding_gates + T * step + deep_output + output
    # Backward: two products per forward product (gradients of both factors), except that the
    # encoder's zero initial state needs no gradient: the forward direction's first step (all
    # rows) and the backward direction's first step (the longest sentences' rows).
    no_gradient = linear(B + lengths.count(max(lengths)), H, 3 * H)
    return forward, 3 * forward - no_gradient


def sized_model() -> Seq2Seq:
    s = SIZES
    return Seq2Seq(
        encoder=partial(RNNEncoder, embedding_size=s["E"], hidden_size=s["H"]),
        decoder=partial(
            BahdanauDecoder,
            embedding_size=s["TE"],
            hidden_size=s["D"],
            readout_size=s["R"],
            scorer=partial(AdditiveScorer, hidden_size=s["A"]),
        ),
        src_vocab_size=31,
        tgt_vocab_size=s["V"],
    )


def test_flop_count_equals_the_count_by_hand():
    model = sized_model()
    batches = [collate(random_sentences(n, 1, 9), random_sentences(n, 1, 9), list(range(n))) for n in (3, 5)]
    counted = count_flops(model, batches)
    by_hand = [flops_by_hand(batch, **SIZES) for batch in batches]
    assert counted.forward == pytest.approx(sum(f for f, _ in by_hand), rel=1e-12)
    assert counted.training == pytest.approx(sum(t for _, t in by_hand), rel=1e-12)
    assert counted.target_tokens == sum(batch.num_target_tokens for batch in batches)
    assert all(p.grad is None for p in model.parameters())  # a copy ran
    # the recorded shapes: the output layer (one call per batch over its real target positions)
    # and the GRU's context gates (one call per step over B rows)
    shapes = {(p.inner, p.columns): p for p in counted.products}
    output = shapes[SIZES["R"], SIZES["V"]]
    assert (output.calls, output.rows) == (2, round(sum(b.num_target_tokens for b in batches) / 2))
    context = shapes[2 * SIZES["H"], 3 * SIZES["D"]]
    assert context.calls == sum(b.tgt_in.shape[1] for b in batches)
    bmm = sum(2.0 * b.src.numel() * 2 * SIZES["H"] * b.tgt_in.shape[1] for b in batches)
    assert sum(p.flops for p in counted.products) == pytest.approx(counted.forward - bmm, rel=1e-12)


TOY = [
    "data.num_train=400",
    "model.encoder.embedding_size=12",
    "model.encoder.hidden_size=10",
    "model.decoder.embedding_size=14",
    "model.decoder.hidden_size=18",
    "model.decoder.scorer.hidden_size=9",
    "batching.max_tokens=150",
]


def benchmark(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nmt.cli.benchmark", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def training_data(tmp_path: Path, overrides: list[str]) -> tuple[ParallelData, int]:
    """The training batches of the config, built as training builds them, and the target vocabulary size."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    splits = experiment.prepare_data(cfg)
    tokenizers = experiment.make_tokenizers(cfg, splits, RunLayout(tmp_path / "check"))
    return experiment.load_training_data(cfg, splits, *tokenizers), tokenizers[1].vocab_size


@pytest.mark.integration
def test_benchmark_end_to_end(tmp_path, monkeypatch):
    done = benchmark(
        "--warmup",
        "2",
        "--window",
        "3",
        "--repeats",
        "1",
        "--flop-batches",
        "1",
        "--square",
        "64",
        "--scaling",
        "--scaling-warmup",
        "1",
        "--scaling-window",
        "2",
        "--batch-sizes",
        "4",
        "--beam-sizes",
        "1,5",
        "--output",
        "out.json",
        *TOY,
        "trainer.precision=fp32",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out.json").read_text())
    assert {
        "machine",
        "overrides",
        "settings",
        "training",
        "flops",
        "ceiling",
        "utilization",
        "decoding",
        "scaling",
    } <= set(report)
    assert report["overrides"] == [*TOY, "trainer.precision=fp32"]
    machine = report["machine"]
    assert machine["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["bf16_native"] == native_16_bit(torch.device("cpu"), "bf16")
    assert "### Training" in done.stdout and "### Decoding against source length" in done.stdout

    # the window is exactly updates 3-5 of epoch 0: its tokens and sentences are those batches'
    monkeypatch.chdir(tmp_path)
    data, vocabulary = training_data(tmp_path, TOY)
    window = data.batch_order(0)[2:5]
    (run,) = report["training"]["fp32"]["runs"]
    assert (run["updates"], run["batches"]) == (3, 3)
    assert run["target_tokens"] == sum(data.target_tokens(b) for b in window)
    assert run["sentences"] == sum(len(b) for b in window)
    assert report["training"]["fp32"]["target_tokens_per_second"] == pytest.approx(
        run["target_tokens"] / run["seconds"]
    )
    assert run["threads"] == report["machine"]["threads"] == 1  # conftest: one thread, inherited

    # FLOPs of the window's first batch, by hand (readout size = decoder embedding size)
    flops = report["flops"]
    first = data.collate(window[0])
    forward, training = flops_by_hand(first, E=12, H=10, TE=14, D=18, A=9, R=14, V=vocabulary)
    assert (flops["forward"], flops["training"]) == (pytest.approx(forward), pytest.approx(training))
    assert flops["target_tokens"] == first.num_target_tokens
    shapes = [(p["rows"], p["inner"], p["columns"]) for p in flops["products"][:2]] + [(64, 64, 64)]
    assert [(c["rows"], c["inner"], c["columns"], c["precision"]) for c in report["ceiling"]] == [
        (*shape, precision) for shape in shapes for precision in ("fp32", "bf16")
    ]
    # bf16 only where it is native (elsewhere a reference loop, minutes at a square's size)
    measured = {"fp32", "bf16"} if machine["bf16_native"] else {"fp32"}
    assert all(c["gflops"] > 0 for c in report["ceiling"] if c["precision"] in measured)
    assert all(
        c["gflops"] is None and c["kernel"] == NOT_NATIVE for c in report["ceiling"] if c["precision"] not in measured
    )
    # the fastest kernel: oneDNN's competes only in fp32 on the CPU
    fp32_kernels = {"torch.mm", "oneDNN"} if torch.backends.mkldnn.is_available() else {"torch.mm"}
    assert all(
        c["kernel"] in (fp32_kernels if c["precision"] == "fp32" else {"torch.mm"})
        for c in report["ceiling"]
        if c["precision"] in measured
    )
    assert report["utilization"]["fp32"]["achieved_gflops"] == pytest.approx(
        flops["training"] / flops["target_tokens"] * run["target_tokens"] / run["seconds"] / 1e9
    )

    test_lines = len((tmp_path / "data/toy/test.src").read_text().splitlines())
    decoding, scaling = report["decoding"], report["scaling"]
    assert decoding["sentences"] == test_lines and decoding["note"]  # no checkpoint: the untrained-model note
    assert [(s["name"], s["sentences"], len(s["seconds"])) for s in decoding["searches"]] == [
        ("greedy", test_lines, 1),
        ("beam 5", test_lines, 1),
    ]
    assert [(row["beam_size"], row["sentences"]) for row in scaling["beam_size"]] == [(1, test_lines), (5, test_lines)]
    assert scaling["beam_size"][1]["bleu"] == decoding["searches"][1]["bleu"]  # one job serves both tables
    assert sum(row["sentences"] for row in scaling["source_length"]) == test_lines

    (size,) = scaling["batch_size"]
    (scaled,) = size["runs"]
    capped, _ = training_data(tmp_path, [*TOY, "batching.max_sentences=4", "batching.max_tokens=1000000000"])
    assert scaled["sentences"] == sum(len(b) for b in capped.batch_order(0)[1:3]) <= 8
    corpus = {row["fraction"]: row for row in scaling["corpus_size"]}
    assert corpus[1.0]["pairs"] == len(data.rows) and corpus[1.0]["batches"] == len(data.batch_order(0))
    assert corpus[0.5]["estimated_seconds_per_epoch"] == pytest.approx(
        corpus[0.5]["updates"] * report["training"]["fp32"]["seconds_per_update"]
    )


@pytest.mark.integration
def test_benchmark_stops_on_a_missing_checkpoint_with_one_line(tmp_path):
    done = benchmark("--checkpoint", "missing.pt", "data.num_train=50", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --checkpoint missing.pt: file not found"


@pytest.mark.integration
def test_the_benchmark_can_time_training_alone_or_decoding_alone(tmp_path):
    trained = benchmark(
        "--warmup",
        "1",
        "--window",
        "2",
        "--repeats",
        "1",
        "--flop-batches",
        "1",
        "--square",
        "32",
        "--no-decoding",
        "--output",
        "train.json",
        *TOY,
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    report = json.loads((tmp_path / "train.json").read_text())
    assert {"training", "flops", "ceiling"} <= set(report) and "decoding" not in report
    assert list(report["training"]) == [choose_precision("auto", "cpu").precision]  # the config's, resolved here
    assert "### Training" in trained.stdout and "### Decoding" not in trained.stdout

    model, payload = tiny_checkpoint(toy_tokenizers(tmp_path / "tokenizers"))
    save_checkpoint(tmp_path / "model.pt", payload)
    decoded = benchmark(
        "--repeats", "1", "--no-training", "--checkpoint", "model.pt", "--output", "decode.json", *TOY, cwd=tmp_path
    )
    assert decoded.returncode == 0, decoded.stderr[-3000:]
    report = json.loads((tmp_path / "decode.json").read_text())
    assert "training" not in report and report["parameters"] == sum(p.numel() for p in model.parameters())
    assert [s["name"] for s in report["decoding"]["searches"]] == ["greedy", "beam 5"]

    refused = benchmark("--no-training", *TOY, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: without training the benchmark decodes only: give --checkpoint, and no --scaling"
    )
