"""`nmt-prepare`: Multi30k task 1 into the data folder."""

from __future__ import annotations

import argparse

from nmt.cli.common import run_tool
from nmt.data.corpus import read_lines
from nmt.data.sources import Multi30k


def _prepare(args: argparse.Namespace) -> None:
    corpus = Multi30k(args.root, args.src_lang, args.tgt_lang, local_dir=args.local_dir)
    for split, files in corpus.prepare().items():
        print(f"{split}: {files.src} {files.tgt} ({len(read_lines(files.src))} lines)")


def main(argv: list[str] | None = None) -> None:
    """Downloads (or copies from a local folder) Multi30k task 1 into the data folder."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--from",
        dest="local_dir",
        default=None,
        help="folder with the original Multi30k files (offline); default: download",
    )
    parser.add_argument("--root", default="data/multi30k", help="where the text files go")
    parser.add_argument("--src-lang", default="de", choices=Multi30k.LANGUAGES)
    parser.add_argument("--tgt-lang", default="en", choices=Multi30k.LANGUAGES)
    run_tool(_prepare, parser, argv)


if __name__ == "__main__":
    main()
