"""`nmt-collect`: the results table of finished runs, seeds grouped into systems."""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from nmt.analysis.results import (
    DEFAULT_IGNORE,
    Run,
    Table,
    check_test_scores,
    find_runs,
    group_runs,
    length_report,
    runs_table,
    runs_test_set,
    shown_path,
    systems_table,
)
from nmt.cli.common import add_length_arguments, positive_int, run_tool
from nmt.data.corpus import read_lines
from nmt.metrics.bleu import DEFAULT_SEED, group_bootstrap
from nmt.utils.errors import UserError


def _collect(args: argparse.Namespace) -> None:
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap {args.bootstrap}: give a number of resamples, or 0 for no test")
    if args.runs and args.by_length:
        raise UserError("--by-length goes with the table of systems, not --runs")
    runs, skipped = find_runs(args.dirs)
    for root, reason in skipped:
        print(f"skipped: {root}: {reason}", file=sys.stderr)
    if not runs:
        raise UserError(f"no finished runs (summary.json) in {' '.join(args.dirs)}")
    if args.runs:
        table, extra = runs_table(runs), ""
    else:
        table, extra = _systems(runs, args)
    print(table.markdown())
    if extra:
        print(extra)
    print("wrote", " ".join(str(p) for p in table.write(args.output)))


def _systems(runs: Sequence[Run], args: argparse.Namespace) -> tuple[Table, str]:
    """The table of systems (and the by-length table and figure, when asked for); returns the
    systems' table and what else to print."""
    systems, common = group_runs(runs, args.seed_key, [*DEFAULT_IGNORE, *args.ignore_key])
    systems.sort(key=lambda system: -statistics.mean(run.value("test.bleu") for run in system.runs))
    labels = [system.label for system in systems]
    if args.baseline != "auto" and args.baseline not in labels:
        raise UserError(f"--baseline {args.baseline!r}: no such system; the systems are: {'; '.join(labels)}")
    baseline = 0 if args.baseline == "auto" else labels.index(args.baseline)
    test, note, extra = None, "", ""
    compare = args.bootstrap and len(systems) > 1
    if compare or args.by_length:
        files = runs_test_set(runs) if args.ref is None or (args.by_length and args.src is None) else None
        ref_paths = args.ref or [files.tgt]
        references = [read_lines(path) for path in ref_paths]
        if not references[0]:
            raise UserError(f"{ref_paths[0]}: no lines to score")
        outputs = [
            (system.label, [(str(run.layout.test_hypotheses), run.hypotheses()) for run in system.runs])
            for system in systems
        ]
        check_test_scores(runs, references, ref_paths)
    if compare:
        test = group_bootstrap(outputs, references, baseline, args.bootstrap, args.bootstrap_seed)
        note = (
            f"p: paired bootstrap vs the baseline of each system's mean over its runs, BLEU and chrF each "
            f"({args.bootstrap} resamples of the test sentences, seed {args.bootstrap_seed}, sacrebleu's p-value; "
            f"it measures the test set's sampling, not the seeds' spread), against "
            f"{' '.join(str(shown_path(Path(path))) for path in ref_paths)}"
        )
    if args.by_length:
        src = args.src or files.src
        sources = read_lines(src)
        if len(sources) != len(references[0]):
            raise UserError(f"{src} has {len(sources)} lines, {ref_paths[0]} has {len(references[0])}")
        markdown, paths = length_report(
            outputs, sources, references, args.by_length, args.bucket_width, args.min_bucket
        )
        extra = f"{markdown}\nwrote {' '.join(map(str, paths))}"
    return systems_table(systems, common, args.seed_key, test, baseline, note), extra


def main(argv: list[str] | None = None) -> None:
    """A results table of finished runs (e.g. sweeps): runs that differ only in their seed form one
    system, reported as mean ± standard deviation, with paired bootstrap p-values against the best."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "dirs", nargs="+", metavar="DIR", help="run directories, or folders searched for them (e.g. multirun/study)"
    )
    parser.add_argument("--output", default="results", metavar="PREFIX", help="writes PREFIX.md and PREFIX.csv")
    parser.add_argument("--runs", action="store_true", help="one row per run instead of one per system")
    parser.add_argument("--seed-key", default="seed", help="the override that only changes the seed")
    parser.add_argument(
        "--ignore-key",
        nargs="*",
        default=[],
        metavar="KEY",
        help="more overrides (fnmatch patterns) that do not define a system; always ignored: "
        f"hydra.*, the seed key, {', '.join(DEFAULT_IGNORE)}",
    )
    parser.add_argument(
        "--baseline",
        default="auto",
        help="system label the others are tested against (default: the best mean test BLEU)",
    )
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="resamples (0: no test)")
    parser.add_argument("--bootstrap-seed", type=positive_int, default=DEFAULT_SEED, help="sacrebleu's by default")
    parser.add_argument("--src", help="test source file for --by-length (default: the runs' data config's)")
    parser.add_argument("--ref", nargs="+", help="test reference file(s) (default: the runs' data config's)")
    parser.add_argument(
        "--by-length", metavar="PREFIX", help="BLEU by source length: PREFIX.md, PREFIX.png and PREFIX.svg"
    )
    add_length_arguments(parser)
    run_tool(_collect, parser, argv)


if __name__ == "__main__":
    main()
