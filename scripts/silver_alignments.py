"""Word alignments of a parallel corpus with eflomal, symmetrized, as a Pharaoh file: what guided
alignment training reads (`trainer.guided_alignment.alignments`).

    pip install eflomal
    python scripts/silver_alignments.py --src data/multi30k/train.de --tgt data/multi30k/train.en \\
        --output data/multi30k/train.de-en.align

eflomal (Östling & Tiedemann 2016) aligns the pairs in both directions; grow-diag-final
(`nmt.metrics.alignment.grow_diag_final`) joins the two. Words are whitespace tokens; a line
per pair, `i-j` for source word i and target word j (from 0). Pairs with an empty side get an
empty line, so the file stays line-aligned with the corpus.
"""

from __future__ import annotations

import argparse
import time

from nmt.analysis.silver_alignments import eflomal_directions
from nmt.cli.common import run_tool
from nmt.data.alignments import write_pharaoh
from nmt.data.corpus import is_complete, read_parallel
from nmt.metrics.alignment import grow_diag_final


def _align(args: argparse.Namespace) -> None:
    start = time.monotonic()
    sources, targets = read_parallel(args.src, args.tgt)
    kept = [index for index, pair in enumerate(zip(sources, targets)) if is_complete(*pair)]
    forward, backward = eflomal_directions([sources[i] for i in kept], [targets[i] for i in kept])
    links: list[set[tuple[int, int]]] = [set() for _ in sources]
    for index, ahead, back in zip(kept, forward, backward):
        links[index] = grow_diag_final(ahead, back)
    write_pharaoh(args.output, links)
    print(
        f"wrote {args.output}: {len(sources)} pairs, {sum(map(len, links))} links "
        f"({len(sources) - len(kept)} pairs with an empty side left unaligned) in {time.monotonic() - start:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="source side, a sentence per line (plain or .gz)")
    parser.add_argument("--tgt", required=True, help="target side, line-aligned with --src")
    parser.add_argument("--output", required=True, help="the Pharaoh file to write")
    run_tool(_align, parser, argv)


if __name__ == "__main__":
    main()
