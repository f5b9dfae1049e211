"""How well attention aligns, against eflomal's silver alignments of Multi30k (no download):

    pip install eflomal
    python scripts/alignment_benchmark.py --system bahdanau_best=runs/<run>/checkpoints/best.pt \\
        [--system NAME=CHECKPOINT ...] [--reverse NAME=CHECKPOINT] --output docs/results/alignment

eflomal aligns Multi30k's training pairs and test_2016_flickr together, in both directions; their
grow-diag-final is the silver reference (`nmt.analysis.silver_alignments`). Each system aligns the
test set with the references as given targets (`Translator.align`: forced decoding, each target
word to the source word it attends to most); `--reverse` adds an en->de model of the same name's
system, symmetrized with it. Prints a Markdown table (AER, precision, recall; the aligner against
its own reference and across its directions first) and writes it as Markdown, CSV and JSON.

Gold AER needs gold alignments: the RWTH German-English set (508 Europarl sentences, downloaded
under its own licence, never committed) scores with `nmt-score --alignments` and `nmt-aer`; see
docs/decoding.md.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import date
from pathlib import Path

from nmt import Translator
from nmt.analysis.attention_figure import parse_system
from nmt.analysis.results import Column, Table
from nmt.analysis.silver_alignments import eflomal_alignments, silver_table
from nmt.cli.common import run_tool
from nmt.data.corpus import read_parallel
from nmt.utils.errors import UserError

COLUMNS = [
    Column("system"),
    Column("against"),
    Column("AER", ".4f"),
    Column("precision", ".4f"),
    Column("recall", ".4f"),
]


def rows(args: argparse.Namespace) -> list[dict[str, object]]:
    """The silver table's rows for the systems of the command line."""
    systems, reverse = [parse_system(text) for text in args.system], [parse_system(text) for text in args.reverse]
    unknown = {r.name for r in reverse} - {s.name for s in systems}
    if unknown:
        raise UserError(f"--reverse {', '.join(sorted(unknown))}: no --system of that name to symmetrize with")
    data = Path(args.data)
    train = read_parallel(data / "train.de.gz", data / "train.en.gz")
    test = read_parallel(data / f"{args.test}.de.gz", data / f"{args.test}.en.gz")
    silver = eflomal_alignments(train, test)
    backward = {r.name: r.checkpoint for r in reverse}
    links = {}
    for system in systems:
        translator = Translator.from_checkpoint(system.checkpoint, device=args.device)
        links[system.name] = translator.align(*test)
        if system.name in backward:
            other = Translator.from_checkpoint(backward[system.name], device=args.device)
            links[f"{system.name} + reverse (grow-diag-final)"] = translator.align(*test, reverse=other)
    return silver_table(silver, links)


def _benchmark(args: argparse.Namespace) -> None:
    found = rows(args)
    table = Table(COLUMNS, [[r["system"], r["against"], r["aer"], r["precision"], r["recall"]] for r in found], [])
    print(table.markdown())
    paths = table.write(args.output)
    report = {"date": date.today().isoformat(), "test": args.test, "systems": args.system, "rows": found}
    paths.append(Path(f"{args.output}.json"))
    paths[-1].write_text(json.dumps(report, indent=2) + "\n")
    print("wrote", " ".join(str(path) for path in paths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", action="append", required=True, metavar="NAME=CHECKPOINT")
    parser.add_argument(
        "--reverse",
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
    parser.add_argument(
        "--output", required=True, metavar="PREFIX", help="writes PREFIX.md, PREFIX.csv and PREFIX.json"
    )
    parser.add_argument("--device", default="auto")
    run_tool(_benchmark, parser, None)


if __name__ == "__main__":
    main()
