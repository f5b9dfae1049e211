"""The package's layers: a module imports only from its own package or from layers below it.

The order (docs/architecture.md): utils -> data -> modules -> checkpoint, metrics -> decoding ->
training -> analysis -> benchmark -> cli. An import that runs up (e.g. decoding reaching into
training) or sideways between packages of one rank fails here with the line that does it.
"""

import ast
import importlib
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nmt"
RANKS = {
    "utils": 0,
    "data": 1,
    "modules": 2,
    "checkpoint": 3,
    "metrics": 3,
    "decoding": 4,
    "training": 5,
    "analysis": 6,
    "benchmark": 7,
    "serving": 7,
    "cli": 8,
}
FACADE = 9  # nmt/__init__.py: the top-level names, importable by users only


def layer_of(module: str) -> tuple[str, int]:
    """`nmt.data.batching` -> ("data", 1); `nmt` itself -> ("", FACADE)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "", FACADE
    return parts[1], RANKS[parts[1]]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def nmt_imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every `import nmt...` / `from nmt... import` in the file,
    including those inside functions and `TYPE_CHECKING` blocks."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "nmt"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "nmt":
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: use absolute imports")
            found.append((node.lineno, node.module))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_rank() -> None:
    packages = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in MODULES} - {"__init__"}
    assert packages == set(RANKS)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_only_go_down(path: Path) -> None:
    package, rank = layer_of(module_name(path))
    if rank == FACADE:
        return
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {package} imports {target}"
        for line, target in nmt_imports(path)
        for target_package, target_rank in [layer_of(target)]
        if target_rank > rank or (target_rank == rank and target_package != package)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_an_import_that_runs_up(tmp_path: Path) -> None:
    upward = tmp_path / "bad.py"
    upward.write_text("def f():\n    from nmt.training.trainer import Trainer\n")
    assert nmt_imports(upward) == [(2, "nmt.training.trainer")]
    assert layer_of("nmt.training.trainer")[1] > layer_of("nmt.decoding.search")[1]


def test_every_console_tool_lives_in_the_cli_package_and_resolves() -> None:
    scripts = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts and all(target.startswith("nmt.cli.") for target in scripts.values()), scripts
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name
