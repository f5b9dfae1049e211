"""`nmt-evaluate`: sacreBLEU scores of hypothesis files, paired bootstrap between systems, BLEU by source length."""

from __future__ import annotations

import argparse

from nmt.cli.common import add_length_arguments, positive_int, run_tool
from nmt.data.corpus import read_lines
from nmt.metrics.bleu import DEFAULT_SEED, check_lengths, paired_bootstrap, score
from nmt.utils.errors import UserError


def _evaluate(args: argparse.Namespace) -> None:
    from nmt.analysis.length import (  # matplotlib: only here
        bleu_by_length,
        length_buckets,
        length_figure,
        save_figure,
        word_lengths,
    )

    if args.by_length and not args.src:
        raise UserError("--by-length needs --src (the source file the lengths come from)")
    references = [read_lines(path) for path in args.ref]
    if not references[0]:
        raise UserError(f"{args.ref[0]}: no lines to score")
    systems = [(path, read_lines(path)) for path in args.hyp]
    for path, hypotheses in systems:
        check_lengths(hypotheses, references, path)
    sources = read_lines(args.src) if args.src else None
    if sources is not None and len(sources) != len(references[0]):
        raise UserError(f"{args.src} has {len(sources)} lines, {args.ref[0]} has {len(references[0])}")

    if len(systems) == 1:
        print(score(systems[0][1], references))
    if len(systems) > 1 or args.bootstrap:
        print(paired_bootstrap(systems, references, samples=args.bootstrap or 1000, seed=args.seed))
    if sources is not None:
        table = bleu_by_length(
            length_buckets(word_lengths(sources), args.bucket_width, args.min_bucket), systems, references
        )
        print(table.markdown())
        if args.by_length:
            print("wrote", " ".join(str(p) for p in save_figure(length_figure(table), args.by_length)))


def main(argv: list[str] | None = None) -> None:
    """Scores detokenized hypotheses against references with sacrebleu (BLEU, chrF, TER); compares
    several systems by paired bootstrap resampling; breaks BLEU down by source length."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--hyp", required=True, nargs="+", help="hypothesis file(s), one sentence per line; the first is the baseline"
    )
    parser.add_argument("--ref", required=True, nargs="+", help="reference file(s)")
    parser.add_argument(
        "--bootstrap",
        type=positive_int,
        metavar="N",
        help="paired bootstrap resamples (default 1000 with several --hyp; "
        "with one, gives its 95%% confidence interval)",
    )
    parser.add_argument("--seed", type=positive_int, default=DEFAULT_SEED, help="bootstrap seed")
    parser.add_argument("--src", help="source file: print BLEU by source length (words)")
    parser.add_argument("--by-length", metavar="PREFIX", help="with --src: also plot it to PREFIX.png and PREFIX.svg")
    add_length_arguments(parser)
    run_tool(_evaluate, parser, argv)


if __name__ == "__main__":
    main()
