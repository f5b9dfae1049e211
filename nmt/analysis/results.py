"""Result tables for sweeps: finished runs grouped into systems (a run's command-line overrides
minus its seed), each system's mean ± sample standard deviation over its runs, and a paired
bootstrap test of each system's seed-averaged score against the best (or a chosen) system.

A system is what its overrides say, not what its name says: sweeps of different names that set
the same things are one system, and one sweep over `model/attention=dot,general` is two.
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, NamedTuple

import sacrebleu
import yaml

from nmt.data.corpus import read_lines
from nmt.data.sources import SplitFiles
from nmt.metrics.bleu import GroupTest, check_lengths
from nmt.training.run_layout import RunLayout
from nmt.utils.errors import UserError

DEFAULT_IGNORE = ("name", "trainer.progress_bar")
"""Override keys (fnmatch patterns) that never define a system; `hydra.*` and the seed key are always dropped."""

OVERRIDES = RunLayout(Path()).overrides
"""Where Hydra writes a job's command-line overrides, relative to its run directory."""


@dataclass(frozen=True)
class Run:
    """A finished run: its directory, its `summary.json`, and its overrides (None when Hydra wrote none)."""

    layout: RunLayout
    summary: dict[str, Any]
    overrides: tuple[str, ...] | None

    def value(self, key: str) -> Any:
        """The summary's value at a dotted `key` (e.g. `test.bleu`, `config.seed`).

        Raises:
            UserError: naming the summary file and the key, if it is missing.
        """
        value: Any = self.summary
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise UserError(f"{self.layout.summary}: no {key!r} (written by an older version of nmt?)")
            value = value[part]
        return value

    def hypotheses(self) -> list[str]:
        return read_lines(self.layout.test_hypotheses)


class Skipped(NamedTuple):
    """A run directory without `summary.json` (a failed or unfinished job), and why, as far as known."""

    root: Path
    reason: str


def natural_order(path: Path) -> list[Any]:
    """Sorts job folders 2 before 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def shown_path(path: Path) -> Path:
    """`path` relative to the current directory when it lies below it: tables stay readable and
    their paths portable."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def find_runs(paths: Iterable[str | Path]) -> tuple[list[Run], list[Skipped]]:
    """The run directories at or below `paths`: those with a `summary.json`, and those (with a
    `train.log` or Hydra overrides, but no summary) that did not finish.

    Raises:
        UserError: if a path is not a directory or holds no run directory, or a summary or
            overrides file cannot be read.
    """
    roots: set[Path] = set()
    for path in map(Path, paths):
        if not path.is_dir():
            raise UserError(f"{path}: not a directory")
        found = {p.parent.resolve() for name in ("summary.json", "train.log") for p in path.rglob(name)}
        found |= {p.parent.parent.resolve() for p in path.rglob(str(OVERRIDES))}  # resolved: each run once
        if not found:
            raise UserError(f"{path}: no run directories below it (no summary.json, train.log or {OVERRIDES})")
        roots |= found
    runs, skipped = [], []
    for root in sorted(roots, key=natural_order):
        layout = RunLayout(root)
        if layout.summary.is_file():
            runs.append(Run(layout, _read_json(layout.summary), read_overrides(layout)))
        else:
            skipped.append(Skipped(root, _why_unfinished(layout)))
    return runs, skipped


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a JSON object")
    return data


def read_overrides(layout: RunLayout) -> tuple[str, ...] | None:
    """The run's command-line overrides; None if Hydra wrote none (a run made outside Hydra).

    Raises:
        UserError: naming the file, if it is not a YAML list of strings.
    """
    path = layout.overrides
    if not path.is_file():
        return None
    try:
        overrides = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UserError(f"{path}: not a readable YAML file ({error})") from None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise UserError(f"{path}: not a list of overrides (key=value strings)")
    return tuple(overrides)


def job_status(job_dir: Path) -> str:
    """`finished` (summary.json written), `failed: <reason>` or `unfinished` (e.g. killed)."""
    layout = RunLayout(job_dir)
    if layout.summary.is_file():
        return "finished"
    if layout.failure.is_file():
        return "failed: " + layout.failure.read_text(encoding="utf-8").strip()
    return "unfinished"


def _why_unfinished(layout: RunLayout) -> str:
    """The job's status, and for a job that recorded no failure, the last line of its log."""
    status = job_status(layout.root)
    lines = (
        layout.log.read_text(encoding="utf-8", errors="replace").strip().splitlines() if layout.log.is_file() else []
    )
    if status == "unfinished" and lines:
        return f"no summary.json; {layout.log.name}: {lines[-1].strip()}"
    return f"no summary.json; {status}"


def override_key(override: str) -> str:
    """The key an override sets, without Hydra's add/force/delete prefix:
    `+model/attention=dot` -> `model/attention`."""
    return override.split("=", 1)[0].lstrip("+~")


def system_overrides(run: Run, seed_key: str = "seed", ignore: Sequence[str] = DEFAULT_IGNORE) -> tuple[str, ...]:
    """The overrides that define the run's system: all but Hydra's own, the seed and `ignore`d keys.

    A run without Hydra's overrides file (made outside Hydra) is known by its name alone.
    """
    if run.overrides is None:
        return (f"name={run.value('config.name')}",)
    dropped = ("hydra.*", seed_key, *ignore)
    return tuple(o for o in run.overrides if not any(fnmatch(override_key(o), pattern) for pattern in dropped))


@dataclass(frozen=True)
class System:
    """Runs that differ only in their seed (or ignored keys); `label` is the overrides that set it
    apart from the other systems collected."""

    label: str
    runs: list[Run]


def group_runs(
    runs: Sequence[Run], seed_key: str = "seed", ignore: Sequence[str] = DEFAULT_IGNORE
) -> tuple[list[System], list[str]]:
    """Groups runs into systems by `system_overrides`.

    Returns:
        The systems, in order of their first run, and the overrides common to every run (shown
        once above a table, so that labels hold only what varies).
    """
    settings = [
        dict(sorted((override_key(o), o.lstrip("+~")) for o in system_overrides(run, seed_key, ignore))) for run in runs
    ]  # sorted, without Hydra's prefixes: `+a=1 b=2` and `b=2 a=1` are one system
    keys = dict.fromkeys(key for setting in settings for key in setting)
    common = [key for key in keys if all(setting.get(key) == settings[0].get(key) for setting in settings)]
    grouped: dict[str, list[Run]] = {}
    for run, setting in zip(runs, settings):
        label = " ".join(override for key, override in setting.items() if key not in common)
        grouped.setdefault(label or "(common settings only)", []).append(run)
    for label, members in grouped.items():
        seeds = [run.value(f"config.{seed_key}") for run in members]
        if len(set(seeds)) < len(seeds):
            repeated = next(seed for seed in seeds if seeds.count(seed) > 1)
            twins = [str(run.layout.root) for run, seed in zip(members, seeds) if seed == repeated]
            raise UserError(
                f"system {label!r} has {seed_key}={repeated} twice ({', '.join(twins)}): "
                "collect one of them, or its spread would shrink"
            )
    return [System(label, members) for label, members in grouped.items()], [settings[0][key] for key in common]


class MeanStd(NamedTuple):
    """A mean over runs and the sample standard deviation (n - 1; None for a single run)."""

    mean: float
    std: float | None


def mean_std(values: Sequence[float]) -> MeanStd:
    return MeanStd(statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None)


def runs_test_set(runs: Sequence[Run]) -> SplitFiles:
    """The test set the runs were scored on: the files their summaries name, if unchanged (checked
    by checksum); for runs from before summaries named them, found as training found them, by
    preparing each distinct data config (relative paths from the current directory).

    Raises:
        UserError: if the files changed or moved, a data config cannot be prepared, or the runs'
            test sets differ.
    """
    found = {_recorded_test_set(run) if "test_files" in run.summary else _prepared_test_set(run) for run in runs}
    if len(found) > 1:
        raise UserError(
            f"the runs were tested on different test sets ({', '.join(str(f.tgt) for f in found)}):"
            " collect them separately"
        )
    return found.pop()


def _recorded_test_set(run: Run) -> SplitFiles:
    from nmt.utils.fileio import file_fingerprint

    files = {}
    for side in ("src", "tgt"):
        path, sha256 = Path(run.value(f"test_files.{side}.path")), run.value(f"test_files.{side}.sha256")
        if not path.is_file() or file_fingerprint(path) != sha256:
            raise UserError(f"{path}: the test file of {run.layout.summary} is gone or changed: pass --src and --ref")
        files[side] = path
    return SplitFiles(files["src"], files["tgt"])


def _prepared_test_set(run: Run) -> SplitFiles:
    from hydra.errors import InstantiationException
    from omegaconf import OmegaConf

    from nmt.training.experiment import prepare_data  # torch: only here

    data = run.value("config.data")
    if not isinstance(data, dict) or "_target_" not in data:
        raise UserError(f"{run.layout.summary}: config.data names no data source (_target_): pass --src and --ref")
    try:
        files = prepare_data(OmegaConf.create({"data": data}))["test"]
    except (UserError, InstantiationException, OSError) as error:
        raise UserError(f"{error} (preparing the test set of {run.layout.summary}; or pass --src and --ref)") from None
    return SplitFiles(files.src.resolve(), files.tgt.resolve())


def check_test_scores(
    runs: Sequence[Run], references: Sequence[Sequence[str]], ref_paths: Sequence[str | Path]
) -> None:
    """Every run's test.hyp must score, against `references`, the BLEU its summary holds: otherwise
    these are not its test references, and tables or figures built on them would be wrong.

    Raises:
        UserError: naming the first run that scores differently.
    """
    bleu = sacrebleu.metrics.BLEU()
    streams = [list(stream) for stream in references]
    for run in runs:
        hypotheses = run.hypotheses()
        check_lengths(hypotheses, references, str(run.layout.test_hypotheses))
        scored = bleu.corpus_score(hypotheses, streams).score
        if abs(scored - run.value("test.bleu")) > 0.01:
            raise UserError(
                f"{run.layout.test_hypotheses}: BLEU {scored:.2f} against {' '.join(map(str, ref_paths))}, "
                f"{run.value('test.bleu'):.2f} in its summary.json: not its test references"
            )


class Column(NamedTuple):
    """A table column: its header, the format of its numbers, and whether its cells are `MeanStd`s
    (one Markdown column `mean ± std`, two CSV columns)."""

    header: str
    spec: str = ""
    spread: bool = False


@dataclass(frozen=True)
class Table:
    """Rows of cells (str, int, float, MeanStd or None) under `columns`, with note lines above.

    Markdown is rounded for reading; CSV keeps every number unrounded, for analysis.
    """

    columns: list[Column]
    rows: list[list[Any]]
    notes: list[str]

    def markdown(self) -> str:
        lines = [*self.notes, ""] if self.notes else []
        lines += ["| " + " | ".join(c.header for c in self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += [
            "| " + " | ".join(_markdown_cell(v, c.spec) for v, c in zip(row, self.columns)) + " |" for row in self.rows
        ]
        return "\n".join(lines)

    def csv(self) -> str:
        stream = io.StringIO()
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([h for c in self.columns for h in ((c.header, f"{c.header} std") if c.spread else (c.header,))])
        for row in self.rows:
            writer.writerow([x for v in row for x in (v if isinstance(v, MeanStd) else (v,))])
        return stream.getvalue()

    def write(self, prefix: str | Path) -> list[Path]:
        """Writes `prefix`.md and `prefix`.csv; returns both paths."""
        paths = [Path(f"{prefix}.md"), Path(f"{prefix}.csv")]
        for path, text in zip(paths, (self.markdown() + "\n", self.csv())):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return paths


def _markdown_cell(value: Any, spec: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, MeanStd):
        return f"{value.mean:{spec}} ± {'—' if value.std is None else format(value.std, spec)}"
    return value if isinstance(value, str) else format(value, spec)


def systems_table(
    systems: Sequence[System],
    common: Sequence[str],
    seed_key: str = "seed",
    test: GroupTest | None = None,
    baseline: int = 0,
    note: str = "",
) -> Table:
    """One row per system: runs and seeds, test BLEU and chrF and best validation BLEU (mean ± std),
    parameters, training minutes and target tokens/s (means), and, with `test`, p vs `baseline`."""
    columns = [
        Column("system"),
        Column("runs"),
        Column("seeds"),
        Column("test BLEU", ".2f", True),
        Column("test chrF", ".2f", True),
        Column("valid BLEU", ".2f", True),
        Column("parameters", ","),
        Column("training minutes", ".1f"),
        Column("target tokens/s", ".0f"),
    ]
    if test is not None:
        columns += [Column("p BLEU", ".4f"), Column("p chrF", ".4f")]
    rows = []
    for index, system in enumerate(systems):
        values = {
            key: [run.value(key) for run in system.runs]
            for key in (
                "test.bleu",
                "test.chrf",
                "best_valid.bleu",
                "parameters",
                "training_seconds",
                "target_tokens_per_second",
            )
        }
        parameters = sorted(set(values["parameters"]))
        row = [
            system.label + (" (baseline)" if test is not None and index == baseline else ""),
            len(system.runs),
            " ".join(str(run.value(f"config.{seed_key}")) for run in system.runs),
            mean_std(values["test.bleu"]),
            mean_std(values["test.chrf"]),
            mean_std(values["best_valid.bleu"]),
            parameters[0] if len(parameters) == 1 else f"{parameters[0]:,}–{parameters[-1]:,}",
            statistics.mean(values["training_seconds"]) / 60,
            statistics.mean(values["target_tokens_per_second"]),
        ]
        if test is not None:
            row += [test.p_values["bleu"][index], test.p_values["chrf"][index]]
        rows.append(row)
    runs = [run for system in systems for run in system.runs]
    compute = (
        f"{len(runs)} runs; their wall-clock time (start-up, training, validation, test) adds up to "
        f"{sum(run.value('wall_seconds') for run in runs) / 3600:.2f} hours"
    )
    notes = ([f"common settings: {' '.join(common)}"] if common else []) + [compute] + ([note] if note else [])
    return Table(columns, rows, notes)


def runs_table(runs: Sequence[Run]) -> Table:
    """One row per run: name, decoder and scorer classes, size, steps, best validation and test scores."""
    columns = [
        Column("name"),
        Column("decoder"),
        Column("scorer"),
        Column("parameters", ","),
        Column("steps"),
        Column("best step"),
        Column("valid BLEU (greedy)", ".2f"),
        Column("valid ppl", ".2f"),
        Column("test BLEU", ".2f"),
        Column("test chrF", ".2f"),
        Column("run"),
    ]
    rows = []
    for run in runs:
        decoder = run.value("config.model.decoder")
        rows.append(
            [
                run.value("config.name"),
                decoder["_target_"].rsplit(".", 1)[-1],
                (decoder.get("scorer") or {}).get("_target_", "none").rsplit(".", 1)[-1],
                run.value("parameters"),
                run.value("steps"),
                run.value("best_step"),
                run.value("best_valid.bleu"),
                run.value("best_valid.ppl"),
                run.value("test.bleu"),
                run.value("test.chrf"),
                str(shown_path(run.layout.root)),
            ]
        )
    return Table(columns, rows, [])


def length_report(
    systems: Sequence[tuple[str, Sequence[tuple[str, Sequence[str]]]]],
    sources: Sequence[str],
    references: Sequence[Sequence[str]],
    prefix: str | Path,
    width: int = 10,
    min_count: int = 50,
) -> tuple[str, list[Path]]:
    """BLEU by source length (words) of each system, mean ± std over its runs (Bahdanau et al.,
    2015, Figure 2): writes `prefix`.md, .png and .svg; returns the Markdown and the paths.

    Args:
        systems: (system name, runs) pairs, as in `group_bootstrap`.
    """
    from nmt.analysis.length import (  # matplotlib: only here
        bleu_by_length_of_groups,
        length_buckets,
        length_figure,
        save_figure,
        word_lengths,
    )

    table = bleu_by_length_of_groups(length_buckets(word_lengths(sources), width, min_count), systems, references)
    markdown = Path(f"{prefix}.md")
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(table.markdown() + "\n", encoding="utf-8")
    return table.markdown(), [markdown, *save_figure(length_figure(table), prefix)]
