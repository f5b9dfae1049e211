"""Command-line tools: prepare data, score hypothesis files (and compare systems), score
alignments, average checkpoints, tabulate finished runs. (Translating is `nmt.translate_cli`,
exporting `nmt.export`, attention figures `nmt.attention_figure`.)

Installed as `nmt-prepare`, `nmt-evaluate`, `nmt-aer`, `nmt-average` and `nmt-collect`; `scripts/*.py`
call the same functions. Mistakes a user can fix end in a one-line `error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from nmt.alignment import alignment_error_rate, read_pharaoh
from nmt.checkpoint import average_checkpoints, save_checkpoint
from nmt.data.corpus import read_lines
from nmt.data.sources import Multi30k
from nmt.errors import UserError
from nmt.evaluation import DEFAULT_SEED, check_lengths, group_bootstrap, paired_bootstrap, score
from nmt.results import (DEFAULT_IGNORE, Run, Table, check_test_scores, find_runs, group_runs, length_report,
                         runs_table, runs_test_set, shown_path, systems_table)
from nmt.run_layout import RunLayout


def run_tool(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser,
             argv: list[str] | None) -> None:
    """Parses `argv` and runs `main`; a `UserError` ends in one `error: ...` line and exit status 2."""
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
    run_tool(_prepare, parser, argv)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _evaluate(args: argparse.Namespace) -> None:
    from nmt.length_analysis import (bleu_by_length, length_buckets, length_figure,  # matplotlib: only here
                                     save_figure, word_lengths)

    if args.by_length and not args.src:
        raise UserError("--by-length needs --src (the source file the lengths come from)")
    references = [read_lines(path) for path in args.ref]
    if not references[0]:
        raise UserError(f"{args.ref[0]}: no lines to score")
    systems = [(path, read_lines(path)) for path in args.hyp]
    for path, hypotheses in systems:
        check_lengths(hypotheses, references, path)
    sources = read_lines(args.src) if args.src else None
    if sources is not None and len(sources) != len(references[0]):
        raise UserError(f"{args.src} has {len(sources)} lines, {args.ref[0]} has {len(references[0])}")

    if len(systems) == 1:
        print(score(systems[0][1], references))
    if len(systems) > 1 or args.bootstrap:
        print(paired_bootstrap(systems, references, samples=args.bootstrap or 1000, seed=args.seed))
    if sources is not None:
        table = bleu_by_length(length_buckets(word_lengths(sources), args.bucket_width, args.min_bucket),
                               systems, references)
        print(table.markdown())
        if args.by_length:
            print("wrote", " ".join(str(p) for p in save_figure(length_figure(table), args.by_length)))


def evaluate_main(argv: list[str] | None = None) -> None:
    """Scores detokenized hypotheses against references with sacrebleu (BLEU, chrF, TER); compares
    several systems by paired bootstrap resampling; breaks BLEU down by source length."""
    parser = argparse.ArgumentParser(description=evaluate_main.__doc__)
    parser.add_argument("--hyp", required=True, nargs="+",
                        help="hypothesis file(s), one sentence per line; the first is the baseline")
    parser.add_argument("--ref", required=True, nargs="+", help="reference file(s)")
    parser.add_argument("--bootstrap", type=positive_int, metavar="N",
                        help="paired bootstrap resamples (default 1000 with several --hyp; "
                             "with one, gives its 95%% confidence interval)")
    parser.add_argument("--seed", type=positive_int, default=DEFAULT_SEED, help="bootstrap seed")
    parser.add_argument("--src", help="source file: print BLEU by source length (words)")
    parser.add_argument("--by-length", metavar="PREFIX", help="with --src: also plot it to PREFIX.png and PREFIX.svg")
    parser.add_argument("--bucket-width", type=positive_int, default=10, help="source lengths per bucket")
    parser.add_argument("--min-bucket", type=positive_int, default=50,
                        help="merge neighbouring buckets until each has this many sentences")
    run_tool(_evaluate, parser, argv)


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
    run_tool(_average, parser, argv)


def _aer(args: argparse.Namespace) -> None:
    hypotheses, gold = read_pharaoh(args.hyp_align), read_pharaoh(args.gold)
    if len(hypotheses) != len(gold):
        raise UserError(f"{args.hyp_align} has {len(hypotheses)} lines, {args.gold} has {len(gold)}")
    print(alignment_error_rate([h.possible for h in hypotheses], gold))


def aer_main(argv: list[str] | None = None) -> None:
    """Alignment error rate (Och & Ney, 2003), precision and recall of word alignments in Pharaoh
    format (`i-j`: source word i, target word j), one line per sentence."""
    parser = argparse.ArgumentParser(description=aer_main.__doc__)
    parser.add_argument("--hyp-align", required=True, help="alignments to score; every link counts, i-j or i?j")
    parser.add_argument("--gold", required=True, help="gold alignments: i-j sure, i?j possible")
    run_tool(_aer, parser, argv)


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
        outputs = [(system.label, [(str(run.layout.test_hypotheses), run.hypotheses()) for run in system.runs])
                   for system in systems]
        check_test_scores(runs, references, ref_paths)
    if compare:
        test = group_bootstrap(outputs, references, baseline, args.bootstrap, args.bootstrap_seed)
        note = (f"p: paired bootstrap vs the baseline of each system's mean over its runs, BLEU and chrF each "
                f"({args.bootstrap} resamples of the test sentences, seed {args.bootstrap_seed}, sacrebleu's p-value; "
                f"it measures the test set's sampling, not the seeds' spread), against "
                f"{' '.join(str(shown_path(Path(path))) for path in ref_paths)}")
    if args.by_length:
        src = args.src or files.src
        sources = read_lines(src)
        if len(sources) != len(references[0]):
            raise UserError(f"{src} has {len(sources)} lines, {ref_paths[0]} has {len(references[0])}")
        markdown, paths = length_report(outputs, sources, references, args.by_length, args.bucket_width,
                                        args.min_bucket)
        extra = f"{markdown}\nwrote {' '.join(map(str, paths))}"
    return systems_table(systems, common, args.seed_key, test, baseline, note), extra


def collect_main(argv: list[str] | None = None) -> None:
    """A results table of finished runs (e.g. sweeps): runs that differ only in their seed form one
    system, reported as mean ± standard deviation, with paired bootstrap p-values against the best."""
    parser = argparse.ArgumentParser(description=collect_main.__doc__)
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="run directories, or folders searched for them (e.g. multirun/study)")
    parser.add_argument("--output", default="results", metavar="PREFIX", help="writes PREFIX.md and PREFIX.csv")
    parser.add_argument("--runs", action="store_true", help="one row per run instead of one per system")
    parser.add_argument("--seed-key", default="seed", help="the override that only changes the seed")
    parser.add_argument("--ignore-key", nargs="*", default=[], metavar="KEY",
                        help="more overrides (fnmatch patterns) that do not define a system; always ignored: "
                             f"hydra.*, the seed key, {', '.join(DEFAULT_IGNORE)}")
    parser.add_argument("--baseline", default="auto",
                        help="system label the others are tested against (default: the best mean test BLEU)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="resamples (0: no test)")
    parser.add_argument("--bootstrap-seed", type=positive_int, default=DEFAULT_SEED, help="sacrebleu's by default")
    parser.add_argument("--src", help="test source file for --by-length (default: the runs' data config's)")
    parser.add_argument("--ref", nargs="+", help="test reference file(s) (default: the runs' data config's)")
    parser.add_argument("--by-length", metavar="PREFIX",
                        help="BLEU by source length: PREFIX.md, PREFIX.png and PREFIX.svg")
    parser.add_argument("--bucket-width", type=positive_int, default=10, help="source lengths per bucket")
    parser.add_argument("--min-bucket", type=positive_int, default=50,
                        help="merge neighbouring buckets until each has this many sentences")
    run_tool(_collect, parser, argv)
