"""Decoding speed and BLEU of a checkpoint's searches:
python scripts/benchmark_decoding.py --checkpoint best.pt --source test.de --reference test.en

Times `Translator.translate` over the whole source file (model loaded beforehand, so only
decoding counts) for greedy search, beam 5 with the exact stopping rule and beam 5 with early
stopping; prints the best of `--repeats` runs, sentences/s and BLEU. Compare figures only when
taken back to back on an otherwise idle machine: its speed drifts.
"""

import argparse
import time

import torch

from nmt import Translator
from nmt.data.corpus import read_lines
from nmt.evaluation import score

SEARCHES = {"greedy": {"search": "greedy"},
            "beam 5, exact": {"search": "beam", "beam_size": 5, "stop_early": False},
            "beam 5, early stopping": {"search": "beam", "beam_size": 5, "stop_early": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=4000, help="source tokens per batch")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    sources, references = read_lines(args.source), read_lines(args.reference)
    translator = Translator.from_checkpoint(args.checkpoint, device=args.device, max_tokens=args.max_tokens)
    print(f"{len(sources)} sentences, batches of {args.max_tokens} source tokens, torch threads "
          f"{torch.get_num_threads()}, device {args.device}")
    print("| search | seconds (best of runs) | sentences/s | BLEU |\n| --- | --- | --- | --- |")
    for name, options in SEARCHES.items():
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            hypotheses = translator.translate(sources, **options)
            seconds.append(time.perf_counter() - start)
        print(f"| {name} | {min(seconds):.2f} ({', '.join(f'{s:.2f}' for s in seconds)}) "
              f"| {len(sources) / min(seconds):.0f} | {score(hypotheses, [references]).bleu:.2f} |")


if __name__ == "__main__":
    main()
