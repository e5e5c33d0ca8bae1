"""The import direction of style.md, checked on the source: `domain` imports nothing of ours;
`ledger` and `projections` import `domain` (projections may also read through `ledger`);
`grpc_api` imports them all; nothing but `grpc_api` itself and the entry points imports
`grpc_api`; no package imports `tests`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"domain", "ledger", "projections", "grpc_api", "benchmarks", "tests"}
# package -> the packages of ours it may import (itself always allowed)
ALLOWED = {
    "domain": set(),
    "ledger": {"domain"},
    "projections": {"domain", "ledger"},
    "grpc_api": {"domain", "ledger", "projections", "benchmarks"},  # `bench` runs benchmarks
    "benchmarks": {"domain", "ledger", "projections", "grpc_api"},
}


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


def test_the_check_catches_a_wrong_way_import(tmp_path: Path) -> None:
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "bad.py").write_text("import os\nfrom ledger.engine import Ledger\n")
    assert violations("domain", tmp_path) == ["domain/bad.py:2 imports ledger"]


def test_generated_code_is_used_only_by_the_grpc_layer() -> None:
    for package in ("domain", "ledger", "projections"):
        for path in (ROOT / package).rglob("*.py"):
            assert "grpc_api.generated" not in path.read_text(encoding="utf-8"), path
