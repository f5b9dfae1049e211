"""`nmt-aer`: alignment error rate of Pharaoh word alignments against gold ones."""

from __future__ import annotations

import argparse

from nmt.cli.common import run_tool
from nmt.data.alignments import read_pharaoh
from nmt.metrics.alignment import alignment_error_rate
from nmt.utils.errors import UserError


def _aer(args: argparse.Namespace) -> None:
    hypotheses, gold = read_pharaoh(args.hyp_align), read_pharaoh(args.gold)
    if len(hypotheses) != len(gold):
        raise UserError(f"{args.hyp_align} has {len(hypotheses)} lines, {args.gold} has {len(gold)}")
    print(alignment_error_rate([h.possible for h in hypotheses], gold))


def main(argv: list[str] | None = None) -> None:
    """Alignment error rate (Och & Ney, 2003), precision and recall of word alignments in Pharaoh
    format (`i-j`: source word i, target word j), one line per sentence."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--hyp-align", required=True, help="alignments to score; every link counts, i-j or i?j")
    parser.add_argument("--gold", required=True, help="gold alignments: i-j sure, i?j possible")
    run_tool(_aer, parser, argv)


if __name__ == "__main__":
    main()
