"""`nmt-score`: the model's log-probability of given translations, and their word alignments.

One output line per input pair: `log_prob<TAB>perplexity` (with `--per-token`, a third field of
each target piece's log-probability, then EOS's). A pair with an empty side gives an empty line
(and an empty alignment line), so line counts are kept. Outputs are written atomically: a run
that stops on an error (files of unequal length, invalid UTF-8, both named) leaves none behind.
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import ExitStack

from nmt.cli.common import add_decoding_arguments, chunks, open_output, positive_int, run_tool
from nmt.data.corpus import iter_parallel
from nmt.utils.errors import UserError


def _score(args: argparse.Namespace) -> None:
    from nmt.data.alignments import format_pharaoh
    from nmt.decoding.translator import Translator  # heavy imports only once the arguments are fine

    if args.reverse_checkpoint and not args.alignments:
        raise UserError("--reverse-checkpoint goes with --alignments (it only symmetrizes the alignments)")
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr)
    options = {
        "device": args.device,
        "max_tokens": args.max_tokens,
        "precision": args.precision,
        "compile": args.compile,
    }
    translator = Translator.from_checkpoint(args.checkpoint, **options)
    reverse = Translator.from_checkpoint(args.reverse_checkpoint, **options) if args.reverse_checkpoint else None
    with ExitStack() as stack:
        output = open_output(args.output, stack)
        alignments = open_output(args.alignments, stack) if args.alignments else None
        line = 1
        for chunk in chunks(iter_parallel(args.src, args.ref), args.chunk_lines):
            sources, targets = [s for s, _ in chunk], [t for _, t in chunk]
            scores = translator.score(sources, targets, attention=alignments is not None, first_line=line)
            for scored in scores:
                if scored is None:
                    output.write("\n")
                    continue
                fields = [f"{scored.log_prob:.6f}", f"{scored.perplexity:.6f}"]
                if args.per_token:
                    fields.append(" ".join(f"{value:.6f}" for value in scored.token_log_probs))
                output.write("\t".join(fields) + "\n")
            if alignments is not None:
                found = translator.align(sources, targets, reverse=reverse, first_line=line, scores=scores)
                alignments.writelines(format_pharaoh(links) + "\n" for links in found)
            line += len(chunk)


def main(argv: list[str] | None = None) -> None:
    """Scores given translations with a trained checkpoint (forced decoding): log P(reference |
    source) and perplexity per line; optionally per target piece, and the word alignments."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--checkpoint", required=True, nargs="+", help="a checkpoint; several: an ensemble")
    parser.add_argument("--src", required=True, help="source file, one sentence per line (plain or .gz)")
    parser.add_argument("--ref", required=True, help="the translations to score, line-aligned with --src")
    parser.add_argument("--output", help="the scores, written atomically (default: standard output)")
    parser.add_argument("--per-token", action="store_true", help="also each target piece's log-probability")
    parser.add_argument("--alignments", help="also write word alignments from the attention (Pharaoh `i-j`)")
    parser.add_argument(
        "--reverse-checkpoint",
        nargs="+",
        help="a model of the other direction: --alignments then symmetrizes both (grow-diag-final)",
    )
    parser.add_argument("--chunk-lines", type=positive_int, default=10000, help="pairs read and scored at a time")
    add_decoding_arguments(parser)
    run_tool(_score, parser, argv)


if __name__ == "__main__":
    main()
