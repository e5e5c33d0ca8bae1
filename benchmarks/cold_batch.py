"""Cold versus warm batches: 1,000 authorizations over 1,000 different cards, decided and
committed by the writer, with every card in the cache (warm), with none (cold: the batch's
cards are loaded together before deciding, one query), and cold with that prefetch turned off
(one load per card, on the writer's critical path: the design before it). Ratios within one
run.

A card starts with 3 events (issued, activated, loaded) and no snapshot, and every round adds 3
(one authorization of each kind); `--history N` first gives each card N more (authorizations
and their captures): a card with ~N events since its last snapshot, which is what a cold load
reads (a card is snapshotted every limits.SNAPSHOT_INTERVAL events, so N is below that).

    .venv/bin/python -m benchmarks.cold_batch [--database URL] [--rounds 5] [--history 0]
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
    parser.add_argument("--history", type=int, default=0, help="events added to every card "
                        "before measuring (default 0: a card issued, activated and loaded)")
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

        for _ in range(ns.history // 2):
            replies = bench_writer._submit_all(bench.ledger, bench.terminal, [
                cc.Authorize(card, 1, "USD", False, "") for card in bench.cards])
            bench_writer._approved(replies)
            bench_writer._approved(bench_writer._submit_all(
                bench.ledger, bench.terminal,
                [cc.Capture(reply.authorization_id, 0) for reply in replies]))  # type: ignore[attr-defined]
        first = bench.ledger.state.card(bench.cards[0])
        assert first is not None
        events = first.version

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
              f", median of {ns.rounds} rounds; a cold load folds {events + 1} to "
              f"{events + 3 * ns.rounds - 2} events per card")
        for name, times in results.items():
            median = statistics.median(times)
            print(f"  {name:<20} {median * 1000:8.1f} ms  {1_000 / median:9,.0f}/s  "
                  f"{warm / median:5.2f}x of warm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
