"""ListMovements' last page for a card with many events, the way the servicer computes it:
before projections (a fold of the card's history, `ledger/movements.py` read from git at
--before) and on the movements read model (caught up with the log first, as the servicer does).

    python -m benchmarks.movements_page --database postgresql://postgres@127.0.0.1/bench \
        --events 5000 --before d911714

The database is emptied first (a scratch database: every ledger and projection table goes).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path
from typing import Any

import msgspec

from domain.cards import commands as cc
from domain.common import Principal, Role
from domain.registry import commands as rc
from ledger.engine import Ledger, Request
from ledger.store import EventStore, open_store
from projections.movements import list_movements, movements_runner

ROOT = Path(__file__).resolve().parents[1]
ADMIN = Principal(Role.ADMIN)
TABLES = ("ledger_events", "ledger_snapshots", "ledger_request_keys", "projection_positions",
          "proj_movements", "proj_movement_cards", "proj_maintenance_cards")


def _old_module(commit: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{commit}:ledger/movements.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("movements_before")
    exec(compile(source, f"{commit}:ledger/movements.py", "exec"), module.__dict__)
    return module


def _empty(store: EventStore) -> None:
    with store.session(commit=True) as session:
        for table in TABLES:
            session.execute(f"DROP TABLE IF EXISTS {table}")


def _busy_card(ledger: Ledger, events: int) -> str:
    admin = ledger.authenticate(ledger.bootstrap_admin())
    assert admin is not None
    for command in (rc.RegisterPartner("P1", "Retail Group", "USD"),
                    rc.RegisterStore("P1", "S1", "Flagship", "Asia/Shanghai")):
        ledger.call(admin.credential_id, command, request_id=uuid.uuid4().hex)
    manager = ledger.call(admin.credential_id, rc.CreateCredential(
        Principal(Role.STORE_MANAGER, "P1", "S1"), "s1"), request_id="cred")
    manager_id = manager.credential_id  # type: ignore[union-attr]
    number = ledger.call(manager_id, cc.IssueCard("", "STANDARD", "USD", "", ""),
                         request_id="issue").card_number  # type: ignore[union-attr]
    ledger.call(manager_id, cc.ActivateCard(number, ""), request_id="act")
    futures: list[concurrent.futures.Future[Any]] = []
    for i in range(events - 2):  # loads submitted together: the writer batches them
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        ledger.submit(Request(manager_id, cc.LoadValue(number, 1, "USD", "psp"),
                              future.set_result, "", f"load-{i}", "", time.monotonic() + 120))
        futures.append(future)
    for future in futures:
        future.result(180)
    return number


def _timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--before", default="d911714", help="commit of ledger/movements.py")
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    ns = parser.parse_args(argv)
    store = open_store(ns.database)
    _empty(store)
    store.create_schema()
    ledger = Ledger(store).start()
    try:
        number = _busy_card(ledger, ns.events)
        now_us = ledger.clock_us()
        old = _old_module(ns.before)
        runner = movements_runner(store)
        start = time.perf_counter()
        runner.catch_up()
        build_ms = (time.perf_counter() - start) * 1000
        last = ns.events - ns.page
        before_ms, before = _timed(lambda: old.list_movements(store, ADMIN, number, last,
                                                              ns.page, now_us), ns.repeat)
        after_ms, after = _timed(lambda: list_movements(runner, ADMIN, number, last, ns.page,
                                                        now_us), ns.repeat)
        same = [msgspec.structs.astuple(m) for m in before] == [
            msgspec.structs.astuple(m) for m in after]
        assert same and len(after) == ns.page, (len(before), len(after))
    finally:
        ledger.stop()
        store.close()
    print(f"{store.url}: card with {ns.events:,} events, last page of {ns.page} movements, "
          f"median of {ns.repeat}")
    print(f"  before (fold of the history, {ns.before}): {before_ms:8.2f} ms")
    print(f"  after  (read model, caught up first):     {after_ms:8.2f} ms")
    print(f"  (the model applied the whole log once in {build_ms:,.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
