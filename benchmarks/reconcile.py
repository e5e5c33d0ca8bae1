"""Reconciling a partner's period: what each step costs as the period grows. The benchmark
drives `--movements` captures at one store through the in-process writer (each an
authorization and a capture: two log rows, one journal row), closes the period, and times:

- reading the ledger's side (the period's log range, topics filtered before decoding, each
  card's currency from the settlement read model, caught up first);
- reading the partner's file (the ledger's own rows exported as CSV, one amount changed and
  one line dropped, so there are breaks);
- matching the two sides (pure domain code);
- recording the run through the writer (one registry event with the break ids).

    .venv/bin/python -m benchmarks.reconcile [--database URL] [--movements 20000,100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from benchmarks import bench_writer
from domain.cards import commands as cc
from domain.reconcile import decide as recon
from domain.reconcile.journal import read_csv, write_csv
from domain.reconcile.matching import match
from domain.settlement.periods import CloseSettlementPeriod
from ledger.codec import Outcome
from projections.reconcile import ledger_rows, partner_stores, registry_now
from projections.settlement import settlement_runner

CHUNK = 1_000  # authorizations (then their captures) submitted at once


def _drive(bench: bench_writer.Bench, movements: int) -> None:
    done = 0
    while done < movements:
        n = min(CHUNK, movements - done)
        cards = [bench.cards[(done + i) % len(bench.cards)] for i in range(n)]
        auths = bench_writer._submit_all(bench.ledger, bench.terminal, [
            cc.Authorize(card, 1, "USD", False, "") for card in cards])
        bench_writer._approved(auths)
        bench_writer._approved(bench_writer._submit_all(bench.ledger, bench.terminal, [
            cc.Capture(a.authorization_id, 0) for a in auths]))  # type: ignore[attr-defined]
        done += n


def _measure(bench: bench_writer.Bench, admin: str, period: int) -> dict[str, float]:
    runner = settlement_runner(bench.ledger.store)
    started = time.perf_counter()
    runner.catch_up()
    caught_up = time.perf_counter() - started
    stores = partner_stores(registry_now(bench.ledger.store), "P1")
    started = time.perf_counter()
    ours = [row for row, _ in ledger_rows(runner, "P1", period, stores)]
    read_ledger = time.perf_counter() - started
    lines = write_csv(sorted(ours)).splitlines()
    lines[1] = lines[1].rsplit(",", 2)[0] + ",999,USD"  # an amount mismatch
    del lines[2]  # missing in the file
    text = "\n".join(lines) + "\n"
    started = time.perf_counter()
    theirs, bad = read_csv(text, stores, "P1")
    read_file = time.perf_counter() - started
    assert not bad
    started = time.perf_counter()
    found = match(theirs, ours, f"P1/{period}")
    matched = time.perf_counter() - started
    assert len(found.breaks()) == 2, found.counts()
    started = time.perf_counter()
    reply = bench.ledger.call(admin, recon.record_command("P1", period, found),
                              request_id=bench_writer._rid("run"))
    recorded = time.perf_counter() - started
    assert isinstance(reply, Outcome) and reply.result == 1, reply
    return {"rows": len(ours), "catch up settlement model s": caught_up,
            "read the ledger's side s": read_ledger, "read the file s": read_file,
            "match s": matched, "record the run s": recorded,
            "total s": read_ledger + read_file + matched + recorded}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="PostgreSQL URL of a scratch database "
                        "(its ledger tables are dropped first); default: a temporary SQLite file")
    parser.add_argument("--movements", default="20000,100000",
                        help="periods to reconcile, in captures (comma-separated)")
    ns = parser.parse_args()
    sizes = [int(n) for n in ns.movements.split(",")]
    url = ns.database or f"sqlite:///{tempfile.mkdtemp()}/recon.db"
    if ns.database:
        import psycopg

        with psycopg.connect(ns.database, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, "
                         "ledger_request_keys, projection_positions, proj_settlement_totals, "
                         "proj_settlement_periods, proj_settlement_cards, "
                         "proj_settlement_payments CASCADE")
    results = []
    for bench in bench_writer._prepare(url):
        admin = next(c.credential_id for c in bench.ledger.registry.credentials.values()
                     if c.principal.role == 1)
        for period, size in enumerate(sizes, 1):
            _drive(bench, size)
            closed = bench.ledger.call(admin, CloseSettlementPeriod(f"bench {size}"),
                                       request_id=bench_writer._rid("close"))
            assert isinstance(closed, Outcome) and closed.period_id == period, closed
            results.append(_measure(bench, admin, period))
            print(f"  period {period}: {size:,} captures measured", flush=True)
    store = "PostgreSQL" if ns.database else "SQLite"
    print(f"\nReconciling one partner's period, {store}\n")
    columns = list(results[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in results:
        print("| " + " | ".join(f"{int(r[c]):,}" if c == "rows" else f"{r[c]:.2f}"
                                for c in columns) + " |")
    for r in results:
        print(f"{int(r['rows']):,} rows: {r['rows'] / r['total s']:,.0f} rows/s end to end "
              "(ledger side, file, match, record)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
