"""The benchmark behind `nmt-benchmark`: measurements in fresh processes, FLOPs, the report."""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "BenchmarkOptions": "run",
    "run_benchmark": "run",
    "count_flops": "flops",
    "FlopCount": "flops",
    "to_markdown": "report",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
