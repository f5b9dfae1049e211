"""Resolved configs as flat dotted keys: what TensorBoard's HParams dashboard shows and what a
resumed run compares with the run it continues."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FlatValue = float | int | str | bool


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, FlatValue]:
    """A nested resolved config -> dotted keys with values the HParams dashboard accepts.

    `_target_` is kept (as the class path string): it is what tells runs apart, e.g. which
    attention scorer. Hydra's other underscore keys (`_partial_`, `_recursive_`, ...) say how
    to instantiate, not what was trained, and are dropped. None becomes "null"; lists and
    anything else not a bool, number or string become their `str`.

    Args:
        config: e.g. `OmegaConf.to_container(cfg, resolve=True)`.
        prefix: dotted path of `config` itself (for the recursion).
    """
    flat: dict[str, FlatValue] = {}
    for key, value in config.items():
        if key.startswith("_") and key != "_target_":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        elif value is None:
            flat[name] = "null"
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat
