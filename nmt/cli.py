"""Command-line tools: prepare data, translate with a checkpoint, score a hypothesis file,
average checkpoints.

Installed as `nmt-prepare`, `nmt-translate`, `nmt-evaluate` and `nmt-average`; `scripts/*.py`
call the same functions. Mistakes a user can fix end in a one-line `error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from nmt.checkpoint import average_checkpoints, save_checkpoint
from nmt.data.corpus import decode_lines, read_lines
from nmt.data.sources import Multi30k
from nmt.errors import UserError
from nmt.evaluation import score
from nmt.run_layout import RunLayout
from nmt.search import beam_search, greedy_search


def _run(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser,
         argv: list[str] | None) -> None:
    args = parser.parse_args(argv)
    try:
        main(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def _prepare(args: argparse.Namespace) -> None:
    corpus = Multi30k(args.root, args.src_lang, args.tgt_lang, local_dir=args.local_dir)
    for split, files in corpus.prepare().items():
        print(f"{split}: {files.src} {files.tgt} ({len(read_lines(files.src))} lines)")


def prepare_main(argv: list[str] | None = None) -> None:
    """Downloads (or copies from a local folder) Multi30k task 1 into the data folder."""
    parser = argparse.ArgumentParser(description=prepare_main.__doc__)
    parser.add_argument("--from", dest="local_dir", default=None,
                        help="folder with the original Multi30k files (offline); default: download")
    parser.add_argument("--root", default="data/multi30k", help="where the text files go")
    parser.add_argument("--src-lang", default="de", choices=Multi30k.LANGUAGES)
    parser.add_argument("--tgt-lang", default="en", choices=Multi30k.LANGUAGES)
    _run(_prepare, parser, argv)


def _translate(args: argparse.Namespace) -> None:
    from nmt.distributed import resolve_device  # heavy imports only for this tool
    from nmt.translation import load_model, translate_lines

    device = resolve_device(args.device)
    model, src_tokenizer, tgt_tokenizer, _ = load_model(args.checkpoint, device)
    lines = read_lines(args.input) if args.input else decode_lines(sys.stdin.buffer.read(), "<stdin>")
    limits = {"max_length_ratio": args.max_length_ratio, "max_length_offset": args.max_length_offset}
    search = (partial(greedy_search, **limits) if args.beam_size == 1
              else partial(beam_search, beam_size=args.beam_size, alpha=args.alpha, **limits))
    with torch.inference_mode():
        outputs = translate_lines(model, src_tokenizer, tgt_tokenizer, lines, search, args.max_tokens, device)
    text = "".join(f"{line}\n" for line in outputs)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def translate_main(argv: list[str] | None = None) -> None:
    """Translates raw sentences (one per line) with a trained checkpoint; writes detokenized text."""
    parser = argparse.ArgumentParser(description=translate_main.__doc__)
    parser.add_argument("--checkpoint", required=True,
                        help="a checkpoint, e.g. <run>/checkpoints/best.pt (it holds its tokenizers)")
    parser.add_argument("--input", help="source file (default: standard input)")
    parser.add_argument("--output", help="output file (default: standard output)")
    parser.add_argument("--beam-size", type=int, default=5, help="1 decodes greedily")
    parser.add_argument("--alpha", type=float, default=1.0, help="GNMT length penalty exponent")
    parser.add_argument("--max-length-ratio", type=float, default=2.0)
    parser.add_argument("--max-length-offset", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=4000, help="source tokens per batch")
    parser.add_argument("--device", default="auto")
    _run(_translate, parser, argv)


def _evaluate(args: argparse.Namespace) -> None:
    print(score(read_lines(args.hyp), [read_lines(ref) for ref in args.ref]))


def evaluate_main(argv: list[str] | None = None) -> None:
    """Scores detokenized hypotheses against references with sacrebleu (BLEU, chrF)."""
    parser = argparse.ArgumentParser(description=evaluate_main.__doc__)
    parser.add_argument("--hyp", required=True, help="hypothesis file, one sentence per line")
    parser.add_argument("--ref", required=True, nargs="+", help="reference file(s)")
    _run(_evaluate, parser, argv)


def _average(args: argparse.Namespace) -> None:
    if args.run is None:
        if args.last is not None:
            raise UserError("--last goes with --run (with --inputs, list the files)")
        inputs = [Path(p) for p in args.inputs]
    else:
        if args.last is None or args.last < 1:
            raise UserError("--run needs --last N, a positive number of its latest step checkpoints")
        layout = RunLayout(Path(args.run))
        found = layout.step_checkpoints()
        if len(found) < args.last:
            raise UserError(f"{layout.checkpoints}: {len(found)} step checkpoints (step-<N>.pt), "
                            f"fewer than --last {args.last}")
        inputs = found[-args.last:]
    save_checkpoint(args.output, average_checkpoints(inputs))
    print(f"{args.output}: average of {len(inputs)} checkpoints: {' '.join(str(p) for p in inputs)}")


def average_main(argv: list[str] | None = None) -> None:
    """Averages the weights of checkpoints of one run (often better than the last one alone)."""
    parser = argparse.ArgumentParser(description=average_main.__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--inputs", nargs="+", help="checkpoint files to average")
    source.add_argument("--run", help="a run directory: average its latest step checkpoints")
    parser.add_argument("--last", type=int, help="with --run: how many of the latest step checkpoints")
    parser.add_argument("--output", required=True, help="the averaged checkpoint (written atomically)")
    _run(_average, parser, argv)
