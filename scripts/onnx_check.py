"""The ONNX export of a trained model against PyTorch on a test set: the same translations (fp32,
line for line), BLEU of fp32 and int8 graphs, and decoding time of each, one thread.

    python scripts/onnx_check.py --checkpoint runs/<run>/checkpoints/best.pt --output docs/results/onnx_check.json

PyTorch decodes in fp32, eagerly (no torch.compile), batched as `nmt-translate` does; ONNX
Runtime decodes with the numpy searches (`nmt.decoding.onnx_runtime`), in batches of 64 sentences
of similar length. Both run on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import torch

from nmt import Translator
from nmt.data.corpus import read_parallel
from nmt.decoding.onnx_export import export_onnx
from nmt.decoding.onnx_runtime import OnnxTranslator
from nmt.metrics.bleu import score
from nmt.utils.device import describe_machine


def timed(translate: Callable[[list[str]], list[str]], sentences: list[str]) -> tuple[list[str], float]:
    start = time.perf_counter()
    outputs = translate(sentences)
    return outputs, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--output", required=True, help="the JSON report")
    parser.add_argument("--data", default=os.environ.get("NMT_MULTI30K", "data/multi30k"))
    parser.add_argument("--test", default="test_2016_flickr")
    parser.add_argument("--search", choices=("beam", "greedy"), default="beam")
    parser.add_argument("--note", default="", help="e.g. what else ran on the machine")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sources, references = read_parallel(Path(args.data) / f"{args.test}.de.gz", Path(args.data) / f"{args.test}.en.gz")
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(args.checkpoint, folder, quantize=True)
        reference = Translator.from_checkpoint(args.checkpoint, device="cpu", precision="fp32", compile=False)
        systems = {
            "pytorch fp32": lambda s: reference.translate(s, search=args.search),
            "onnx fp32": OnnxTranslator(folder, search=args.search, threads=1).translate,
            "onnx int8": OnnxTranslator(folder, quantized=True, search=args.search, threads=1).translate,
        }
        results = {}
        for name, translate in systems.items():
            outputs, seconds = timed(translate, sources)
            results[name] = {"outputs": outputs, "seconds": seconds}
        sizes = {p.name: p.stat().st_size for p in Path(folder).glob("*.onnx")}
    torch_outputs = results["pytorch fp32"]["outputs"]
    report = {
        "date": datetime.now().isoformat(timespec="minutes"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "checkpoint": args.checkpoint,
        "test": args.test,
        "search": args.search,
        "machine": describe_machine(torch.device("cpu")),
        "threads": 1,
        "note": args.note,
        "graph_bytes": sizes,
        "systems": {
            name: {
                "bleu": score(found["outputs"], [references]).bleu,
                "seconds": found["seconds"],
                "sentences_per_second": len(sources) / found["seconds"],
                "lines_equal_to_pytorch": sum(a == b for a, b in zip(found["outputs"], torch_outputs)),
            }
            for name, found in results.items()
        },
    }
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    for name, figures in report["systems"].items():
        print(
            f"{name}: BLEU {figures['bleu']:.2f}, {figures['seconds']:.1f} s, "
            f"{figures['lines_equal_to_pytorch']}/{len(sources)} lines equal to PyTorch's"
        )


if __name__ == "__main__":
    main()
