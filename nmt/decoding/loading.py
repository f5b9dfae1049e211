"""A trained model and its tokenizers, rebuilt from a checkpoint file or a model folder alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nmt.checkpoint import SIDES, load_checkpoint
from nmt.data.tokenizer import Tokenizer
from nmt.modules.seq2seq import Seq2Seq
from nmt.utils.errors import UserError


def load_model(
    checkpoint_path: str | Path, device: torch.device | str = "cpu"
) -> tuple[Seq2Seq, Tokenizer, Tokenizer, dict]:
    """Rebuilds a trained model and its tokenizers from a checkpoint file alone, or from a model
    folder (`nmt.decoding.pretrained`: safetensors, no pickle).

    The checkpoint holds the sentencepiece models and the model's `_target_` config (see
    `nmt.checkpoint`), so no run directory or data is needed: a `.pt` copied to another
    machine translates raw text.

    Returns:
        The model (in eval mode), source and target tokenizers, and the run's config.

    Raises:
        UserError: naming the file, if it is not a checkpoint or its config does not rebuild a
            model its weights fit.
    """
    from nmt.decoding.pretrained import is_model_folder, load_pretrained

    if is_model_folder(checkpoint_path):
        return load_pretrained(checkpoint_path, device)
    checkpoint_path = Path(checkpoint_path)
    payload = load_checkpoint(checkpoint_path)
    src_tokenizer, tgt_tokenizer = (
        Tokenizer.from_bytes(payload["tokenizers"][side], f"{checkpoint_path} (tokenizers.{side})") for side in SIDES
    )
    model = build_model(payload["config"], src_tokenizer, tgt_tokenizer, str(checkpoint_path))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise UserError(
            f"{checkpoint_path}: weights do not fit the model of its config ({str(error).splitlines()[0]})"
        ) from None
    return model.to(device).eval(), src_tokenizer, tgt_tokenizer, payload["config"]


def build_model(config: dict, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, source: str) -> Seq2Seq:
    """The (untrained) model of a run config's `model` section, sized to the tokenizers.

    Raises:
        UserError: naming `source` (the file the config came from), if it has no model section
            or the section does not build.
    """
    if not isinstance(config.get("model"), dict):
        raise UserError(f"{source}: its config has no model section to rebuild the model from")
    foreign = next(_foreign_targets(config["model"]), None)
    if foreign is not None:  # instantiate would import and call it: a file must not run code
        raise UserError(f"{source}: its model config names {foreign!r}; only nmt's own classes are built")
    try:
        return instantiate(
            OmegaConf.create(config["model"]),
            src_vocab_size=src_tokenizer.vocab_size,
            tgt_vocab_size=tgt_tokenizer.vocab_size,
        )
    except InstantiationException as error:  # e.g. a `_target_` this version of nmt does not have
        raise UserError(f"{source}: its model config does not build ({str(error).strip().splitlines()[0]})") from None


def _foreign_targets(config: Any) -> Iterator[str]:
    """Every `_target_` in a (nested) config that is not one of nmt's own classes."""
    if isinstance(config, dict):
        for key, value in config.items():
            if key == "_target_" and not (isinstance(value, str) and value.startswith("nmt.")):
                yield str(value)
            else:
                yield from _foreign_targets(value)
    elif isinstance(config, list):
        for item in config:
            yield from _foreign_targets(item)
