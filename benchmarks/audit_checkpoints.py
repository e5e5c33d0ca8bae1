"""Signing checkpoints over a whole log and verifying it again, in events per second, on an
existing database (its audit tables are dropped before and after; the log is not changed).
Since v2 both work out each checkpoint's entity tree (domain/audit/entities.py) as well. On a
shared machine the CPU time of this process (the database server's is not in it) varies less
than the elapsed time; `getattr` keeps the file runnable against the code before v2:

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
        started, cpu = time.perf_counter(), time.process_time()
        made = cps.Checkpointer(store, cps.Signer.from_file(private)).run_once(flush=True)
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        entities = sum(getattr(cp, "entity_leaves", 0) for cp in made) / len(made)
        print(f"checkpointing {events:,} events: {took:.2f} s, {events / took:,.0f} events/s "
              f"({cpu:.2f} s of this process's CPU: {events / cpu:,.0f}/s), {len(made)} "
              f"checkpoints, {entities:,.0f} entities in each one's tree on average")
        started, cpu = time.perf_counter(), time.process_time()
        verdict = cps.verify_database(store, cps.load_public_keys([public]))
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"verifying: {took:.2f} s, {events / took:,.0f} events/s ({cpu:.2f} s CPU: "
              f"{events / cpu:,.0f}/s), ok={verdict.ok}")
    finally:
        _drop(store)
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
