"""Metrics: sacreBLEU scores and significance tests; attention diagnostics, symmetrized alignments and AER."""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "Scores": "bleu",
    "score": "bleu",
    "paired_bootstrap": "bleu",
    "group_bootstrap": "bleu",
    "is_better": "bleu",
    "alignment_error_rate": "alignment",
    "argmax_alignment": "alignment",
    "grow_diag_final": "alignment",
    "summarize_attention": "alignment",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
