"""Collect the pytest-benchmark files (bench_*.py) in this folder.

Run them with `.venv/bin/pytest benchmarks --benchmark-enable -q`. The project's addopts pass
--benchmark-disable, under which each benchmark runs once, so the files stay fast as a smoke
test. The normal test run (testpaths = tests) does not collect this folder at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if parent.session.isinitpath(file_path):
        return None  # named on the command line: pytest collects it itself
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
