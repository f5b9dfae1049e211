"""The ONNX export and its torch-free runtime: the numpy searches on ONNX Runtime translate the
toy task token for token as PyTorch's searches do (fp32), for several model kinds; the n-best and
their scores match; it runs in a process where torch cannot be imported; bad exports and decode
configs fail with one line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from nmt import Translator
from nmt.checkpoint import save_checkpoint
from nmt.data.corpus import read_lines
from nmt.utils.errors import UserError
from tests.test_checkpoint import TINY_MODEL, tiny_checkpoint, toy_tokenizers

onnx_export = pytest.importorskip("nmt.decoding.onnx_export")
pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'attention-nmt[onnx]'")
from nmt.decoding.onnx_runtime import OnnxTranslator, beam_search  # noqa: E402

DECODE = {  # an untrained model would end at once: outputs as long as the source at least
    "_target_": "nmt.decoding.search.BeamSearch",
    "beam_size": 4,
    "min_length_ratio": 1.0,
    "max_length_ratio": 1.5,
}


def luong(scorer: dict) -> dict:
    """The tiny model's decoder as Luong's, with `scorer`."""
    decoder = {key: value for key, value in TINY_MODEL["decoder"].items() if key != "readout_size"}
    return {**decoder, "_target_": "nmt.modules.decoder.LuongDecoder", "attentional_size": 16, "scorer": scorer}


MODELS = {
    "bahdanau_additive": {},
    "luong_general_lstm": {
        "cell": "lstm",
        "decoder": luong({"_target_": "nmt.modules.attention.GeneralScorer", "_partial_": True}),
    },
    "luong_location_truncating": {  # sources longer than 6 pieces are cut, as PyTorch cuts them
        "decoder": luong(
            {"_target_": "nmt.modules.attention.LocationScorer", "_partial_": True, "max_source_length": 6}
        ),
    },
    "bahdanau_sparsemax_2_layers": {"decoder": {**TINY_MODEL["decoder"], "num_layers": 2, "normalizer": "sparsemax"}},
}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    return toy_tokenizers(tmp_path_factory.mktemp("tokenizers"))


@pytest.fixture(scope="module")
def sentences(tokenizers, tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    toy_tokenizers(root)
    return read_lines(root / "toy" / "test.src")


def export(tokenizers, folder, quantize=False, **model_config):
    _, payload = tiny_checkpoint(tokenizers, seed=6, **model_config)
    payload["config"]["decode"] = DECODE
    save_checkpoint(folder / "model.pt", payload)
    onnx_export.export_onnx(folder / "model.pt", folder / "onnx", quantize=quantize)
    return folder / "model.pt", folder / "onnx"


@pytest.mark.parametrize("name", MODELS)
def test_onnx_runtime_translates_as_pytorch_token_for_token(tokenizers, sentences, tmp_path, name):
    checkpoint, folder = export(tokenizers, tmp_path, **MODELS[name])
    reference = Translator.from_checkpoint(checkpoint, device="cpu", precision="fp32", compile=False)
    for search in ("beam", "greedy"):
        expected = reference.translate(sentences, search=search)
        onnx = OnnxTranslator(folder, search=search)
        assert onnx.translate(sentences) == expected, search  # one batch
        assert onnx.translate(sentences, batch_size=3) == expected, search  # sentences leave batches of others
        if search == "greedy":
            assert any(expected)  # a test of something: greedy output is not all empty


def test_the_nbest_lists_and_their_scores_match(tokenizers, sentences, tmp_path):
    checkpoint, folder = export(tokenizers, tmp_path)
    reference = Translator.from_checkpoint(checkpoint, device="cpu", precision="fp32", compile=False)
    onnx = OnnxTranslator(folder)
    config = {**onnx.config, "nbest": 3}
    for sentence, ids in zip(sentences, onnx.src_tokenizer.encode(sentences)):
        (expected,) = reference.translate_nbest([sentence], nbest=3)
        (found,) = beam_search(onnx.model, [np.array([*ids, 3])], config)
        assert [onnx.tgt_tokenizer.decode([h.tokens])[0] for h in found] == [h.text for h in expected]
        assert np.allclose([h.score for h in found], [h.score for h in expected], atol=1e-5)
        assert np.allclose([h.log_prob for h in found], [h.log_prob for h in expected], atol=1e-5)


def test_the_runtime_runs_where_torch_cannot_be_imported(tokenizers, sentences, tmp_path):
    checkpoint, folder = export(tokenizers, tmp_path, quantize=True)
    source = tmp_path / "source.txt"
    source.write_text("".join(f"{line}\n" for line in sentences))
    program = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` fails
        "from nmt.cli.onnx_translate import main\n"
        f"main(['--model', {str(folder)!r}, '--input', {str(source)!r}] + sys.argv[1:])\n"
    )
    for extra in ([], ["--int8"]):
        result = subprocess.run([sys.executable, "-c", program, *extra], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        if not extra:
            expected = Translator.from_checkpoint(checkpoint, device="cpu", precision="fp32", compile=False)
            assert result.stdout.splitlines() == expected.translate(sentences)
        else:
            assert len(result.stdout.splitlines()) == len(sentences)  # int8: its quality is measured, not equal


def test_bad_exports_and_configs_fail_with_one_line(tokenizers, tmp_path):
    _, folder = export(tokenizers, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    with pytest.raises(UserError, match="has no int8 graphs"):
        OnnxTranslator(folder, quantized=True)
    manifest["decode"] = {**DECODE, "coverage_penalty": 0.2}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"decode.coverage_penalty=0.2: the ONNX runtime does not implement it"):
        OnnxTranslator(folder)
    (folder / "manifest.json").write_text(
        json.dumps({**manifest, "decode": {"_target_": "nmt.decoding.search.Sampling"}})
    )
    with pytest.raises(UserError, match="Sampling'. the ONNX runtime has"):
        OnnxTranslator(folder)
    assert OnnxTranslator(folder, search="greedy").translate(["ka lo"])  # another search may be chosen
    (folder / "decoder.onnx").unlink()
    with pytest.raises(UserError, match="decoder.onnx: file not found"):
        OnnxTranslator(folder, search="greedy")
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
    with pytest.raises(UserError, match="not an ONNX export"):
        OnnxTranslator(folder)
