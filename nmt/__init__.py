"""nmt: attention-based neural machine translation in PyTorch.

`from nmt import Translator` is the Python API (`nmt.decoding.translator`). The packages are
layers, each importing only from the ones before it: `utils` -> `data` -> `modules` ->
`checkpoint`, `metrics` -> `decoding` -> `training` -> `analysis` -> `benchmark` -> `cli`.
"""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "Translator": "decoding.translator",
    "Translation": "decoding.translator",
    "UserError": "utils.errors",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
