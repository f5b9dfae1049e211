"""Serving a model: the attention explorer (a page and a JSON API on a local HTTP server)."""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "ApiError": "api",
    "ExplorerApi": "api",
    "Limits": "api",
    "make_server": "server",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
