"""How well attention aligns, against eflomal's silver alignments of Multi30k (no download):

    pip install eflomal
    python scripts/alignment_benchmark.py --system bahdanau_best=runs/<run>/checkpoints/best.pt \\
        [--system NAME=CHECKPOINT ...] [--reverse NAME=CHECKPOINT] --output docs/results/alignment

eflomal aligns Multi30k's training pairs and test_2016_flickr together, in both directions; their
grow-diag-final is the silver reference (`nmt.analysis.silver_alignments`). Each system aligns the
test set with the references as given targets (`Translator.align`: forced decoding, each target
word to the source word it attends to most); `--reverse` adds an en->de model of the same name's
system, symmetrized with it. Prints a Markdown table (AER, precision, recall; the aligner against
its own reference and across its directions first) and writes it with the figures as JSON.

Gold AER needs gold alignments: the RWTH German-English set (508 Europarl sentences, downloaded
under its own licence, never committed) scores with `nmt-score --alignments` and `nmt-aer`; see
docs/decoding.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from nmt import Translator
from nmt.analysis.silver_alignments import eflomal_alignments, silver_table
from nmt.data.corpus import read_parallel
from nmt.utils.errors import UserError


def _system(text: str) -> tuple[str, str]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=CHECKPOINT")
    return name, path


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    data = Path(args.data)
    train, test = (
        read_parallel(data / "train.de.gz", data / "train.en.gz"),
        read_parallel(data / f"{args.test}.de.gz", data / f"{args.test}.en.gz"),
    )
    silver = eflomal_alignments(train, test)
    reverse = dict(args.reverse)
    unknown = set(reverse) - {name for name, _ in args.system}
    if unknown:
        raise UserError(f"--reverse {', '.join(sorted(unknown))}: no --system of that name to symmetrize with")
    systems = {}
    for name, checkpoint in args.system:
        translator = Translator.from_checkpoint(checkpoint, device=args.device)
        systems[name] = translator.align(*test)
        if name in reverse:
            backward = Translator.from_checkpoint(reverse[name], device=args.device)
            systems[f"{name} + reverse (grow-diag-final)"] = translator.align(*test, reverse=backward)
    return silver_table(silver, systems)


def markdown(rows: list[dict[str, object]]) -> str:
    lines = ["| system | against | AER | precision | recall |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {r['system']} | {r['against']} | {r['aer']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} |" for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", type=_system, action="append", required=True, metavar="NAME=CHECKPOINT")
    parser.add_argument(
        "--reverse",
        type=_system,
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT",
        help="an en->de model for the de->en system NAME: adds its symmetrized alignments",
    )
    parser.add_argument(
        "--data",
        default=os.environ.get("NMT_MULTI30K", "data/multi30k"),
        help="the folder with Multi30k's original .gz files (default: $NMT_MULTI30K)",
    )
    parser.add_argument("--test", default="test_2016_flickr")
    parser.add_argument("--output", required=True, metavar="PREFIX", help="writes PREFIX.md and PREFIX.json")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    try:
        rows = run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    table = markdown(rows)
    print(table)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".md").write_text(table + "\n")
    report = {"date": date.today().isoformat(), "test": args.test, "systems": dict(args.system), "rows": rows}
    output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output.with_suffix('.md')} {output.with_suffix('.json')}")


if __name__ == "__main__":
    main()
