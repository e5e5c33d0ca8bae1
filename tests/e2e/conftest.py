"""End-to-end fixtures: a real gRPC server on the `ledger` fixture and client stubs over a
real channel to it (tests/support/rpc.py::serve)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.engine import Ledger
from tests.support.rpc import Server, serve


@pytest.fixture
def server(ledger: Ledger) -> Iterator[Server]:
    with serve(ledger) as running:
        yield running
