"""`nmt-export`: a checkpoint -> a model folder for sharing (`--format hub`: safetensors, a JSON
config, the sentencepiece models and a model card, optionally pushed to the Hugging Face Hub), or
a folder that translates with torch and sentencepiece alone (`--format torchscript`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nmt.checkpoint import load_checkpoint
from nmt.cli.common import run_tool
from nmt.decoding.export import MANIFEST, PROGRAM, export_model
from nmt.training.run_layout import RunLayout
from nmt.utils.errors import UserError


def _export(args: argparse.Namespace) -> None:
    if args.push_to_hub and args.format != "hub":
        raise UserError("--push-to-hub needs --format hub")
    if args.quantize and args.format != "onnx":
        raise UserError("--quantize needs --format onnx")
    if args.format == "onnx":
        from nmt.decoding.onnx_export import export_onnx

        manifest = export_onnx(args.checkpoint, args.output, quantize=args.quantize)
        graphs = [*manifest["graphs"].values(), *(manifest["quantized"] or {}).values()]
        print(f"{args.output}: {', '.join(graphs)} (state: {', '.join(manifest['state'])}), src.model, tgt.model")
        return
    if args.format == "torchscript":
        manifest = export_model(args.checkpoint, args.output)
        print(f"{args.output}: {PROGRAM} (state: {', '.join(manifest['state'])}), src.model, tgt.model, {MANIFEST}")
        return
    from nmt.decoding.pretrained import CARD, CONFIG, TOKENIZERS, WEIGHTS, push_to_hub
    from nmt.decoding.translator import Translator

    translator = Translator.from_checkpoint(args.checkpoint, device="cpu")
    translator.save_pretrained(args.output, summary=_run_summary(Path(args.checkpoint)))
    print(f"{args.output}: {WEIGHTS}, {CONFIG}, {', '.join(TOKENIZERS.values())}, {CARD}")
    if args.push_to_hub:
        print("pushed to", push_to_hub(args.output, args.push_to_hub, private=args.private))


def _run_summary(checkpoint: Path) -> dict | None:
    """The `summary.json` of the run a checkpoint belongs to: a file in a run directory's
    checkpoints folder whose summary is of the same run (None otherwise: a card without results)."""
    layout = RunLayout(checkpoint.parent.parent)
    if checkpoint.is_dir() or checkpoint.parent != layout.checkpoints or not layout.summary.is_file():
        return None  # a model folder keeps its own; a loose file has no run
    try:
        summary = json.loads(layout.summary.read_text())
    except ValueError:
        print(f"warning: {layout.summary} is not valid JSON; the model card has no results", file=sys.stderr)
        return None
    config = load_checkpoint(checkpoint)["config"]
    if summary.get("config", {}).get("model") != config.get("model"):
        print(f"warning: {layout.summary} is of another model; the model card has no results", file=sys.stderr)
        return None
    return summary


def main(argv: list[str] | None = None) -> None:
    """Exports a checkpoint: a model folder to share (`--format hub`) or a TorchScript folder."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint, e.g. <run>/checkpoints/best.pt")
    parser.add_argument("--output", required=True, help="the export folder (created; its export files are replaced)")
    parser.add_argument(
        "--format",
        choices=("hub", "onnx", "torchscript"),
        default="torchscript",
        help="hub: model.safetensors, config.json, the sentencepiece models and a model card README.md; "
        "onnx: encoder.onnx and decoder.onnx for ONNX Runtime without torch (nmt-onnx-translate); "
        "torchscript: model.pt for torch alone",
    )
    parser.add_argument("--quantize", action="store_true", help="with --format onnx: also int8 graphs")
    parser.add_argument("--push-to-hub", metavar="OWNER/NAME", help="also upload the folder (needs the hub extra)")
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: a private repository")
    run_tool(_export, parser, argv)


if __name__ == "__main__":
    main()
