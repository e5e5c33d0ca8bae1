"""Signing checkpoints over a whole log and verifying it again, in events per second, on an
existing database (its audit tables are dropped before and after; the log is not changed):

    .venv/bin/python -m benchmarks.audit_checkpoints --database postgresql://…/bench
"""

from __future__ import annotations

import argparse
import tempfile
import time

from ledger.store import open_store
from projections import checkpoints as cps


def _drop(store: object) -> None:
    with store.session(commit=True) as session:  # type: ignore[attr-defined]
        session.execute("DROP TABLE IF EXISTS audit_checkpoints")
        session.execute("DROP TABLE IF EXISTS audit_chain")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    ns = parser.parse_args()
    store = open_store(ns.database)
    events = store.max_notification_id()
    private, public, _ = cps.generate_keys(tempfile.mkdtemp())
    _drop(store)
    try:
        started = time.perf_counter()
        made = cps.Checkpointer(store, cps.Signer.from_file(private)).run_once(flush=True)
        took = time.perf_counter() - started
        print(f"checkpointing {events:,} events: {took:.2f} s, {events / took:,.0f} events/s, "
              f"{len(made)} checkpoints")
        started = time.perf_counter()
        verdict = cps.verify_database(store, cps.load_public_keys([public]))
        took = time.perf_counter() - started
        print(f"verifying: {took:.2f} s, {events / took:,.0f} events/s, ok={verdict.ok}")
    finally:
        _drop(store)
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
