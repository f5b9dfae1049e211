"""Prints a Markdown table of finished runs: python scripts/summarize_runs.py runs/*/* multirun/*/*/*

For each run directory: the experiment name, decoder style and scorer, the step of the best
checkpoint with its validation BLEU (greedy) and perplexity, and the test scores of scores.json.
"""

import json
import sys
from pathlib import Path

from nmt.checkpoint import load_checkpoint
from nmt.errors import UserError


def row(run_dir: Path) -> str:
    """One table row from a run's best checkpoint and scores.json."""
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    config, valid = best["config"], best["valid"]
    scorer = (config["model"]["decoder"].get("scorer") or {}).get("_target_", "none").rsplit(".", 1)[-1]
    style = config["model"]["decoder"]["_target_"].rsplit(".", 1)[-1]
    scores_file = run_dir / "scores.json"
    test = json.loads(scores_file.read_text()) if scores_file.is_file() else {"bleu": float("nan"), "chrf": float("nan")}
    return (f"| {config['name']} | {style} | {scorer} | {best['step']} | {valid['bleu']:.2f} | {valid['ppl']:.2f} "
            f"| {test['bleu']:.2f} | {test['chrf']:.2f} | {run_dir} |")


def main(run_dirs: list[str]) -> None:
    print("| name | decoder | scorer | best step | valid BLEU (greedy) | valid ppl | test BLEU | test chrF | run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run_dir in map(Path, run_dirs):
        try:
            print(row(run_dir))
        except UserError as error:
            print(f"skipped: {error}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
