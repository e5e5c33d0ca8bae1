"""The import direction of style.md, checked on the source. From the bottom of the graph up:

    domain <- ledger <- projections <- grpc_api <- benchmarks <- entrypoints

`domain` imports nothing of ours; `ledger` imports `domain`; `projections` imports `domain`
and may read through `ledger`; `grpc_api` imports those three; `benchmarks` imports the
product (those four) and nothing imports it but the entry points; `entrypoints` (the CLI, the
demo) is the top and may import every package of ours, and no package of ours imports it.
No package imports `tests`; the tests themselves may import anything."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> the packages of ours it may import (itself always allowed). Every top-level
# package has a row: a new one is placed in the graph deliberately, here.
ALLOWED = {
    "domain": set(),
    "ledger": {"domain"},
    "projections": {"domain", "ledger"},
    "grpc_api": {"domain", "ledger", "projections"},
    "benchmarks": {"domain", "ledger", "projections", "grpc_api"},
    "entrypoints": {"domain", "ledger", "projections", "grpc_api", "benchmarks"},
}
OURS = {*ALLOWED, "tests"}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package of ours) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name.split(".")[0]) for name in names
                  if name.split(".")[0] in OURS]
    return found


def violations(package: str, root: Path = ROOT) -> list[str]:
    allowed = ALLOWED[package] | {package}
    bad: list[str] = []
    for path in sorted((root / package).rglob("*.py")):
        if "generated" in path.parts:
            continue
        for line, imported in imported_packages(path):
            if imported not in allowed:
                bad.append(f"{path.relative_to(root)}:{line} imports {imported}")
    return bad


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package: str) -> None:
    assert violations(package) == []


@pytest.mark.parametrize(("package", "line", "imported"), [
    ("domain", "from ledger.engine import Ledger", "ledger"),
    ("grpc_api", "from benchmarks.loadgen import run_bench", "benchmarks"),
    ("benchmarks", "import entrypoints.cli", "entrypoints"),
    ("entrypoints", "from tests.helpers import alliance", "tests"),
])
def test_the_check_catches_a_wrong_way_import(tmp_path: Path, package: str, line: str,
                                              imported: str) -> None:
    (tmp_path / package).mkdir()
    (tmp_path / package / "bad.py").write_text(f"import os\n{line}\n")
    assert violations(package, tmp_path) == [f"{package}/bad.py:2 imports {imported}"]


def top_level_packages(root: Path = ROOT) -> set[str]:
    """Every folder at the top of the repository holding Python source."""
    return {path.name for path in root.iterdir()
            if path.is_dir() and not path.name.startswith(".") and any(path.glob("*.py"))}


def test_every_package_of_ours_has_a_place_in_the_graph() -> None:
    assert top_level_packages() - {"tests"} == set(ALLOWED)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*") for pattern in shipped} == set(ALLOWED)


def test_only_the_entry_points_import_benchmarks_and_nothing_imports_them() -> None:
    importers = {imported: {p for p, allowed in ALLOWED.items() if imported in allowed}
                 for imported in ALLOWED}
    assert importers["benchmarks"] == {"entrypoints"}
    assert importers["entrypoints"] == set()
    assert ALLOWED["entrypoints"] == set(ALLOWED) - {"entrypoints"}  # all but tests
    assert all("tests" not in allowed for allowed in ALLOWED.values())


def test_generated_code_is_used_only_by_the_grpc_layer() -> None:
    for package in ("domain", "ledger", "projections"):
        for path in (ROOT / package).rglob("*.py"):
            assert "grpc_api.generated" not in path.read_text(encoding="utf-8"), path
