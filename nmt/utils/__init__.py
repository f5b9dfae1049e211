"""Utilities every layer may use: user errors, atomic files, precision, random state, device,
heap, compilation, flat configs. Imports nothing else from nmt.
"""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "UserError": "errors",
    "atomic_path": "fileio",
    "atomic_directory": "fileio",
    "write_bytes_atomically": "fileio",
    "file_sha256": "fileio",
    "PRECISIONS": "precision",
    "PrecisionChoice": "precision",
    "choose_precision": "precision",
    "native_16_bit": "precision",
    "autocast": "precision",
    "seed_everything": "rng",
    "rng_state": "rng",
    "set_rng_state": "rng",
    "resolve_device": "device",
    "describe_machine": "device",
    "compiled": "compilation",
    "trim_heap": "heap",
    "bound_onednn_cache": "heap",
    "flatten_config": "config",
    "lazy_exports": "exports",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
