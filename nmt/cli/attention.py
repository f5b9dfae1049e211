"""`nmt-attention`: the attention of a few fixed sentences for several systems side by side."""

from __future__ import annotations

import argparse

from nmt.analysis.attention_figure import TARGETS, attention_comparison, parse_system, pick_sentences
from nmt.analysis.length import save_figure
from nmt.cli.common import run_tool
from nmt.utils.errors import UserError


def _attention(args: argparse.Namespace) -> None:
    systems = [parse_system(text) for text in args.system]
    if args.target == "reference" and args.ref is None:
        raise UserError("--target reference needs --ref (or use --target translation)")
    sentences = pick_sentences(args.src, args.ref if args.target == "reference" else None, args.lines)
    paths = save_figure(attention_comparison(systems, sentences, args.device), args.output)
    print("wrote", " ".join(str(path) for path in paths))


def main(argv: list[str] | None = None) -> None:
    """Draws the attention of a few fixed test sentences for several systems side by side: one row
    per sentence, one column per system, written to PREFIX.png and PREFIX.svg."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--system",
        required=True,
        action="append",
        metavar="NAME=CHECKPOINT",
        help="a column: its title and checkpoint (repeat for each system, in column order)",
    )
    parser.add_argument("--src", required=True, help="test source file")
    parser.add_argument("--ref", help="test reference file (needed by --target reference)")
    parser.add_argument(
        "--lines",
        required=True,
        nargs="+",
        type=int,
        metavar="N",
        help="the sentences: 1-based line numbers, one row each",
    )
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="reference",
        help="reference: every system reads the reference (the same axes; compare alignments); "
        "translation: each system's own translation with its checkpoint's test search",
    )
    parser.add_argument("--output", required=True, metavar="PREFIX", help="writes PREFIX.png and PREFIX.svg")
    parser.add_argument("--device", default="auto")
    run_tool(_attention, parser, argv)


if __name__ == "__main__":
    main()
