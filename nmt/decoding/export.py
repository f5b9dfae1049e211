"""Exporting a trained model for inference without the training code.

An export is a folder that translates with torch and sentencepiece alone:

- `model.pt`: a TorchScript module with two methods, sharing one copy of the weights:
  `start(src (B, S), src_lengths (B,)) -> (memory, state)` and
  `decode_step(prev_tokens (B,), state, memory) -> (log_probs (B, V), state, attention (B, S))`;
  memory is the tuple (keys, values, mask), state a tuple in the manifest's `state` order.
- `src.model`, `tgt.model`: the sentencepiece models.
- `manifest.json`: format version, special ids, vocabulary sizes, state names in order,
  `max_source_length` (location attention, else null), the run's `decode` config; written
  last, so a folder without it is an unfinished export.

Why TorchScript tracing and not `torch.export`: the encoder runs its GRU over packed sequences,
whose sizes depend on the lengths' values; `torch.export` stops there (torch 2.13), and making
it pass would mean a second, unpacked copy of the encoder. Tracing runs the model's own code, and
`export_model` checks that the traced program reproduces the model (up to float rounding) on a
batch of another size and length than the one it was traced on. Tracing bakes the device into the graph (the
packing sorts on it), so an export runs on the CPU it was traced on.

`ExportedModel` gives the search its protocol (`start`, `next_token_scores`, `reorder`) over `model.pt`;
this module imports no training code at load time (`export_model` imports it when called).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer
from nmt.utils.errors import UserError
from nmt.utils.fileio import atomic_path, write_bytes_atomically

if TYPE_CHECKING:
    from nmt.modules.seq2seq import Seq2Seq

FORMAT_VERSION = 1
PROGRAM, MANIFEST = "model.pt", "manifest.json"
DEVICE = "cpu"  # the device the programs are traced on, and so the one they run on
# torch warns that TorchScript is deprecated in favour of torch.export, which cannot export packing.
_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"

Memory = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""keys (B, S, *), values (B, S, K), mask (B, S): the fields of `nmt.modules.decoder.Memory`."""
State = tuple[torch.Tensor, ...]
"""The decoder state's tensors in the manifest's `state` order, batch in dimension 0."""


class Program(nn.Module):
    """`Seq2Seq.start` and `decode_step` over tensors and tuples only, the form tracing keeps.

    Args:
        model: the model, in eval mode.
        state_names: the decoder state's keys, in the order the tuples hold them.
    """

    def __init__(self, model: Seq2Seq, state_names: list[str]) -> None:
        super().__init__()
        from nmt.modules.decoder import Memory as ModelMemory  # training code: needed to export only

        self.model, self.state_names, self.memory_type = model, state_names, ModelMemory

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Memory, State]:
        memory, state = self.model.start(src, src_lengths)
        return (memory.keys, memory.values, memory.mask), tuple(state[name] for name in self.state_names)

    def decode_step(
        self, prev_tokens: torch.Tensor, state: State, memory: Memory
    ) -> tuple[torch.Tensor, State, torch.Tensor]:
        log_probs, state_dict, attention = self.model.decode_step(
            prev_tokens, dict(zip(self.state_names, state)), self.memory_type(*memory)
        )
        return log_probs, tuple(state_dict[name] for name in self.state_names), attention


def probe_batch(vocab_size: int, lengths: list[int], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of random word ids ending in EOS: (B, S) ids and (B,) lengths."""
    src = torch.full((len(lengths), max(lengths)), PAD_ID, dtype=torch.long)
    for row, length in enumerate(lengths):
        src[row, : length - 1] = torch.randint(EOS_ID + 1, vocab_size, (length - 1,), generator=generator)
        src[row, length - 1] = EOS_ID
    return src, torch.tensor(lengths)


def probe_batches(
    model: Seq2Seq, src_vocab_size: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The batch an export is traced on and the one it is checked on: other sizes and lengths
    (within the model's longest source), so a size taken for a constant shows up in the check."""
    generator = torch.Generator().manual_seed(0)
    longest = min(11, model.max_source_length or 11)
    traced = probe_batch(src_vocab_size, [min(n, longest) for n in (7, 3, 5)], generator)
    return traced, probe_batch(src_vocab_size, [min(n, longest) for n in (2, 11, 4, 9, 1)], generator)


def _check_generalizes(
    traced: torch.jit.ScriptModule, program: Program, src: torch.Tensor, src_lengths: torch.Tensor, steps: int = 4
) -> None:
    """Raises UserError unless `traced` reproduces `program` on a probe, over a few greedy steps.

    The probe has another batch size and length than the trace's, so a size the tracer took
    for a constant shows up here instead of in a user's translations.
    """
    memory, state = traced.start(src, src_lengths)
    expected_memory, expected_state = program.start(src, src_lengths)
    outputs, expected = [memory, state], [expected_memory, expected_state]
    tokens = torch.full((src.size(0),), BOS_ID, dtype=torch.long)
    for _ in range(steps):
        log_probs, state, attention = traced.decode_step(tokens, state, memory)
        expected_log_probs, expected_state, expected_attention = program.decode_step(
            tokens, expected_state, expected_memory
        )
        outputs += [log_probs, state, attention]
        expected += [expected_log_probs, expected_state, expected_attention]
        tokens = expected_log_probs.argmax(-1)
    try:
        torch.testing.assert_close(outputs, expected)
    except AssertionError as error:
        raise UserError(
            f"the traced program differs from the model on a batch of another shape, so this "
            f"model cannot be exported ({str(error).strip().splitlines()[0]})"
        ) from None


def _trace(model: Seq2Seq, src_vocab_size: int) -> tuple[torch.jit.ScriptModule, list[str]]:
    """Traces `start` and `decode_step` into one TorchScript module and checks it generalizes.

    Args:
        model: in eval mode, on the CPU.
        src_vocab_size: the range of the random source ids the probes are made of.

    Returns:
        The traced module and the decoder state's names, in the order its tuples hold them.

    Raises:
        UserError: if the traced program does not reproduce the model on another shape.
    """
    (src, src_lengths), probe = probe_batches(model, src_vocab_size)
    with torch.no_grad():
        program = Program(model, list(model.start(src, src_lengths)[1]))
        memory, state = program.start(src, src_lengths)
        bos = torch.full((src.size(0),), BOS_ID, dtype=torch.long)
        with warnings.catch_warnings():
            # Packing turns the lengths into Python numbers, which the tracer warns of: what those
            # warnings are about, _check_generalizes tests. torch marks tracing deprecated.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=_DEPRECATED)
            traced = torch.jit.trace_module(
                program, {"start": (src, src_lengths), "decode_step": (bos, state, memory)}, check_trace=False
            )
        _check_generalizes(traced, program, *probe)
    return traced, program.state_names


def export_model(checkpoint_path: str | Path, output_dir: str | Path) -> dict[str, Any]:
    """Writes the inference export of a checkpoint into `output_dir` (see the module docstring).

    Files already in `output_dir` with the export's names are replaced.

    Returns:
        The manifest written.

    Raises:
        UserError: if the checkpoint does not load, `output_dir` is a file, or the model does not
            trace into a program that reproduces it.
    """
    from nmt.decoding.loading import load_model  # training code: needed to export, not to load an export

    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"{output_dir}: exists and is not a folder")
    model, src_tokenizer, tgt_tokenizer, config = load_model(checkpoint_path, DEVICE)
    traced, state_names = _trace(model, src_tokenizer.vocab_size)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / MANIFEST).unlink(missing_ok=True)  # the folder is an unfinished export until the end
    with atomic_path(output_dir / PROGRAM) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATED)
        torch.jit.save(traced, str(tmp))
    for side, tokenizer in (("src", src_tokenizer), ("tgt", tgt_tokenizer)):
        write_bytes_atomically(output_dir / f"{side}.model", tokenizer.model_bytes)
    manifest = manifest_of(model, src_tokenizer, tgt_tokenizer, config, state_names)
    write_bytes_atomically(output_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


def manifest_of(
    model: Seq2Seq, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, config: dict[str, Any], state_names: list[str]
) -> dict[str, Any]:
    """What an export's `manifest.json` says of the model, whatever the program's format."""
    return {
        "format": FORMAT_VERSION,
        "device": DEVICE,
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        "vocab_size": {"src": src_tokenizer.vocab_size, "tgt": tgt_tokenizer.vocab_size},
        "memory": ["keys", "values", "mask"],
        "state": state_names,
        "max_source_length": model.max_source_length,  # its check is Python, which tracing drops
        "decode": config.get("decode"),
        "torch": torch.__version__,
    }


class ExportedModel:
    """The model protocol the search drives (`start`, `next_token_scores`, `reorder`), over an export.

    Memory and state are tuples of tensors (`Memory`, `State`); the search treats them as opaque.

    Args:
        program: the traced `model.pt`.
        manifest: the export's manifest.
        src_tokenizer: the export's source sentencepiece model.
        tgt_tokenizer: its target sentencepiece model.
    """

    def __init__(
        self,
        program: torch.jit.ScriptModule,
        manifest: dict[str, Any],
        src_tokenizer: Tokenizer,
        tgt_tokenizer: Tokenizer,
    ) -> None:
        self.program, self.manifest = program, manifest
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer

    @classmethod
    def load(cls, path: str | Path) -> ExportedModel:
        """Loads an export folder written by `export_model`.

        Raises:
            UserError: naming the folder or file, if it is not a complete export of this format.
        """
        path = Path(path)
        if not (path / MANIFEST).is_file() or not (path / PROGRAM).is_file():
            raise UserError(
                f"{path}: not a complete model export (needs {MANIFEST} and {PROGRAM}; write one with export_model)"
            )
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UserError(f"{path / MANIFEST}: not valid JSON ({error})") from None
        if manifest.get("format") != FORMAT_VERSION:
            raise UserError(
                f"{path / MANIFEST}: export format {manifest.get('format')!r}, this version of nmt "
                f"reads {FORMAT_VERSION} (export the checkpoint again)"
            )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_DEPRECATED)
            program = torch.jit.load(str(path / PROGRAM), map_location=manifest["device"])
        return cls(program, manifest, Tokenizer(path / "src.model"), Tokenizer(path / "tgt.model"))

    def eval(self) -> ExportedModel:
        """Nothing to switch: the program was traced in eval mode (no dropout). The search asks for it."""
        return self

    @torch.no_grad()
    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Memory, State]:
        """Encodes the source once: src (B, S), src_lengths (B,) -> memory and initial state.

        Raises:
            ValueError: if the source is longer than location attention reads (the model's own
                check, which the traced program lacks).
        """
        limit = self.manifest["max_source_length"]
        if limit is not None and src.size(1) > limit:
            raise ValueError(f"location attention: source of {src.size(1)} tokens exceeds max_source_length={limit}")
        return self.program.start(src, src_lengths)

    @torch.no_grad()
    def decode_step(
        self, prev_tokens: torch.Tensor, state: State, memory: Memory
    ) -> tuple[torch.Tensor, State, torch.Tensor]:
        """y(i-1) (B,) -> log-probabilities (B, V) of the next token, the new state, attention (B, S)."""
        return self.program.decode_step(prev_tokens, state, memory)

    def next_token_scores(
        self, prev_tokens: torch.Tensor, state: State, memory: Memory
    ) -> tuple[torch.Tensor, torch.Tensor, State, torch.Tensor]:
        """What the search asks for (`nmt.decoding.search.Decodable`): the log-probabilities as the scores,
        with zero normalizers."""
        log_probs, state, attention = self.decode_step(prev_tokens, state, memory)
        return log_probs, log_probs.new_zeros(log_probs.size(0)), state, attention

    def reorder(
        self, memory: Memory | None, state: State | None, index: torch.Tensor
    ) -> tuple[Memory | None, State | None]:
        """Selects (or repeats) batch rows, e.g. following backpointers or dropping finished
        sentences; one given as None stays None."""
        if memory is not None:
            memory = tuple(tensor.index_select(0, index) for tensor in memory)
        return memory, None if state is None else tuple(tensor.index_select(0, index) for tensor in state)
