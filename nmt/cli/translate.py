"""`nmt-translate`: raw sentences in (a file or stdin), translations out, one line per line.

Input is read and translated in chunks of lines (so a large file streams), each chunk sorted by
length into token-budget batches and written back in input order. The output always has as many
lines as the input: an empty line gives an empty line; a line longer than the model accepts is
truncated with a warning naming it; invalid UTF-8 stops with an error naming the line.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from nmt.cli.common import add_decoding_arguments, chunks, open_output
from nmt.data.corpus import decode_stream
from nmt.utils.errors import UserError


def _open_input(path: str | None, stack: ExitStack) -> BinaryIO:
    if path is None:
        return sys.stdin.buffer
    if not Path(path).is_file():
        raise UserError(f"{path}: file not found")
    return stack.enter_context(gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb"))


def _translate(args: argparse.Namespace) -> None:
    from matplotlib.image import imsave  # heavy imports only once the arguments are fine

    from nmt.data.alignments import format_pharaoh
    from nmt.decoding.attention_maps import AttentionExample, attention_figure
    from nmt.decoding.translator import Translator
    from nmt.metrics.alignment import summarize_attention

    translator = Translator.from_checkpoint(
        args.checkpoint, device=args.device, max_tokens=args.max_tokens, precision=args.precision, compile=args.compile
    )
    overrides = {
        "beam_size": args.beam_size,
        "alpha": args.alpha,
        "length_penalty": args.length_penalty,
        "max_length_ratio": args.max_length_ratio,
        "max_length_offset": args.max_length_offset,
        "min_length_ratio": args.min_length_ratio,
        "min_length_offset": args.min_length_offset,
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "coverage_penalty": args.coverage_penalty,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "seed": args.seed,
        "nbest": args.nbest,
        "stop_early": args.stop_early or None,
    }
    translator.search(args.search, **overrides)  # bad options fail here, before any input is read
    want_attention = bool(args.alignments or args.heatmaps or args.attention_stats)
    matrices = []  # the best hypotheses' attention, for --attention-stats
    if args.heatmaps:
        Path(args.heatmaps).mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        output = open_output(args.output, stack)
        alignments = open_output(args.alignments, stack) if args.alignments else None
        line = 1
        lines = decode_stream(_open_input(args.input, stack), args.input or "<stdin>")  # invalid UTF-8: named
        for chunk in chunks(lines, args.chunk_lines):
            results = translator.translate_nbest(
                chunk, search=args.search, attention=want_attention, first_line=line, **overrides
            )
            for number, nbest in enumerate(results, start=line):
                if args.nbest and args.nbest > 1:  # an empty line gets one empty entry
                    output.writelines(f"{number - 1} ||| {t.text} ||| {t.score:.6f}\n" for t in nbest)
                    if not nbest:
                        output.write(f"{number - 1} |||  ||| 0.000000\n")
                else:
                    output.write(f"{nbest[0].text if nbest else ''}\n")
                if alignments is not None:
                    alignments.write(format_pharaoh(nbest[0].alignment if nbest else []) + "\n")
                if args.attention_stats and nbest:
                    matrices.append(nbest[0].attention)
                if args.heatmaps and nbest:
                    best = nbest[0]
                    example = AttentionExample(
                        [*best.source_pieces, "</s>"], [*best.target_pieces, "</s>"], best.attention
                    )
                    imsave(Path(args.heatmaps) / f"line-{number:06d}.png", attention_figure(example))
            output.flush()
            line += len(chunk)
    if args.attention_stats and matrices:
        summary = summarize_attention(matrices)
        print(
            f"attention: mean entropy {summary.mean_entropy:.3f} nats per output token, source coverage "
            f"{summary.coverage:.3f} (share of source positions some output attends to most), "
            f"{len(matrices)} sentences",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> None:
    """Translates raw sentences (one per line) with a trained checkpoint; writes detokenized text."""
    parser = argparse.ArgumentParser(
        description=main.__doc__,
        epilog=(
            "Search options default to the checkpoint's test search (configs/decode/ of its run); "
            "--search greedy or sample starts from those classes' defaults."
        ),
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        nargs="+",
        help="a checkpoint (it holds its tokenizers); several: an ensemble averaging probabilities",
    )
    parser.add_argument("--input", help="source file, plain or .gz (default: standard input)")
    parser.add_argument("--output", help="output file, written atomically (default: standard output)")
    parser.add_argument("--search", choices=("beam", "greedy", "sample"), help="default: the checkpoint's")
    parser.add_argument("--beam-size", type=int)
    parser.add_argument("--nbest", type=int, help="n > 1 writes Moses n-best lines: `line ||| text ||| score`")
    parser.add_argument(
        "--stop-early", action="store_true", help="beam: stop at beam-size finished hypotheses (faster, approximate)"
    )
    parser.add_argument("--length-penalty", choices=("gnmt", "average", "none"))
    parser.add_argument("--alpha", type=float, help="GNMT length penalty exponent")
    parser.add_argument("--coverage-penalty", type=float, help="GNMT coverage penalty beta")
    parser.add_argument("--max-length-ratio", type=float)
    parser.add_argument("--max-length-offset", type=int)
    parser.add_argument("--min-length-ratio", type=float)
    parser.add_argument("--min-length-offset", type=int)
    parser.add_argument("--no-repeat-ngram-size", type=int)
    parser.add_argument("--temperature", type=float, help="sampling")
    parser.add_argument("--top-k", type=int, help="sampling")
    parser.add_argument("--top-p", type=float, help="sampling")
    parser.add_argument("--seed", type=int, help="sampling: repeatable draws")
    parser.add_argument("--alignments", help="also write word alignments from the attention (Pharaoh `i-j`)")
    parser.add_argument("--heatmaps", help="also write an attention heatmap PNG per line into this folder")
    parser.add_argument(
        "--attention-stats",
        action="store_true",
        help="print the attention's mean entropy and source coverage to stderr at the end",
    )
    parser.add_argument("--chunk-lines", type=int, default=10000, help="lines read and translated at a time")
    add_decoding_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr)
    try:
        if args.chunk_lines < 1:
            raise UserError(f"--chunk-lines {args.chunk_lines}: must be at least 1")
        _translate(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
