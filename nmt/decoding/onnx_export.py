"""Exporting a model as two ONNX graphs that run without PyTorch (`nmt.decoding.onnx_runtime`).

An ONNX export is a folder:

- `encoder.onnx`: `src (B, S) int64, src_lengths (B,) int64 -> keys, values, mask, *state`;
- `decoder.onnx`: one decoder step with the attention, `prev_tokens (B,) int64, *state, keys,
  values, mask -> log_probs (B, V), *state, attention (B, S)` (`Seq2Seq.decode_step`);
- `src.model`, `tgt.model`, and `manifest.json` (as the TorchScript export's, `format: onnx`),
  written last;
- with `quantize=True`, `encoder.int8.onnx` and `decoder.int8.onnx` beside them: the weights of
  the matmuls and the recurrence in int8 (ONNX Runtime's dynamic quantization), for CPU serving.

Why the TorchScript-based exporter of `torch.onnx` and not `torch.export`: the encoder runs its
GRU over packed sequences, whose sizes depend on the lengths' values. `torch.export` cannot trace
that, and unrolling the recurrence would fix the source length. The exporter maps packing onto
ONNX's own GRU/LSTM operator with per-row `sequence_lens`, so the graph takes any batch and any
length. As for TorchScript, the graphs are checked against the model on a batch of another shape
before anything is written (`_check_generalizes`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nmt.data.tokenizer import BOS_ID
from nmt.decoding.export import DEVICE, Program, manifest_of, probe_batches
from nmt.decoding.translator import decode_config
from nmt.utils.errors import UserError
from nmt.utils.fileio import write_bytes_atomically

if TYPE_CHECKING:
    from nmt.modules.seq2seq import Seq2Seq

ENCODER, DECODER, MANIFEST = "encoder.onnx", "decoder.onnx", "manifest.json"
QUANTIZED = {ENCODER: "encoder.int8.onnx", DECODER: "decoder.int8.onnx"}
OPSET = 17
MEMORY = ("keys", "values", "mask")


class _Encoder(nn.Module):
    def __init__(self, program: Program) -> None:
        super().__init__()
        self.program = program

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        memory, state = self.program.start(src, src_lengths)
        return (*memory, *state)


class _Decoder(nn.Module):
    def __init__(self, program: Program) -> None:
        super().__init__()
        self.program = program

    def forward(self, prev_tokens: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        states, memory = tensors[: -len(MEMORY)], tensors[-len(MEMORY) :]
        program = self.program
        logits, state, weights = program.model.decoder.decode_step(
            prev_tokens, dict(zip(program.state_names, states)), program.memory_type(*memory)
        )
        # Seq2Seq.decode_step's eager log-probabilities, less its zero normalizers, which the
        # exporter would freeze at the traced batch size
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        return (log_probs, *(state[name] for name in program.state_names), weights)


def export_onnx(checkpoint_path: str | Path, output_dir: str | Path, quantize: bool = False) -> dict[str, Any]:
    """Writes the ONNX export of a checkpoint (or model folder) into `output_dir`.

    Returns:
        The manifest written.

    Raises:
        UserError: if the checkpoint does not load, `output_dir` is a file, onnxruntime is not
            installed, or the graphs do not reproduce the model on another batch shape.
    """
    from nmt.decoding.loading import load_model

    try:
        import onnxruntime  # noqa: F401 - checked before any work: the export is verified with it
    except ImportError:
        raise UserError("the ONNX export needs onnx and onnxruntime: pip install 'attention-nmt[onnx]'") from None
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"{output_dir}: exists and is not a folder")
    model, src_tokenizer, tgt_tokenizer, config = load_model(checkpoint_path, DEVICE)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / MANIFEST).unlink(missing_ok=True)  # an unfinished export until the end
    state_names = _export_graphs(model, src_tokenizer.vocab_size, output_dir)
    if quantize:
        _quantize(output_dir)
    for side, tokenizer in (("src", src_tokenizer), ("tgt", tgt_tokenizer)):
        write_bytes_atomically(output_dir / f"{side}.model", tokenizer.model_bytes)
    manifest = {
        **manifest_of(model, src_tokenizer, tgt_tokenizer, config, state_names),
        "decode": decode_config(config.get("decode"), checkpoint_path),  # older formats as the Translator reads them
        "format": "onnx",
        "graphs": {"encoder": ENCODER, "decoder": DECODER},
        "quantized": {"encoder": QUANTIZED[ENCODER], "decoder": QUANTIZED[DECODER]} if quantize else None,
        "opset": OPSET,
    }
    write_bytes_atomically(output_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


def _export_graphs(model: Seq2Seq, src_vocab_size: int, output_dir: Path) -> list[str]:
    """Writes the two graphs (traced on one batch, checked on another); returns the state's names."""
    (src, src_lengths), probe = probe_batches(model, src_vocab_size)
    with torch.no_grad():
        program = Program(model, list(model.start(src, src_lengths)[1]))
        memory, state = program.start(src, src_lengths)
        names = program.state_names
        bos = torch.full((src.size(0),), BOS_ID, dtype=torch.long)
        batch, source = {0: "batch"}, {0: "batch", 1: "source"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on packing and deprecations; the check below decides
            torch.onnx.export(
                _Encoder(program).eval(),  # the exporter restores the wrapper's mode, and its model's
                (src, src_lengths),
                str(output_dir / ENCODER),
                dynamo=False,
                opset_version=OPSET,
                input_names=["src", "src_lengths"],
                output_names=[*MEMORY, *names],
                dynamic_axes={
                    "src": source,
                    "src_lengths": batch,
                    **dict.fromkeys(MEMORY, source),
                    **_state_axes(names),
                },
            )
            torch.onnx.export(
                _Decoder(program).eval(),
                (bos, *state, *memory),
                str(output_dir / DECODER),
                dynamo=False,
                opset_version=OPSET,
                input_names=["prev_tokens", *names, *MEMORY],
                output_names=["log_probs", *[f"next_{name}" for name in names], "attention"],
                dynamic_axes={
                    "prev_tokens": batch,
                    **_state_axes(names),
                    **dict.fromkeys(MEMORY, source),
                    "log_probs": batch,
                    **_state_axes([f"next_{name}" for name in names]),
                    "attention": source,
                },
            )
        _check_generalizes(output_dir, program, *probe)
    return names


def _state_axes(names: list[str]) -> dict[str, dict[int, str]]:
    """Every state tensor has the batch first; a coverage state also the source length."""
    return {name: {0: "batch", 1: "source"} if name == "coverage" else {0: "batch"} for name in names}


def _check_generalizes(
    output_dir: Path, program: Program, src: torch.Tensor, src_lengths: torch.Tensor, steps: int = 4
) -> None:
    """Raises UserError unless ONNX Runtime, running the graphs, reproduces the model on a probe of
    another batch size and length than the export's, over a few greedy steps."""
    from nmt.decoding.onnx_runtime import OnnxModel

    onnx_model = OnnxModel.load(output_dir, manifest={"state": program.state_names})
    memory, state = onnx_model.start(src.numpy(), src_lengths.numpy())
    expected_memory, expected_state = program.start(src, src_lengths)
    pairs = [(memory, expected_memory), (state, expected_state)]
    tokens = np.full(src.size(0), BOS_ID, dtype=np.int64)
    for _ in range(steps):
        log_probs, _, state, attention = onnx_model.next_token_scores(tokens, state, memory)
        expected_log_probs, expected_state, expected_attention = program.decode_step(
            torch.from_numpy(tokens), expected_state, expected_memory
        )
        pairs += [((log_probs, state, attention), (expected_log_probs, expected_state, expected_attention))]
        tokens = expected_log_probs.argmax(-1).numpy()
    try:
        for found, wanted in pairs:
            torch.testing.assert_close(_as_tensors(found), _as_tensors(wanted), rtol=1e-4, atol=1e-5)
    except AssertionError as error:
        raise UserError(
            f"the ONNX graphs differ from the model on a batch of another shape, so this model cannot be exported "
            f"to ONNX ({str(error).strip().splitlines()[0]})"
        ) from None


def _as_tensors(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, (tuple, list)):
        return [_as_tensors(item) for item in value]
    return value


def _quantize(output_dir: Path) -> None:
    """Dynamic int8 quantization of both graphs' weights (activations stay fp32, quantized on the fly)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for graph, quantized in QUANTIZED.items():
        quantize_dynamic(str(output_dir / graph), str(output_dir / quantized), weight_type=QuantType.QInt8)
