"""`nmt-average`: the average of a run's checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

from nmt.checkpoint import average_checkpoints, save_checkpoint
from nmt.cli.common import run_tool
from nmt.training.run_layout import RunLayout
from nmt.utils.errors import UserError


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
            raise UserError(
                f"{layout.checkpoints}: {len(found)} step checkpoints (step-<N>.pt), fewer than --last {args.last}"
            )
        inputs = found[-args.last :]
    save_checkpoint(args.output, average_checkpoints(inputs))
    print(f"{args.output}: average of {len(inputs)} checkpoints: {' '.join(str(p) for p in inputs)}")


def main(argv: list[str] | None = None) -> None:
    """Averages the weights of checkpoints of one run (often better than the last one alone)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--inputs", nargs="+", help="checkpoint files to average")
    source.add_argument("--run", help="a run directory: average its latest step checkpoints")
    parser.add_argument("--last", type=int, help="with --run: how many of the latest step checkpoints")
    parser.add_argument("--output", required=True, help="the averaged checkpoint (written atomically)")
    run_tool(_average, parser, argv)


if __name__ == "__main__":
    main()
