"""The report of the alignment study (`scripts/alignment_study.sh`): test BLEU and AER against
silver alignments, mean ± std over seeds, with paired bootstrap p-values, and attention figures.

    python scripts/alignment_study_report.py --runs multirun/alignment_study --output docs/results/alignment_study

For every finished run below `--runs`, the checkpoint aligns test_2016_flickr with its references
as given targets (`Translator.align`: forced decoding, each target word to the source word it
attends to most) and the mean entropy of its attention is measured (`summarize_attention`); both
are kept in the run's folder. eflomal's symmetrized alignments of Multi30k (train and test aligned
together, `nmt.analysis.silver_alignments`; computed once, kept in the study's folder) are the
reference. Runs that differ only in their seed form a system. Each system is compared with the
one it changes (`reference_system`): a guided system with its unguided twin, a sparse normalizer
with softmax, scaled dot with additive; the p-values are paired bootstrap tests over the test
sentences (1000 resamples, the seeds' mean on each), BLEU's from `group_bootstrap` and AER's
from `aer_group_bootstrap`.

Writes PREFIX.md, PREFIX.csv, PREFIX.json and PREFIX_attention.png/.svg: the attention of the
project's own sentences (docs/figures/sentences.de, translated by each model) for the additive
systems of seed 1, one column per normalizer, unguided and guided.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

from nmt import Translator
from nmt.analysis.attention_figure import System as FigureSystem
from nmt.analysis.attention_figure import attention_comparison, pick_sentences
from nmt.analysis.length import save_figure
from nmt.analysis.results import Column, MeanStd, Run, System, Table, find_runs, group_runs, mean_std
from nmt.analysis.silver_alignments import SilverAlignments, against, eflomal_alignments
from nmt.cli.common import run_tool
from nmt.data.alignments import Alignment
from nmt.data.corpus import read_parallel
from nmt.metrics.alignment import aer_group_bootstrap, summarize_attention
from nmt.metrics.bleu import group_bootstrap
from nmt.utils.fileio import write_bytes_atomically

DEFAULTS = {
    "trainer.guided_alignment.weight": "0",
    "model/attention/normalizer": "softmax",
    "model/attention": "additive",
}
"""What a system changes, in order: the first setting that differs from its default names the
system it is compared with (the same system with that setting at its default)."""

SILVER = "silver_alignments.json"
"""The study's silver reference, in the study's folder."""
SILVER_KEYS = ("forward", "backward", "symmetrized")

MEASURED = "alignment_study.json"
"""A run's measured test alignments and attention entropy, beside its checkpoints."""

COLUMNS = [
    Column("scorer"),
    Column("normalizer"),
    Column("guided"),
    Column("runs"),
    Column("test BLEU", ".2f", True),
    Column("AER", ".4f", True),
    Column("precision", ".4f", True),
    Column("recall", ".4f", True),
    Column("attention entropy", ".3f", True),
    Column("compared with"),
    Column("p BLEU", ".4f"),
    Column("p AER", ".4f"),
]


def settings(system: System) -> dict[str, str]:
    """The system's overrides as key -> value (its defaults filled in)."""
    found = dict(DEFAULTS)
    for override in system.runs[0].overrides or ():
        key, _, value = override.lstrip("+~").partition("=")
        found[key] = value
    return {key: found[key] for key in DEFAULTS}


def reference_system(mine: dict[str, str], systems: dict[str, dict[str, str]]) -> str | None:
    """The label of the system `mine` is compared with (None for the all-defaults system)."""
    for key, default in DEFAULTS.items():
        if mine[key] != default:
            wanted = {**mine, key: default}
            return next((label for label, other in systems.items() if other == wanted), None)
    return None


def test_key(test: tuple[list[str], list[str]]) -> str:
    """What the kept measurements are valid for: a hash of the test set's text."""
    return hashlib.sha256(json.dumps(test).encode()).hexdigest()[:16]


def measure(run: Run, test: tuple[list[str], list[str]], device: str) -> dict[str, Any]:
    """One run's test alignments (forced decoding of the references) and attention entropy, kept
    in the run's folder (`MEASURED`) so that a report of a growing study measures each run once."""
    checkpoint, kept, key = run.layout.best_checkpoint, run.layout.root / MEASURED, test_key(test)
    if kept.is_file() and kept.stat().st_mtime > checkpoint.stat().st_mtime:
        found = json.loads(kept.read_text())
        if found.get("test") == key:
            return {"links": [[tuple(link) for link in links] for links in found["links"]], "entropy": found["entropy"]}
    translator = Translator.from_checkpoint(checkpoint, device=device)
    scores = translator.score(*test, attention=True)
    links = translator.align(*test, scores=scores)
    entropy = summarize_attention([s.attention for s in scores if s is not None]).mean_entropy
    write_bytes_atomically(kept, json.dumps({"test": key, "links": links, "entropy": entropy}).encode())
    return {"links": links, "entropy": entropy}


def silver_reference(kept: Path, data: Path, test: tuple[list[str], list[str]]) -> tuple[SilverAlignments, str]:
    """eflomal's alignments of the test set (aligned with the training pairs) and eflomal's
    version, computed once per study and test set and kept in `kept`: eflomal takes no seed, so a
    second run would move every AER a little."""
    key = test_key(test)
    if kept.is_file():
        found = json.loads(kept.read_text())
        if found.get("test") == key:
            silver = SilverAlignments(*([set(map(tuple, links)) for links in found[name]] for name in SILVER_KEYS))
            return silver, found["eflomal"]
    silver = eflomal_alignments(read_parallel(data / "train.de.gz", data / "train.en.gz"), test)
    version = metadata.version("eflomal")
    stored = {name: [sorted(links) for links in getattr(silver, name)] for name in SILVER_KEYS}
    write_bytes_atomically(kept, json.dumps({"test": key, "eflomal": version, **stored}).encode())
    return silver, version


def report(args: argparse.Namespace) -> None:
    runs, skipped = find_runs([args.runs])
    for missing in skipped:
        print(f"skipped {missing.root}: {missing.reason}")
    systems, common = group_runs(runs)
    data = Path(args.data)
    test = read_parallel(data / f"{args.test}.de.gz", data / f"{args.test}.en.gz")
    silver, eflomal_version = silver_reference(Path(args.runs) / SILVER, data, test)
    reference = [Alignment(frozenset(links), frozenset(links)) for links in silver.symmetrized]
    measured = {id(run): measure(run, test, args.device) for system in systems for run in system.runs}
    labelled = {system.label: settings(system) for system in systems}
    systems = sorted(systems, key=lambda system: _order(labelled[system.label]))
    by_label = {system.label: system for system in systems}
    rows, records = [], []
    for system in systems:
        mine = labelled[system.label]
        runs_of = [measured[id(run)] for run in system.runs]
        scores = [against(m["links"], silver.symmetrized) for m in runs_of]
        other_label = reference_system(mine, labelled)
        p_bleu = p_aer = None
        if other_label is not None:
            other = by_label[other_label]
            hypotheses = [[(str(r.layout.root), r.hypotheses()) for r in s.runs] for s in (other, system)]
            bleu_test = group_bootstrap([(other_label, hypotheses[0]), (system.label, hypotheses[1])], [test[1]])
            p_bleu = bleu_test.p_values["bleu"][1]
            p_aer = aer_group_bootstrap(
                [[measured[id(r)]["links"] for r in other.runs], [m["links"] for m in runs_of]], reference
            )[1]
        row = [
            mine["model/attention"],
            mine["model/attention/normalizer"],
            f"weight {mine['trainer.guided_alignment.weight']}" if is_guided(mine) else "no",
            len(system.runs),
            mean_std([r.value("test.bleu") for r in system.runs]),
            mean_std([s.aer for s in scores]),
            mean_std([s.precision for s in scores]),
            mean_std([s.recall for s in scores]),
            mean_std([m["entropy"] for m in runs_of]),
            _short(labelled[other_label]) if other_label else "—",
            p_bleu,
            p_aer,
        ]
        rows.append(row)
        seeds = [r.value("config.seed") for r in system.runs]
        cells = dict(zip([c.header for c in COLUMNS], map(_plain, row)))
        records.append({"system": system.label, "seeds": seeds, **cells})
    hours = sum(run.value("wall_seconds") for run in runs) / 3600
    notes = [
        f"common settings: {' '.join(common)}",
        f"{len(runs)} runs; their wall-clock time (start-up, training, validation, test) adds up to {hours:.2f} hours",
        f"AER, precision, recall: test_2016_flickr against eflomal's grow-diag-final silver alignments "
        f"(eflomal {eflomal_version}); p: paired bootstrap over "
        "the test sentences (1000 resamples, seed 12345) of the seeds' mean, vs the system in `compared with`",
    ]
    table = Table(COLUMNS, rows, notes)
    print(table.markdown())
    paths = table.write(args.output)
    summary = {"date": date.today().isoformat(), "runs": str(args.runs), "systems": records}
    Path(f"{args.output}.json").write_text(json.dumps(summary, indent=2) + "\n")
    paths.append(Path(f"{args.output}.json"))
    paths += figure(systems, labelled, args)
    print("wrote", " ".join(str(path) for path in paths))


def figure(systems: list[System], labelled: dict[str, dict[str, str]], args: argparse.Namespace) -> list[Path]:
    """The attention of `--sentences` for seed 1 of the additive systems, normalizers side by side."""
    columns = []
    for guided in (False, True):
        for normalizer in ("softmax", "sparsemax", "entmax15"):
            for system in systems:
                mine = labelled[system.label]
                wanted = ("additive", normalizer, guided)
                if (mine["model/attention"], mine["model/attention/normalizer"], is_guided(mine)) != wanted:
                    continue
                first = min(system.runs, key=lambda run: run.value("config.seed"))
                name = f"{normalizer}{', guided' if guided else ''}"
                columns.append(FigureSystem(name, first.layout.best_checkpoint))
    if not columns:
        return []
    sentences = pick_sentences(args.sentences, None, args.lines)
    return save_figure(attention_comparison(columns, sentences, args.device), f"{args.output}_attention")


NORMALIZERS = ("softmax", "sparsemax", "entmax15")


def _order(mine: dict[str, str]) -> tuple[str, int, bool]:
    """Table order: by scorer, then normalizer (softmax first), unguided before guided."""
    normalizer = mine["model/attention/normalizer"]
    rank = NORMALIZERS.index(normalizer) if normalizer in NORMALIZERS else len(NORMALIZERS)
    return mine["model/attention"], rank, is_guided(mine)


def is_guided(mine: dict[str, str]) -> bool:
    return float(mine["trainer.guided_alignment.weight"]) != 0


def _short(mine: dict[str, str]) -> str:
    return f"{mine['model/attention']} {mine['model/attention/normalizer']}{' guided' if is_guided(mine) else ''}"


def _plain(value: Any) -> Any:
    return value._asdict() if isinstance(value, MeanStd) else value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="the study's folder (multirun/alignment_study)")
    parser.add_argument("--output", required=True, metavar="PREFIX")
    parser.add_argument(
        "--data",
        default=os.environ.get("NMT_MULTI30K", "data/multi30k"),
        help="the folder with Multi30k's original .gz files (default: $NMT_MULTI30K)",
    )
    parser.add_argument("--test", default="test_2016_flickr")
    parser.add_argument("--sentences", default="docs/figures/sentences.de", help="the figure's source sentences")
    parser.add_argument("--lines", nargs="+", type=int, default=[1, 3], help="their line numbers in the figure")
    parser.add_argument("--device", default="cpu")
    run_tool(report, parser, argv)


if __name__ == "__main__":
    main()
