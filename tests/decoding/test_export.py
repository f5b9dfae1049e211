"""The inference export: the traced program reproduces the model and loads without nmt."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.testing import assert_close

from nmt.checkpoint import build_checkpoint, save_checkpoint
from nmt.cli.export import main
from nmt.data.batching import collate
from nmt.data.tokenizer import BOS_ID, Tokenizer, TokenizerConfig, build_tokenizers
from nmt.decoding.batches import translate_hypotheses, translate_lines
from nmt.decoding.export import ExportedModel, export_model
from nmt.decoding.loading import load_model
from nmt.decoding.search import GreedySearch, build_search
from nmt.modules.seq2seq import Seq2Seq
from nmt.utils.errors import UserError
from tests.data.test_sources import write_toy

ENCODER = {"_target_": "nmt.modules.encoder.RNNEncoder", "_partial_": True, "embedding_size": 8, "hidden_size": 8}
BAHDANAU = {
    "_target_": "nmt.modules.decoder.BahdanauDecoder",
    "_partial_": True,
    "embedding_size": 8,
    "hidden_size": 16,
    "readout_size": 8,
}
LUONG = {
    "_target_": "nmt.modules.decoder.LuongDecoder",
    "_partial_": True,
    "embedding_size": 8,
    "hidden_size": 16,
    "attentional_size": 16,
    "input_feeding": True,
    "num_layers": 2,
}
MODELS = {  # each a `_target_` model config, as a run's config["model"]
    "bahdanau_additive": {
        "encoder": ENCODER,
        "decoder": {
            **BAHDANAU,
            "scorer": {"_target_": "nmt.modules.attention.AdditiveScorer", "_partial_": True, "hidden_size": 12},
        },
    },
    "bahdanau_coverage": {
        "encoder": {**ENCODER, "num_layers": 2},
        "decoder": {
            **BAHDANAU,
            "scorer": {"_target_": "nmt.modules.attention.CoverageScorer", "_partial_": True, "hidden_size": 12},
        },
    },
    "luong_concat_input_feeding": {
        "encoder": ENCODER,
        "decoder": {
            **LUONG,
            "scorer": {"_target_": "nmt.modules.attention.ConcatScorer", "_partial_": True, "hidden_size": 12},
        },
    },
    "luong_location": {
        "encoder": ENCODER,
        "decoder": {
            **LUONG,
            "scorer": {"_target_": "nmt.modules.attention.LocationScorer", "_partial_": True, "max_source_length": 32},
        },
    },
    "luong_lstm_sparsemax": {
        "cell": "lstm",
        "encoder": ENCODER,
        "decoder": {
            **LUONG,
            "normalizer": "sparsemax",
            "scorer": {"_target_": "nmt.modules.attention.GeneralScorer", "_partial_": True},
        },
    },
    "no_attention": {"encoder": ENCODER, "decoder": {**BAHDANAU, "scorer": None}},
}
DECODE = {
    "_target_": "nmt.decoding.search.BeamSearch",
    "beam_size": 3,
    "nbest": 2,
    "alpha": 0.6,
    "min_length_ratio": 1.0,
    "max_length_ratio": 2.0,
    "max_length_offset": 10,
}  # no empty outputs
SOURCES = ["ka lo mi", "ne su ta ri po fe gu ba", "do", "zi ve hu ja kor lam mis nod sul tep", "rin pax ka"]


@pytest.fixture(scope="module")
def tokenizer_bytes(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("tokenizers")
    files = write_toy(root / "toy")["train"]
    src, tgt = build_tokenizers(
        TokenizerConfig(vocab_size=40, joint=False), files.src, files.tgt, root / "cache", root / "run"
    )
    return {"src": src.model_bytes, "tgt": tgt.model_bytes}


def write_checkpoint(folder: Path, name: str, tokenizers: dict[str, bytes]) -> Path:
    """A checkpoint of a random model built from MODELS[name] the way `load_model` rebuilds it."""
    torch.manual_seed(0)
    config = {"_target_": "nmt.modules.seq2seq.Seq2Seq", **MODELS[name]}
    sizes = {f"{side}_vocab_size": Tokenizer.from_bytes(data, side).vocab_size for side, data in tokenizers.items()}
    model = instantiate(OmegaConf.create(config), **sizes)
    with torch.no_grad():  # peaked distributions: greedy outputs of varied lengths, not an EOS at once
        model.decoder.generator.weight.mul_(4.0)
    path = folder / "best.pt"
    save_checkpoint(
        path, build_checkpoint(model.state_dict(), {"model": config, "decode": DECODE}, tokenizers, step=1, valid={})
    )
    return path


class Case(NamedTuple):
    """A checkpoint's model and tokenizers, and its export loaded back from `folder`."""

    model: Seq2Seq
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    export: ExportedModel
    folder: Path


def export_config(folder: Path, name: str, tokenizers: dict[str, bytes]) -> Case:
    checkpoint = write_checkpoint(folder, name, tokenizers)
    export_model(checkpoint, folder / "exported")
    model, src_tokenizer, tgt_tokenizer, _ = load_model(checkpoint)
    return Case(model, src_tokenizer, tgt_tokenizer, ExportedModel.load(folder / "exported"), folder / "exported")


@pytest.fixture(scope="module", params=list(MODELS))
def case(request, tmp_path_factory, tokenizer_bytes) -> Case:
    return export_config(tmp_path_factory.mktemp(request.param), request.param, tokenizer_bytes)


@pytest.fixture(scope="module")
def coverage_case(tmp_path_factory, tokenizer_bytes) -> Case:
    """One export for the slower checks: two state tensors, a two-layer encoder."""
    return export_config(tmp_path_factory.mktemp("coverage"), "bahdanau_coverage", tokenizer_bytes)


def source_batch(model: ExportedModel, lines: list[str] = SOURCES) -> tuple[torch.Tensor, torch.Tensor]:
    batch = collate(model.src_tokenizer.encode(lines), None, list(range(len(lines))))
    return batch.src, batch.src_lengths


def greedy_tokens(model, src: torch.Tensor, src_lengths: torch.Tensor, steps: int = 12) -> list[list[int]]:
    """Argmax decoding driven by hand through `start` and `decode_step` (no stopping at EOS)."""
    memory, state = model.start(src, src_lengths)
    tokens, outputs = torch.full((src.size(0),), BOS_ID), []
    for _ in range(steps):
        log_probs, state, _ = model.decode_step(tokens, state, memory)
        tokens = log_probs.argmax(-1)
        outputs.append(tokens)
    return torch.stack(outputs, 1).tolist()


@torch.no_grad()
def test_start_and_steps_equal_the_model(case):
    model, export = case.model, case.export
    src, src_lengths = source_batch(export)
    assert len(set(src_lengths.tolist())) > 2
    memory, state = model.start(src, src_lengths)
    exported_memory, exported_state = export.start(src, src_lengths)
    tokens = torch.full((src.size(0),), BOS_ID)
    for _ in range(5):
        assert_close(exported_memory, (memory.keys, memory.values, memory.mask))
        assert_close(dict(zip(export.manifest["state"], exported_state)), state)
        log_probs, state, attention = model.decode_step(tokens, state, memory)
        exported_log_probs, exported_state, exported_attention = export.decode_step(
            tokens, exported_state, exported_memory
        )
        assert_close(exported_log_probs, log_probs)
        assert_close(exported_attention, attention)
        tokens = log_probs.argmax(-1)


@torch.no_grad()
def test_greedy_decoding_over_the_export_gives_the_model_tokens(case):
    model, export = case.model, case.export
    src, src_lengths = source_batch(export)
    expected = greedy_tokens(model, src, src_lengths)
    assert len({tuple(row) for row in expected}) > 1  # the sentences are not all decoded alike
    assert greedy_tokens(export, src, src_lengths) == expected
    assert [[h.tokens for h in nbest] for nbest in GreedySearch()(export, src, src_lengths)] == [
        [h.tokens for h in nbest] for nbest in GreedySearch()(model, src, src_lengths)
    ]


@torch.no_grad()
def test_reorder_equals_reordering_the_model_memory_and_state(case):
    model, export = case.model, case.export
    src, src_lengths = source_batch(export)
    index = torch.tensor([3, 0, 0, 4, 1, 3])  # repeats and reorders rows, as beams do
    bos = torch.full((src.size(0),), BOS_ID)
    memory, state = model.start(src, src_lengths)
    memory, state = model.reorder(memory, model.decode_step(bos, state, memory)[1], index)
    exported_memory, exported_state = export.start(src, src_lengths)
    exported_memory, exported_state = export.reorder(
        exported_memory, export.decode_step(bos, exported_state, exported_memory)[1], index
    )
    assert_close(exported_memory, (memory.keys, memory.values, memory.mask))
    assert_close(dict(zip(export.manifest["state"], exported_state)), state)
    tokens = torch.tensor([5, 6, 7, 8, 9, 10])
    assert_close(
        export.decode_step(tokens, exported_state, exported_memory)[0], model.decode_step(tokens, state, memory)[0]
    )


def test_the_export_decode_config_translates_like_the_model(case):
    """Beam search (reorder at every step, sentences leaving the batch) from the manifest's config."""
    model, export = case.model, case.export
    search = build_search(export.manifest["decode"])
    src_ids = export.src_tokenizer.encode(SOURCES)
    expected = translate_hypotheses(model, src_ids, search)
    hypotheses = translate_hypotheses(export, src_ids, search)
    assert [[h.tokens for h in nbest] for nbest in hypotheses] == [[h.tokens for h in nbest] for nbest in expected]
    assert_close([[h.score for h in nbest] for nbest in hypotheses], [[h.score for h in nbest] for nbest in expected])
    assert translate_lines(export, export.src_tokenizer, export.tgt_tokenizer, SOURCES, search) == translate_lines(
        model, case.src_tokenizer, case.tgt_tokenizer, SOURCES, search
    )


def test_manifest_describes_the_export(case):
    model, export, folder = case.model, case.export, case.folder
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.pt", "src.model", "tgt.model"]
    manifest = export.manifest
    assert manifest["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert manifest["vocab_size"] == {"src": case.src_tokenizer.vocab_size, "tgt": case.tgt_tokenizer.vocab_size}
    assert manifest["decode"] == DECODE
    assert manifest["state"] == list(model.start(*source_batch(export))[1])
    assert export.src_tokenizer.model_bytes != export.tgt_tokenizer.model_bytes  # each side its own model


def test_a_trace_that_does_not_reproduce_the_model_is_refused(tmp_path, tokenizer_bytes, monkeypatch):
    checkpoint = write_checkpoint(tmp_path, "bahdanau_additive", tokenizer_bytes)
    trace_module = torch.jit.trace_module

    def trace_another_model(program, inputs, **options):
        other = copy.deepcopy(program)
        other.model.decoder.generator.weight.mul_(2.0)
        return trace_module(other, inputs, **options)

    monkeypatch.setattr(torch.jit, "trace_module", trace_another_model)
    with pytest.raises(UserError, match="the traced program differs from the model"):
        export_model(checkpoint, tmp_path / "exported")
    assert not (tmp_path / "exported" / "manifest.json").exists()


def test_location_attention_refuses_a_source_longer_than_it_reads(tmp_path, tokenizer_bytes):
    export = export_config(tmp_path, "luong_location", tokenizer_bytes).export
    src, src_lengths = source_batch(export, [" ".join(["ka"] * 40)])
    with pytest.raises(ValueError, match="max_source_length=32"):
        export.start(src, src_lengths)


def run_python(code: str, cwd: Path) -> str:
    """Runs `code` in a fresh interpreter outside the repository, without PYTHONPATH."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**environment, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@torch.no_grad()
@pytest.mark.integration
def test_program_runs_with_torch_alone(coverage_case, tmp_path):
    model, folder = coverage_case.model, coverage_case.folder
    code = f"""
import json, sys
sys.modules["nmt"] = None  # the editable install would otherwise make it importable anywhere
import torch
try:
    import nmt
    raise SystemExit("nmt is importable")
except ImportError:
    pass
program = torch.jit.load({str(folder / "model.pt")!r})
src, src_lengths = torch.tensor([[5, 6, 3], [7, 3, 0]]), torch.tensor([3, 2])
memory, state = program.start(src, src_lengths)
log_probs, state, attention = program.decode_step(torch.tensor([2, 2]), state, memory)
print(json.dumps(log_probs.tolist()))
"""
    log_probs = json.loads(run_python(code, tmp_path))
    src, src_lengths = torch.tensor([[5, 6, 3], [7, 3, 0]]), torch.tensor([3, 2])
    memory, state = model.start(src, src_lengths)
    assert_close(torch.tensor(log_probs), model.decode_step(torch.tensor([2, 2]), state, memory)[0])


@pytest.mark.integration
def test_exported_model_loads_without_the_training_code(coverage_case, tmp_path):
    export, folder = coverage_case.export, coverage_case.folder
    code = f"""
import sys
for name in ("nmt.modules", "nmt.decoding.batches", "nmt.training.trainer", "hydra", "omegaconf"):
    sys.modules[name] = None  # importing any of these now fails
import torch
from nmt.decoding.export import ExportedModel
model = ExportedModel.load({str(folder)!r})
src = model.src_tokenizer.encode(["ka lo mi"])[0] + [3]
memory, state = model.start(torch.tensor([src]), torch.tensor([len(src)]))
print(model.decode_step(torch.tensor([2]), state, memory)[0].shape)
"""
    assert run_python(code, tmp_path).strip() == f"torch.Size([1, {export.manifest['vocab_size']['tgt']}])"


def test_cli_exports_and_errors_in_one_line(tmp_path, tokenizer_bytes, capsys):
    checkpoint = write_checkpoint(tmp_path, "bahdanau_additive", tokenizer_bytes)
    main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "out")])
    assert "model.pt" in capsys.readouterr().out
    assert ExportedModel.load(tmp_path / "out").manifest["state"] == ["hidden"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(tmp_path / "missing.pt"), "--output", str(tmp_path / "other")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing.pt'}: checkpoint not found\n"


def test_loading_a_folder_that_is_not_an_export_names_it(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path}: not a complete model export"):
        ExportedModel.load(tmp_path)
