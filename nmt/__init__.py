"""nmt: attention-based neural machine translation in PyTorch.

`from nmt import Translator` is the Python API (see `nmt.translator`); it is imported on first
use, so `import nmt` stays light for the command-line tools.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("Translator", "Translation"):
        from nmt import translator

        return getattr(translator, name)
    raise AttributeError(f"module 'nmt' has no attribute {name!r}")
