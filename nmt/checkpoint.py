"""Checkpoints: self-contained, written atomically, read without running pickled code.

A checkpoint holds everything needed to translate, so a `.pt` copied alone to another machine
translates raw text. It is a plain dict (`Checkpoint`), so `torch.load(weights_only=True)` reads
it: only tensors, numbers, strings, bytes, None and lists/tuples/dicts of them (numpy arrays
and other objects are refused).

The keys:

- `model` (dict[str, Tensor]): the model's `state_dict()`.
- `config` (dict): the resolved run config; `config["model"]` is the `_target_` config the
  model is instantiated from.
- `tokenizers` ({"src": bytes, "tgt": bytes}): the sentencepiece model files' bytes.
- `provenance` (dict): `provenance()`: versions, git commit, created time; `averaged_from`
  (the input files) in an average.
- `step` (int): optimizer updates done.
- `valid` (dict[str, float]): validation metrics at `step` (may be empty).
- `precision` (str, optional): what the weights were trained in (fp32, bf16, fp16: `auto`
  resolved); a resumed run keeps it.
- `training` (dict, optional): the trainer's resume state (optimizer, scheduler, scaler, rng,
  progress; `nmt.training.checkpointing.TrainingState`): opaque here, only carried.
"""

from __future__ import annotations

import functools
import importlib.metadata
import pickle
import pickletools
import platform
import subprocess
import warnings
import zipfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict

import torch

from nmt.utils.errors import UserError
from nmt.utils.fileio import atomic_path

DISTRIBUTION = "attention-nmt"  # the name pip knows the package by (the import name is `nmt`)
REQUIRED_KEYS = ("model", "config", "tokenizers")
SIDES = ("src", "tgt")
_SOURCE_DIR = Path(__file__).resolve().parent
# Pickle opcodes that import a name or call/build an object: what a crafted file needs to run code.
_OBJECT_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"})
MOVED_TARGETS = {
    "nmt.search.": "nmt.decoding.search.",
    "nmt.schedulers.": "nmt.training.schedulers.",
    "nmt.tokenizer.": "nmt.data.tokenizer.",
    "nmt.training.TrainerConfig": "nmt.training.trainer.TrainerConfig",
}
"""`_target_` prefixes of checkpoints written before the package took its layered layout
(2026-12-04) -> where those classes live now: old checkpoints keep loading."""


class TokenizerModels(TypedDict):
    """The sentencepiece model files, as bytes (`Tokenizer.from_bytes` reads them)."""

    src: bytes
    tgt: bytes


class _CheckpointRequired(TypedDict):
    model: dict[str, torch.Tensor]
    config: dict[str, Any]
    tokenizers: TokenizerModels
    provenance: dict[str, Any]
    step: int
    valid: dict[str, float]


class Checkpoint(_CheckpointRequired, total=False):
    """The payload of a checkpoint file; see the table in the module docstring."""

    precision: str
    training: dict[str, Any]


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(_SOURCE_DIR), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def _source_provenance() -> dict[str, Any]:
    # The commit only counts if this very file is tracked: an installed copy inside some other
    # repository (a venv in a project folder) must not borrow that repository's commit.
    tracked = _git("ls-files", "--error-unmatch", "--", Path(__file__).name) is not None
    commit = _git("rev-parse", "HEAD") if tracked else None
    # Untracked files (data, runs) are left out: only edits to tracked code make a run unrepeatable.
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "nmt": _version(DISTRIBUTION),
        **{name: _version(name) for name in ("sentencepiece", "sacrebleu")},
        # torch's own version names the build (2.13.0+cpu, 2.11.0+cu130), which its package
        # metadata may omit; a str, since weights-only loading refuses a TorchVersion object
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "git_commit": commit,
        "git_dirty": None if status is None else status != "",
    }


def provenance() -> dict[str, Any]:
    """What produced a checkpoint: package versions, the source tree's git commit, the time.

    `git_commit` and `git_dirty` are None when the package does not run from a git checkout.
    Versions and git state are computed once per process; `created` (UTC, ISO 8601) each call.
    """
    return {**_source_provenance(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def build_checkpoint(
    model_state: dict[str, torch.Tensor],
    config: dict[str, Any],
    tokenizers: TokenizerModels,
    step: int,
    valid: dict[str, float],
    training: dict[str, Any] | None = None,
    precision: str | None = None,
) -> Checkpoint:
    """Assembles a payload and stamps it with `provenance()`.

    Args:
        model_state: the model's `state_dict()`.
        config: the resolved run config (plain containers); `config["model"]` rebuilds the model.
        tokenizers: the source and target sentencepiece models' bytes (`Tokenizer.model_bytes`).
        step: optimizer updates done.
        valid: validation metrics at `step`, or {}.
        training: resume state for the trainer; leave it out of checkpoints meant for translation
            only (it is most of the file's size).
        precision: the precision the weights were trained in, if known.
    """
    payload: Checkpoint = {
        "model": model_state,
        "config": config,
        "tokenizers": tokenizers,
        "provenance": provenance(),
        "step": step,
        "valid": valid,
    }
    if precision is not None:
        payload["precision"] = precision
    if training is not None:
        payload["training"] = training
    return payload


def save_checkpoint(path: str | Path, payload: Checkpoint) -> None:
    """Writes `payload` with `torch.save`; the old file survives a crash midway."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _makes_objects(path: Path) -> bool:
    """Whether the file is a complete pickle that imports names or builds objects.

    Read with `pickletools`, which parses opcodes without executing any of them.
    """
    try:
        if zipfile.is_zipfile(path):  # torch.save's format: the pickle is `<name>/data.pkl`
            with zipfile.ZipFile(path) as archive:
                data = archive.read(next(n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"))
        else:
            data = path.read_bytes()
        return any(opcode.name in _OBJECT_OPCODES for opcode, _, _ in pickletools.genops(data))
    except Exception:  # not a complete pickle: damaged, not refused for its content
        return False


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Loads a checkpoint without executing pickled code, and checks it holds what translation needs.

    Raises:
        UserError: if the file is missing, damaged, holds Python objects beyond plain data, or
            lacks `model`, `config` or the tokenizers.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # torch warns of a pickle protocol it did not write, then refuses
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if str(error).startswith("Weights only load failed") and _makes_objects(path):
            raise UserError(
                f"{path}: refused to load: it holds Python objects that could run code "
                "(only tensors and plain data are accepted)"
            ) from None
        raise UserError(f"{path}: not a readable checkpoint (damaged, or not written by torch.save)") from None
    except Exception as error:  # torch raises many types for a damaged file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(payload, dict):
        raise UserError(f"{path}: not an nmt checkpoint (it holds a {type(payload).__name__}, not a dict)")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise UserError(f"{path}: not an nmt checkpoint (no {', '.join(missing)})")
    tokenizers = payload["tokenizers"]
    if not isinstance(tokenizers, dict) or not all(isinstance(tokenizers.get(side), bytes) for side in SIDES):
        raise UserError(f"{path}: not an nmt checkpoint (tokenizers must hold src and tgt model bytes)")
    payload["config"] = current_targets(payload["config"])
    return payload


def current_targets(config: Any) -> Any:
    """`config` with every `_target_` of a moved class (`MOVED_TARGETS`) renamed to its home now."""
    if isinstance(config, dict):
        return {key: _moved(value) if key == "_target_" else current_targets(value) for key, value in config.items()}
    if isinstance(config, list):
        return [current_targets(item) for item in config]
    return config


def _moved(target: Any) -> Any:
    for old, new in MOVED_TARGETS.items():
        if isinstance(target, str) and target.startswith(old):
            return new + target.removeprefix(old)
    return target


def _check_averageable(path: Path, payload: Checkpoint, first_path: Path, first: Checkpoint) -> None:
    if payload["tokenizers"] != first["tokenizers"]:
        raise UserError(f"{path}: its tokenizers differ from those of {first_path} (average checkpoints of one run)")
    keys, first_keys = set(payload["model"]), set(first["model"])
    if keys - first_keys:
        raise UserError(f"{path}: weight {min(keys - first_keys)} is not in {first_path} (not the same model)")
    if first_keys - keys:
        raise UserError(f"{path}: no weight {min(first_keys - keys)}, which {first_path} has (not the same model)")
    for key, tensor in payload["model"].items():
        if tensor.shape != first["model"][key].shape:
            raise UserError(
                f"{path}: weight {key} has shape {tuple(tensor.shape)}, "
                f"{tuple(first['model'][key].shape)} in {first_path} (not the same model)"
            )


def average_checkpoints(paths: Sequence[str | Path]) -> Checkpoint:
    """Averages the weights of several checkpoints of one model (e.g. the last K of a run).

    Floating tensors are summed in float64 and cast back, so fp16/bf16/fp32 weights lose no
    precision to the summing; integer and bool buffers (counters) come from the last.
    Config, tokenizers and step come from the last checkpoint; `valid` is empty (the average has
    not been validated) and there is no `training` state (an average is not a point to resume
    from). `provenance["averaged_from"]` lists the inputs. Files are read one at a time.

    Raises:
        UserError: if there are no paths, a file does not load, or one's weights or tokenizers
            do not match the first's; the message names the odd file.
    """
    if not paths:
        raise UserError("no checkpoints to average")
    paths = [Path(p) for p in paths]
    first = last = load_checkpoint(paths[0])
    sums = {key: t.to(torch.float64, copy=True) for key, t in first["model"].items() if t.is_floating_point()}
    for path in paths[1:]:
        last = load_checkpoint(path)
        _check_averageable(path, last, paths[0], first)
        for key, total in sums.items():
            total += last["model"][key].to(torch.float64)
    model = {key: (sums[key] / len(paths)).to(t.dtype) if key in sums else t for key, t in last["model"].items()}
    averaged = build_checkpoint(
        model, last["config"], last["tokenizers"], last.get("step", 0), {}, precision=last.get("precision")
    )
    averaged["provenance"]["averaged_from"] = [str(p) for p in paths]
    return averaged
