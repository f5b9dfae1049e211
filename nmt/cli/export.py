"""`nmt-export`: a checkpoint -> a folder that translates with torch and sentencepiece alone."""

from __future__ import annotations

import argparse

from nmt.cli.common import run_tool
from nmt.decoding.export import MANIFEST, PROGRAM, export_model


def _export(args: argparse.Namespace) -> None:
    manifest = export_model(args.checkpoint, args.output)
    print(f"{args.output}: {PROGRAM} (state: {', '.join(manifest['state'])}), src.model, tgt.model, {MANIFEST}")


def main(argv: list[str] | None = None) -> None:
    """Exports a checkpoint for inference with torch and sentencepiece alone (no nmt training code)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint, e.g. <run>/checkpoints/best.pt")
    parser.add_argument("--output", required=True, help="the export folder (created; its export files are replaced)")
    run_tool(_export, parser, argv)


if __name__ == "__main__":
    main()
