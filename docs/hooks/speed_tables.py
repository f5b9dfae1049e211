"""mkdocs hook: the speed tables, rendered from the measurements in docs/benchmarks/*.json.

Why: a measured figure goes stale, and a page that keeps every measurement by hand grows into a
diary (the README did). Each measurement is one JSON file, written once: its date, machine
(CPU model, torch's CPU capability, whether bf16 is native), commit, setting and figures. Pages
only say where a table goes:

    <!-- speed-table: 2026-11-24_0604_cpu_peers.json -->  one measurement: its provenance and tables
    <!-- speed-history -->                                   every measurement, one row: its training figures

A new measurement is a new file (and, if it is the new reference, a new name in one marker).
A marker naming a missing file, or a file without a required field, fails the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

FOLDER = "benchmarks"
TABLE = re.compile(r"<!--\s*speed-table:\s*(?P<name>[\w.-]+\.json)\s*-->")
HISTORY = re.compile(r"<!--\s*speed-history\s*-->")
REQUIRED = ("date", "machine", "commit", "setting", "tables")
TRAINING = "training_tokens_per_s"  # the row key the history collects
RATIOS = {"training_bf16_vs_opennmt": "nmt bf16 / OpenNMT-py", "training_fp32_vs_opennmt": "nmt fp32 / OpenNMT-py"}
SYSTEMS = ("nmt bf16", "nmt fp32", "nmt fp16", "OpenNMT-py 3.5.1", "JoeyNMT 2.3.0")  # history's column order

Measurement = dict[str, Any]


def _load(docs_dir: Path) -> dict[str, Measurement]:
    measurements = {}
    for path in sorted((docs_dir / FOLDER).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise PluginError(f"{path}: missing {', '.join(missing)}")
        measurements[path.name] = data
    return measurements


def _number(value: Any, decimals: int | None) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)  # a range or a remark, as measured ("1.34-1.42")
    if isinstance(value, int) or decimals is None:
        return f"{value:,}"
    return f"{value:,.{decimals}f}"  # JSON drops trailing zeros: 1.20 is stored as 1.2


def _cell(value: Any, decimals: int | None = None, unit: str = "") -> str:
    if value is None:
        return ""
    values = value if isinstance(value, list) else [value]
    return " / ".join(_number(item, decimals) + unit for item in values)


def _decimals(row: dict[str, Any], column: str) -> int | None:
    """A row's decimals: one number, or one per column (the peers report fewer digits)."""
    decimals = row.get("decimals")
    return decimals.get(column) if isinstance(decimals, dict) else decimals


def _machine(machine: dict[str, Any], short: bool = False) -> str:
    bf16 = "bf16 native" if machine.get("bf16_native") else "bf16 not native"
    if short:
        return f"{machine.get('gpu') or machine.get('cpu_model')}; {bf16}"
    parts = [machine.get("gpu"), machine.get("cpu_model"), machine.get("torch")]
    if machine.get("threads"):
        parts.append(f"{machine['threads']} threads")
    if machine.get("torch_cpu_capability"):
        parts.append(f"torch CPU capability {machine['torch_cpu_capability']}")
    return ", ".join(str(part) for part in parts + [bf16] if part)


def _when(data: Measurement) -> str:
    return f"{data['date']} {data['time']}" if data.get("time") else data["date"]


def _table(table: dict[str, Any]) -> str:
    columns = table["columns"]
    lines = [f"| {table.get('corner', '')} | " + " | ".join(columns) + " |", "| --- " * (len(columns) + 1) + "|"]
    for row in table["rows"]:
        cells = [_cell(row["values"].get(column), _decimals(row, column), row.get("unit", "")) for column in columns]
        lines.append(f"| {row['what']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _measurement(name: str, data: Measurement, folder: str) -> str:
    """One measurement: where and when it was taken, then its tables, ratios and notes."""
    head = (
        f"*{_when(data)}; {_machine(data['machine'])}; commit `{data['commit']}`; "
        f"{data['setting']}* ([data]({folder}/{name}))"
    )
    blocks = [head]
    if data.get("commands"):
        blocks.append("```\n" + "\n".join(data["commands"]) + "\n```")
    blocks += [_table(table) for table in data["tables"]]
    ratios = [
        f"- {ratio['what']}: " + _cell(ratio["values"], ratio.get("decimals"), "x") for ratio in data.get("ratios", [])
    ]
    notes = [f"- {note}" for note in data.get("notes", [])]
    if ratios or notes:
        blocks.append("\n".join(ratios + notes))
    return "\n\n".join(blocks)


def _history(measurements: dict[str, Measurement], folder: str) -> str:
    """Every measurement, oldest first, with its training figures where it has them: what the
    files hold, nothing derived."""
    rows = []
    for name, data in sorted(measurements.items(), key=lambda item: _when(item[1])):
        training = next(
            (row["values"] for table in data["tables"] for row in table["rows"] if row.get("key") == TRAINING), {}
        )
        ratios = {
            ratio["key"]: _cell(ratio["values"], ratio.get("decimals"), "x")
            for ratio in data.get("ratios", [])
            if "key" in ratio
        }
        rows.append((name, data, training, ratios))
    systems = [system for system in SYSTEMS if any(system in training for _, _, training, _ in rows)]
    header = ["date", "machine", "commit", *systems, *RATIOS.values()]
    lines = ["| " + " | ".join(header) + " |", "| --- " * len(header) + "|"]
    for name, data, training, ratios in rows:
        cells = [
            f"[{_when(data)}]({folder}/{name})",
            _machine(data["machine"], short=True),
            f"`{data['commit']}`",
            *(_cell(training.get(system)) for system in systems),
            *(ratios.get(key, "") for key in RATIOS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replaces the speed markers of any page; pages without markers pass through unchanged."""
    if not (TABLE.search(markdown) or HISTORY.search(markdown)):
        return markdown
    measurements = _load(Path(config["docs_dir"]))
    folder = "../" * page.file.src_uri.count("/") + FOLDER  # links relative to the page's own file

    def table(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in measurements:
            raise PluginError(f"{page.file.src_path}: no docs/{FOLDER}/{name} for its speed-table marker")
        return _measurement(name, measurements[name], folder)

    markdown = TABLE.sub(table, markdown)
    return HISTORY.sub(lambda _: _history(measurements, folder), markdown)
