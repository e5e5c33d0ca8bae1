"""CPU the writer spends per authorization, in process (no gRPC): `--rounds` x 1,000
authorizations of 1 on the 200 cards of `benchmarks/bench_writer.py` (SQLite in a temporary
directory, or `--database URL`), after 3 rounds of warm-up. The figure is the process's CPU
time (decider, committer and caller threads together) per authorization, so two commits can
be compared back to back on a noisy machine better than by throughput.

    .venv/bin/python -m benchmarks.writer_cpu [--rounds 20] [--gc server|default]
        [--database postgresql://postgres@127.0.0.1/scratch]  (dropped and made again)
        [--group 8]  (submit 8 at a time and wait for them: small commits, as unary calls make;
                      the per-commit cost then weighs on every authorization)
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time

from benchmarks import bench_writer
from domain.cards import commands as cc
from ledger import collector


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--gc", choices=["server", "default"], default="server",
                        help="the collector as `serve` sets it (ledger.collector), or Python's "
                             "default thresholds")
    parser.add_argument("--database", default="",
                        help="a scratch database (default: SQLite in a temporary directory)")
    parser.add_argument("--group", type=int, default=1_000,
                        help="authorizations submitted together before waiting for their "
                             "replies (default %(default)s: one round at once)")
    ns = parser.parse_args()
    if not 1 <= ns.group <= 1_000:
        parser.error("--group must be 1..1000")
    url = ns.database or f"sqlite:///{tempfile.mkdtemp()}/writer.db"
    if ns.database:
        from benchmarks.loadgen import _recreate_database

        _recreate_database(ns.database)
    prepared = bench_writer._prepare(url)
    bench = next(prepared)
    cards = itertools.cycle(bench.cards)

    def run(rounds: int) -> None:
        for _ in range(rounds):
            for start in range(0, 1_000, ns.group):
                bench_writer._approved(bench_writer._submit_all(
                    bench.ledger, bench.terminal,
                    [cc.Authorize(next(cards), 1, "USD", False, "")
                     for _ in range(min(ns.group, 1_000 - start))]))

    run(3)
    if ns.gc == "server":
        collector.for_serving()
    cpu, wall = time.process_time(), time.perf_counter()
    run(ns.rounds)
    operations = ns.rounds * 1_000
    print(f"cpu per authorization {(time.process_time() - cpu) / operations * 1e6:.1f} us, "
          f"wall {(time.perf_counter() - wall) / operations * 1e6:.1f} us "
          f"({operations:,} authorizations)")
    for _ in prepared:  # stop the ledger, close the store
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
