"""Closing a settlement period over a million movements (issue 9, section 8): how long the
settlement read model takes to catch up with them, against a bare read and decode of the same
rows, and how long the period's statements and instructions take once it has.

The log is written directly (not through the writer: this measures the read side): `--cards`
cards of `--entities` partners, each issued and then captured `--movements / --cards` times at
a store of a partner drawn at random (seeded), so most movements cross entities; a
SettlementPeriodClosed row at the end. One PostgreSQL database (recreated) or a temporary SQLite
file.

    .venv/bin/python -m benchmarks.settlement_close [--database URL] [--movements 1000000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

from eventsourcing.persistence import StoredEvent

from domain import postings
from domain.cards import events as ev
from domain.common import Meta
from domain.registry.events import SettlementPeriodClosed
from ledger.codec import REGISTRY_ID, card_stream_id, decode_event, encode, topic_of
from ledger.store import open_store
from projections.settlement import period_statements, settlement_runner

CHUNK = 10_000


def _meta(at_us: int) -> Meta:
    return Meta("bench", "bench", 4, "", "", "", at_us)


def write_log(store, cards: int, movements: int, entities: int, seed: int) -> int:
    rng = random.Random(seed)
    partners = [f"P{i:02d}" for i in range(entities)]
    per_card = max(1, movements // cards)
    now = time.time_ns() // 1000
    pending: list[StoredEvent] = []
    written = 0

    def flush() -> None:
        nonlocal pending
        if pending:
            store.append(pending, [])
            pending = []

    for c in range(cards):
        number = f"{9_000_000_000_000_000 + c}"
        stream = card_stream_id(number)
        issuer = partners[c % entities]
        issued = ev.CardIssued(_meta(now), number, "STANDARD", "USD", issuer, "", "")
        pending.append(StoredEvent(stream, 1, topic_of(issued), encode(issued)))
        for version in range(2, per_card + 2):
            amount = rng.randint(1, 20_000)
            acquirer = rng.choice(partners)
            event = ev.AuthorizationCaptured(
                _meta(now), f"{number}.{version}", amount, 0,
                postings.move(postings.held(number), postings.clearing(issuer, acquirer),
                              amount))
            pending.append(StoredEvent(stream, version, topic_of(event), encode(event)))
            written += 1
        if len(pending) >= CHUNK:
            flush()
    close = SettlementPeriodClosed(_meta(now), 1, 0, "bench")
    pending.append(StoredEvent(REGISTRY_ID, 1, topic_of(close), encode(close)))
    flush()
    return written


def bare_read(store) -> tuple[int, float]:
    start, rows, position = time.perf_counter(), 0, 1
    while page := store.read_log(position, 10_000):
        for row in page:
            decode_event(row.state)
        rows += len(page)
        position = page[-1].id + 1
    return rows, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="PostgreSQL URL of a scratch database "
                        "(its ledger tables are dropped); default: a temporary SQLite file")
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--cards", type=int, default=50_000)
    parser.add_argument("--entities", type=int, default=8)
    parser.add_argument("--seed", type=int, default=9)
    ns = parser.parse_args()
    url = ns.database or f"sqlite:///{tempfile.mkdtemp()}/settle.db"
    if ns.database:
        import psycopg

        with psycopg.connect(ns.database, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, "
                         "ledger_request_keys, projection_positions, proj_settlement_totals, "
                         "proj_settlement_periods, proj_settlement_cards, "
                         "proj_settlement_commission, proj_settlement_point_rates, "
                         "proj_settlement_payments CASCADE")
    store = open_store(url)
    store.create_schema()
    start = time.perf_counter()
    movements = write_log(store, ns.cards, ns.movements, ns.entities, ns.seed)
    print(f"wrote {movements:,} cross-partner captures on {ns.cards:,} cards "
          f"({ns.entities} partners) in {time.perf_counter() - start:.1f} s")
    rows, bare_s = bare_read(store)
    runner = settlement_runner(store)
    start = time.perf_counter()
    runner.catch_up()
    catch_up_s = time.perf_counter() - start
    start = time.perf_counter()
    found, instructions = period_statements(runner, 1)
    statements_s = time.perf_counter() - start
    print(f"bare read and decode: {rows:,} rows in {bare_s:.2f} s ({rows / bare_s:,.0f}/s)")
    print(f"settlement read model catch-up: {catch_up_s:.2f} s ({rows / catch_up_s:,.0f} "
          f"rows/s, {bare_s / catch_up_s:.2f}x of the bare read)")
    print(f"statements and instructions of the period: {statements_s * 1000:.0f} ms "
          f"({len(found.statements)} statements, {len(instructions)} instructions, "
          f"digest {found.digest()[:16]})")
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
