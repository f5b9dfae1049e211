"""Re-exporting a package's public names without importing all of its modules (PEP 562)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for a package's `__init__`: `from nmt.data import Tokenizer`
    imports `nmt.data.tokenizer` on first use, so a command-line tool that needs one module
    does not pay for its siblings (and an export's loader does not import the training code).

    Args:
        package: the package's `__name__`.
        exports: public name -> the submodule (relative name) that defines it.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    def __dir__() -> list[str]:
        return sorted({*exports, *vars(sys.modules[package])})

    return __getattr__, __dir__
