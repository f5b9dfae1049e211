"""Analysis of finished runs: results tables, BLEU by length, attention comparisons, sweep reports."""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "find_runs": "results",
    "group_runs": "results",
    "systems_table": "results",
    "runs_table": "results",
    "Table": "results",
    "bleu_by_length": "length",
    "length_figure": "length",
    "attention_comparison": "attention_figure",
    "SweepReport": "sweep",
    "eflomal_alignments": "silver_alignments",
    "silver_table": "silver_alignments",
    "record_failure": "sweep",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
