"""Decoding: the searches, ensembles, batched translation, the `Translator` API, attention maps, export."""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "Decodable": "search",
    "Hypothesis": "search",
    "Search": "search",
    "GreedySearch": "search",
    "BeamSearch": "search",
    "Sampling": "search",
    "build_search": "search",
    "Ensemble": "ensemble",
    "translate_hypotheses": "batches",
    "translate_ids": "batches",
    "translate_lines": "batches",
    "load_model": "loading",
    "ForcedTarget": "forced",
    "force_decode_all": "forced",
    "PairScore": "translator",
    "Translator": "translator",
    "Translation": "translator",
    "AttentionExample": "attention_maps",
    "attention_examples": "attention_maps",
    "attention_figure": "attention_maps",
    "export_model": "export",
    "ExportedModel": "export",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
