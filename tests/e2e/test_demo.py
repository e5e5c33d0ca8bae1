"""The demo (the README's first command): it runs, its traffic covers the POS operations,
and its ledger check holds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]


def counts(report: str) -> dict[str, int]:
    """Operations by kind (summed over results) from the demo's table."""
    found: dict[str, int] = {}
    operation = ""
    for line in report.splitlines():
        match = re.match(r"^(\S.{0,20}?)?\s+([A-Z_]+)\s+(\d+)$", line)
        if not match:
            continue
        operation = (match.group(1) or "").strip() or operation
        found[operation] = found.get(operation, 0) + int(match.group(3))
    return found


def test_the_demo_runs_every_kind_of_operation_and_the_ledger_check_holds(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert run_demo(seconds=1.5, concurrency=4, cards=20, page=str(page)) == 0
    out = capsys.readouterr().out
    assert "ledger check: OK" in out
    assert f"report page: wrote {page}" in out and "Settlement period 1" in page.read_text()
    seen = counts(out)
    for operation in ("Authorize", "Capture", "Void", "Refund", "Reverse", "GetBalance",
                      "LoadValue", "Authorize retry", "Batch authorize", "Purchase", "Return"):
        assert seen.get(operation, 0) > 0, (operation, seen)
    retries = re.search(r"retries: (\d+) sent again with the same request_id, (\d+) replayed "
                        r"identically", out)
    assert retries is not None and int(retries.group(1)) > 0
    assert retries.group(1) == retries.group(2)


def test_the_demo_refuses_nonsense_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(seconds=0, concurrency=1, cards=10) == 2
    assert "--seconds" in capsys.readouterr().err


@pytest.mark.slow
def test_the_demo_command_exits_zero(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "demo", "--seconds", "1",
                           "--cards", "10", "--report", str(tmp_path / "r.html")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ledger check: OK" in done.stdout
