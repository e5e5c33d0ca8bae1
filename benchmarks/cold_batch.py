"""Cold versus warm batches: 1,000 authorizations over 1,000 different cards, decided and
committed by the writer, with every card in the cache (warm), with none (cold: the batch's
cards are loaded together before deciding, two queries), and cold with that prefetch turned off
(one snapshot read and one event read per card, on the writer's critical path: the design
before it). Ratios within one run.

    .venv/bin/python -m benchmarks.cold_batch [--database URL] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from benchmarks import bench_writer
from domain.cards import commands as cc
from ledger.state import State


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="PostgreSQL URL of a scratch database "
                        "(recreated); default: a temporary SQLite file")
    parser.add_argument("--rounds", type=int, default=5)
    ns = parser.parse_args()
    bench_writer.CARDS = 1_000
    url = ns.database or f"sqlite:///{tempfile.mkdtemp()}/cold.db"
    if ns.database:
        import psycopg

        with psycopg.connect(ns.database, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, "
                         "ledger_request_keys CASCADE")
    for bench in bench_writer._prepare(url):
        state = bench.ledger.state
        original = State.prefetch

        def one_round(cold: bool, bench: bench_writer.Bench = bench,
                      state: State = state) -> float:
            if cold:
                state.cards.clear()  # the writer is idle between rounds
            commands = [cc.Authorize(card, 1, "USD", False, "") for card in bench.cards]
            start = time.perf_counter()
            bench_writer._approved(bench_writer._submit_all(bench.ledger, bench.terminal,
                                                            commands))
            return time.perf_counter() - start

        results: dict[str, list[float]] = {"warm": [], "cold": [], "cold, card by card": []}
        for _ in range(ns.rounds):
            results["warm"].append(one_round(False))
            results["cold"].append(one_round(True))
            State.prefetch = lambda self, numbers: None  # type: ignore[method-assign]
            try:
                results["cold, card by card"].append(one_round(True))
            finally:
                State.prefetch = original  # type: ignore[method-assign]
        warm = statistics.median(results["warm"])
        print(f"1,000 authorizations on 1,000 cards, {'PostgreSQL' if ns.database else 'SQLite'}"
              f", median of {ns.rounds} rounds")
        for name, times in results.items():
            median = statistics.median(times)
            print(f"  {name:<20} {median * 1000:8.1f} ms  {1_000 / median:9,.0f}/s  "
                  f"{warm / median:5.2f}x of warm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
