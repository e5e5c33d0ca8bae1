"""Memory over a long run (issue 12, "memory plateau"): authorize + capture traffic over more
cards than the writer's card cache holds, driven through the in-process Ledger (the writer
and its store, no gRPC, no projections: those run in other processes), sampling the process's
RSS and the tables' sizes every `--every` operations. Once the card cache is full, RSS should
stay flat: the last line is RSS(ops) / RSS(ops / 2), the issue's RSS(2M) / RSS(1M) by
default (target <= 1.10).

Setup (not counted as operations): `--cards` cards issued, activated and loaded, in chunks.
Traffic: chunks of `--chunk` authorizations of 1 on cards drawn at random (seeded), each chunk
followed by the captures of its holds, so every operation is a request with its own request
id and key. At the end, cold vs warm Batch: `--chunk` authorizations on cards the cache holds
(warm) and on cards it does not (cold), median of 5 rounds each.

    .venv/bin/python -m benchmarks.many_cards [--database URL] [--cards 50000] \\
        [--cache 20000] [--key-cache N] [--ops 2000000] [--every 100000] [--trace]

Columns: the cards and request keys cached, the holds those cached cards keep (per-card
history), the card-number -> stream-id memo, the objects the garbage collector tracks.
`--cache` and `--key-cache` are the writer's bounds (ledger/limits.py CARD_CACHE_MAX and
KEY_CACHE_MAX by default for the key cache; the card cache is scaled down so that the run
takes minutes). `--trace` compares tracemalloc snapshots taken at ops / 2 and at the end and
prints the allocation sites that grew most (the run is then 2-3x slower).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import tempfile
import time
import tracemalloc
import urllib.parse

import psycopg

from benchmarks import bench_writer
from domain.cards import commands as cc
from domain.common import APPROVALS, Principal, Role, luhn_complete
from domain.registry import commands as rc
from ledger import codec, limits
from ledger.codec import Outcome, card_stream_id
from ledger.engine import Ledger
from ledger.store import open_store

LOAD_MINOR = 90_000_000
SETUP_CHUNK = 5_000  # requests submitted at once: well under limits.QUEUE_MAX


def rss_kb(field: str = "VmRSS") -> int:
    """The process's resident memory (kB), or one part of it (RssAnon: the heaps)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def table_sizes(url: str) -> dict[str, int]:
    """Bytes on disk: each ledger table with its indexes (PostgreSQL), or the file and its
    write-ahead log (SQLite)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return {"file": sum(os.path.getsize(path + suffix) for suffix in ("", "-wal")
                            if os.path.exists(path + suffix))}
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_total_relation_size('ledger_events'), "
                           "pg_total_relation_size('ledger_snapshots'), "
                           "pg_total_relation_size('ledger_request_keys')").fetchone()
    assert row is not None
    return dict(zip(("events", "snapshots", "keys"), row, strict=True))


def fresh_database(url: str) -> str:
    if not url:
        return f"sqlite:///{tempfile.mkdtemp()}/many.db"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, "
                     "ledger_request_keys CASCADE")
    return url


def submit_chunked(ledger: Ledger, credential: str, commands: list[object]) -> list[object]:
    replies: list[object] = []
    for start in range(0, len(commands), SETUP_CHUNK):
        replies += bench_writer._submit_all(ledger, credential,
                                            commands[start:start + SETUP_CHUNK], 300.0)
    return replies


def setup(ledger: Ledger, cards: int) -> tuple[str, list[str]]:
    token = ledger.bootstrap_admin("many-cards")
    admin = ledger.authenticate(token)
    assert admin is not None
    for command in (rc.RegisterPartner("P1", "Bench", "USD"),
                    rc.RegisterStore("P1", "S1", "Bench store", "UTC"),
                    rc.RegisterTerminal("S1", "T1")):
        reply = ledger.call(admin.credential_id, command, request_id=bench_writer._rid("setup"))
        assert isinstance(reply, Outcome) and reply.result in APPROVALS, reply
    made = ledger.call(admin.credential_id, rc.CreateCredential(
        Principal(Role.TERMINAL, "P1", "S1", "T1"), "bench"), request_id=bench_writer._rid("s"))
    assert isinstance(made, Outcome)
    numbers = [luhn_complete(f"8{seed:014d}") for seed in range(1, cards + 1)]
    for make in (lambda n: cc.IssueCard(n, "STANDARD", "USD", "bench", "S1"),
                 lambda n: cc.ActivateCard(n, ""),
                 lambda n: cc.LoadValue(n, LOAD_MINOR, "USD", "bench")):
        bench_writer._approved(submit_chunked(ledger, admin.credential_id,
                                              [make(n) for n in numbers]))
    return made.credential_id, numbers


def batch_time(ledger: Ledger, terminal: str, numbers: list[str]) -> float:
    start = time.perf_counter()
    bench_writer._approved(bench_writer._submit_all(
        ledger, terminal, [cc.Authorize(n, 1, "USD", False, "") for n in numbers]))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="PostgreSQL URL of a scratch database "
                        "(its ledger tables are dropped); default: a temporary SQLite file")
    parser.add_argument("--cards", type=int, default=50_000)
    parser.add_argument("--cache", type=int, default=20_000, help="the card cache's bound")
    parser.add_argument("--key-cache", type=int, default=limits.KEY_CACHE_MAX,
                        help="the request-key cache's bound")
    parser.add_argument("--ops", type=int, default=2_000_000)
    parser.add_argument("--every", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--trace", action="store_true")
    ns = parser.parse_args()
    url = fresh_database(ns.database)
    store = open_store(url)
    store.create_schema()
    ledger = Ledger(store, card_cache_max=ns.cache, key_cache_max=ns.key_cache).start()
    rng = random.Random(ns.seed)
    where = "SQLite" if url.startswith("sqlite") else \
        f"PostgreSQL {urllib.parse.urlsplit(url).path.lstrip('/')}"
    try:
        began = time.perf_counter()
        terminal, numbers = setup(ledger, ns.cards)
        print(f"{where}: {ns.cards:,} cards set up in {time.perf_counter() - began:.0f} s; "
              f"card cache {ns.cache:,}, key cache {ns.key_cache:,}; "
              f"{ns.ops:,} operations (authorize + capture of 1, chunks of {ns.chunk:,})")
        header = (f"{'ops':>9} {'RSS MB':>7} {'anon MB':>7} {'ops/s':>7} {'cards':>7} {'keys':>8} "
                  f"{'holds':>8} {'card ids':>8} {'objects':>9} "
                  + " ".join(f"{name + ' MB':>12}" for name in table_sizes(url)))
        print(header)
        rss: dict[int, int] = {}
        traced: dict[int, tracemalloc.Snapshot] = {}
        if ns.trace:
            tracemalloc.start(1)

        def sample(done: int, rate: float) -> None:
            gc.collect()
            rss[done] = rss_kb()
            sizes = table_sizes(url)
            print(f"{done:>9,} {rss[done] / 1024:>7.0f} {rss_kb('RssAnon') / 1024:>7.0f} "
                  f"{rate:>7,.0f} "
                  f"{len(ledger.state.cards):>7,} {len(ledger.state.key_cache):>8,} "
                  f"{sum(len(c.holds) for c in ledger.state.cards.values() if c):>8,} "
                  f"{len(codec._card_ids):>8,} {len(gc.get_objects()):>9,} "
                  + " ".join(f"{size / 2**20:>12.1f}" for size in sizes.values()), flush=True)
            if ns.trace and done in (ns.ops // 2, ns.ops):
                traced[done] = tracemalloc.take_snapshot()

        done = 0
        sample(0, 0.0)
        window = time.perf_counter()
        window_ops = 0
        while done < ns.ops:
            drawn = [numbers[rng.randrange(len(numbers))] for _ in range(ns.chunk // 2)]
            replies = bench_writer._submit_all(ledger, terminal, [
                cc.Authorize(n, 1, "USD", False, "") for n in drawn])
            bench_writer._approved(replies)
            bench_writer._approved(bench_writer._submit_all(ledger, terminal, [
                cc.Capture(r.authorization_id, 0) for r in replies]))  # type: ignore[attr-defined]
            done += 2 * len(drawn)
            window_ops += 2 * len(drawn)
            if done % ns.every < 2 * len(drawn) or done >= ns.ops:
                rate = window_ops / (time.perf_counter() - window)
                sample(done, rate)
                window, window_ops = time.perf_counter(), 0
        half = min(rss, key=lambda ops: abs(ops - ns.ops // 2))
        print(f"RSS({done:,} ops) / RSS({half:,} ops) = {rss[done] / rss[half]:.3f} "
              f"({rss[half] / 1024:.0f} -> {rss[done] / 1024:.0f} MB)")
        if len(traced) == 2:
            first, last = (traced[k] for k in sorted(traced))
            print("allocation sites that grew most between them:")
            for stat in last.compare_to(first, "lineno")[:12]:
                print(f"  {stat.size_diff / 2**20:+8.1f} MB {stat.count_diff:+10,} blocks  "
                      f"{stat.traceback}")
            tracemalloc.stop()

        cached = set(ledger.state.cards)
        warm_cards = [n for n in numbers if card_stream_id(n) in cached]
        rng.shuffle(warm_cards)
        warm: list[float] = []
        cold: list[float] = []
        for _ in range(5):
            warm.append(batch_time(ledger, terminal, warm_cards[:ns.chunk]))
            cached = set(ledger.state.cards)
            cold_cards = [n for n in rng.sample(numbers, min(len(numbers), 4 * ns.chunk))
                          if card_stream_id(n) not in cached][:ns.chunk]
            cold.append(batch_time(ledger, terminal, cold_cards))
        print(f"Batch of {ns.chunk:,} authorizations, median of 5: warm "
              f"{statistics.median(warm) * 1000:.1f} ms, cold (no card cached) "
              f"{statistics.median(cold) * 1000:.1f} ms = "
              f"{statistics.median(warm) / statistics.median(cold):.2f}x of warm")
    finally:
        ledger.stop()
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
