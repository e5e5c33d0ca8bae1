"""One card with a long history: does anything cost more as it grows? The card is driven to
`--ops` operations (authorizations and their captures, with a purchase every tenth pair)
through the in-process writer, and at each checkpoint the benchmark measures:

- latency of one operation (authorize or capture, submit to durable reply, one at a time);
- process CPU per Capture in a batch of captures (the writer's decide, fold and encode; the
  database's own CPU is another process and not counted);
- the card's state in memory (its msgpack encoding) and its snapshot rows in the store;
- a cold load of the card (a new State: snapshot + newer events, decoded and folded).

The ratio column is the last checkpoint over the first, within the one run (the issue's target:
under 1.5x from 2,000 to 50,000 operations).

    .venv/bin/python -m benchmarks.long_history [--database URL] [--ops 2000,10000,50000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import msgspec

from benchmarks import bench_writer
from benchmarks.stats import percentile
from domain.cards import commands as cc
from domain.purchases import commands as pc
from domain.rules.model import Line
from ledger.codec import card_stream_id
from ledger.state import State
from ledger.store import SNAPSHOTS_TABLE

PAIRS_PER_BATCH = 200  # authorizations decided in one batch, then their captures in the next
SAMPLES = 400  # single operations timed at each checkpoint (p99: the 396th of 400)


def _grow(bench: bench_writer.Bench, card: str, ops: int) -> int:
    """Authorize and capture in batches (a purchase every tenth pair) until `ops` operations."""
    done = 0
    while done < ops:
        pairs = min(PAIRS_PER_BATCH, max(1, (ops - done) // 2))
        auths = bench_writer._submit_all(bench.ledger, bench.terminal, [
            cc.Authorize(card, 1, "USD", False, "") for _ in range(pairs)])
        bench_writer._approved(auths)
        commands: list[object] = [cc.Capture(a.authorization_id, 0)  # type: ignore[attr-defined]
                                  for a in auths]
        commands += [pc.Purchase(card, "USD", (Line("sku-1", "food", 1, 1),), 1, False, 0, "",
                                 "receipt") for _ in range(pairs // 10)]
        bench_writer._approved(bench_writer._submit_all(bench.ledger, bench.terminal, commands))
        done += pairs + len(commands)
    return done


def _one(bench: bench_writer.Bench, command: object) -> tuple[float, object]:
    start = time.perf_counter()
    reply = bench.ledger.call(bench.terminal, command,  # type: ignore[arg-type]
                              request_id=bench_writer._rid("one"))
    return time.perf_counter() - start, reply


def _measure(bench: bench_writer.Bench, card: str, url: str) -> dict[str, float]:
    latencies = []
    for _ in range(SAMPLES // 2):
        seconds, reply = _one(bench, cc.Authorize(card, 1, "USD", False, ""))
        latencies.append(seconds)
        seconds, _ = _one(bench, cc.Capture(reply.authorization_id, 0))  # type: ignore[attr-defined]
        latencies.append(seconds)
    auths = bench_writer._submit_all(bench.ledger, bench.terminal, [
        cc.Authorize(card, 1, "USD", False, "") for _ in range(500)])
    captures = [cc.Capture(a.authorization_id, 0) for a in auths]  # type: ignore[attr-defined]
    cpu = time.process_time()
    bench_writer._approved(bench_writer._submit_all(bench.ledger, bench.terminal,
                                                    captures))  # type: ignore[arg-type]
    cpu_per_capture = (time.process_time() - cpu) / len(captures)
    state = bench.ledger.state.card(card)
    store = bench.ledger.store
    loads = []
    for _ in range(21):
        fresh = State(store)
        start = time.perf_counter()
        loaded = fresh.card(card)
        loads.append(time.perf_counter() - start)
        assert loaded is not None and loaded.version == state.version  # type: ignore[union-attr]
    rows, snapshot_bytes = _snapshots(url, card)
    return {
        "events on the card": state.version,  # type: ignore[union-attr]
        "p50 ms": (percentile(latencies, 0.5) or 0) * 1e3,
        "p99 ms": (percentile(latencies, 0.99) or 0) * 1e3,
        "CPU per Capture us": cpu_per_capture * 1e6,
        "state kB": len(msgspec.msgpack.encode(state)) / 1e3,
        "snapshot rows": rows,
        "snapshot kB": snapshot_bytes / 1e3,
        "cold load ms": statistics.median(loads) * 1e3,
    }


def _snapshots(url: str, card: str) -> tuple[int, int]:
    stream = card_stream_id(card)
    query = f"SELECT count(*), coalesce(sum(length(state)), 0) FROM {SNAPSHOTS_TABLE} "
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            row = conn.execute(query + "WHERE originator_id = ?", (stream.hex,)).fetchone()
            if not row[0]:  # the recorder may store uuids with dashes
                row = conn.execute(query + "WHERE originator_id = ?", (str(stream),)).fetchone()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute(query + "WHERE originator_id = %s", (stream,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="PostgreSQL URL of a scratch database "
                        "(its ledger tables are dropped first); default: a temporary SQLite file")
    parser.add_argument("--ops", default="2000,10000,50000",
                        help="checkpoints: operations on the card (comma-separated)")
    ns = parser.parse_args()
    checkpoints = sorted(int(n) for n in ns.ops.split(","))
    bench_writer.CARDS = 1
    url = ns.database or f"sqlite:///{tempfile.mkdtemp()}/long.db"
    if ns.database:
        import psycopg

        with psycopg.connect(ns.database, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, "
                         "ledger_request_keys CASCADE")
    results: list[dict[str, float]] = []
    for bench in bench_writer._prepare(url):
        card = bench.cards[0]
        done = 0
        for target in checkpoints:
            done += _grow(bench, card, target - done)
            results.append(_measure(bench, card, url))
            print(f"  {target:,} operations measured", flush=True)
    store = "PostgreSQL" if ns.database else "SQLite"
    columns = list(results[0])
    print(f"\nOne card, {store}: at " + ", ".join(f"{n:,}" for n in checkpoints) +
          " operations (ratio = last / first)\n")
    print("| " + " | ".join(["what", *(f"{n:,} ops" for n in checkpoints), "ratio"]) + " |")
    print("|" + "---|" * (len(checkpoints) + 2))
    for column in columns:
        first, last = results[0][column], results[-1][column]
        ratio = f"{last / first:.2f}x" if first else "-"
        cells = [f"{r[column]:,.2f}" if isinstance(r[column], float) else f"{r[column]:,}"
                 for r in results]
        print("| " + " | ".join([column, *cells, ratio]) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
