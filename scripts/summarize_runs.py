"""Prints a Markdown table of finished runs: python scripts/summarize_runs.py runs/*/* multirun/*/*/*

For each run directory, from its `summary.json` (no checkpoint is opened): the experiment name,
decoder style and scorer, parameters, steps, the best validation step with its BLEU (greedy) and
perplexity, and the test scores.
"""

import json
import sys
from pathlib import Path

from nmt.run_layout import RunLayout


def row(run_dir: Path) -> str:
    """One table row from a run's summary.json."""
    summary = json.loads(RunLayout(run_dir).summary.read_text())
    config, valid, test = summary["config"], summary["best_valid"], summary["test"]
    scorer = (config["model"]["decoder"].get("scorer") or {}).get("_target_", "none").rsplit(".", 1)[-1]
    style = config["model"]["decoder"]["_target_"].rsplit(".", 1)[-1]
    return (f"| {config['name']} | {style} | {scorer} | {summary['parameters']:,} | {summary['steps']} "
            f"| {summary['best_step']} | {valid['bleu']:.2f} | {valid['ppl']:.2f} | {test['bleu']:.2f} "
            f"| {test['chrf']:.2f} | {run_dir} |")


def main(run_dirs: list[str]) -> None:
    print("| name | decoder | scorer | parameters | steps | best step | valid BLEU (greedy) | valid ppl "
          "| test BLEU | test chrF | run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run_dir in map(Path, run_dirs):
        if RunLayout(run_dir).summary.is_file():
            print(row(run_dir))
        else:
            print(f"skipped: {run_dir}: no summary.json (unfinished run?)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
