"""`nmt-onnx-translate`: translate with an ONNX export on ONNX Runtime, without PyTorch.

Imports numpy, onnxruntime and sentencepiece only (`nmt.decoding.onnx_runtime`), so it runs where
torch is not installed: `pip install --no-deps attention-nmt numpy onnxruntime sentencepiece`.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack

from nmt.cli.common import open_output, run_tool
from nmt.data.corpus import decode_stream, read_lines
from nmt.decoding.onnx_runtime import OnnxTranslator


def _translate(args: argparse.Namespace) -> None:
    translator = OnnxTranslator(args.model, quantized=args.int8, search=args.search)
    lines = read_lines(args.input) if args.input else list(decode_stream(sys.stdin.buffer, "<stdin>"))
    with ExitStack() as stack:
        output = open_output(args.output, stack)
        for translation in translator.translate(lines):
            output.write(translation + "\n")


def main(argv: list[str] | None = None) -> None:
    """Translates a file or stdin with an ONNX export (nmt-export --format onnx), a line per line."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model", required=True, help="the export folder")
    parser.add_argument("--input", help="source file (default: stdin)")
    parser.add_argument("--output", help="translations (default: stdout)")
    parser.add_argument("--search", choices=("beam", "greedy"), help="default: the export's decode config")
    parser.add_argument("--int8", action="store_true", help="the int8 graphs (exported with --quantize)")
    run_tool(_translate, parser, argv)


if __name__ == "__main__":
    main()
