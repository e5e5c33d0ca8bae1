"""`audit replay` against a bare read and decode of the same log rows, in one run, on an
existing database (issue 10, section 3: the replay at >= 0.5x the bare read, and >= 20x the
eventsourcing library's own replay of as many events through its repository):

    nice -n 19 .venv/bin/python -m benchmarks.audit_replay \\
        --database postgresql://postgres@127.0.0.1/audit_1m --events 1000000 --textbook

(`--events 50000` for a quick run: one process below PARALLEL_FROM_EVENTS, unless
`--shares 2`.)

--events N first writes a log of N events when the database holds fewer (its ledger tables
are dropped): projection_catchup's traffic through the in-process writer (5,000 cards issued,
activated and loaded, then rounds of authorizations, their captures or voids, and purchases
that earn points; a stored reply for each request). Without it, the log there is timed.

The bare read (projection_catchup.bare: `read_log` in pages of 20,000 rows and `decode_event`
of every row, in one process) and the audit replay (`projections.audit.replay`, whole: every
card and balance rebuilt, every purchase re-evaluated, every stored reply and snapshot
compared; in two processes on a log this long when the machine has two cores) are timed
back to back `--repeat` times, interleaved (the machine's load changes from minute to
minute), best of each reported, with the CPU seconds each took in every process of ours, and
the ratios within each round.

With --textbook, also the eventsourcing library's own replay: a textbook application
(benchmarks/loadgen.py's TextbookCard: one aggregate per card, issued, loaded and authorized)
with as many aggregates as the log has cards and as many events in all, written once to
`<database>_es` (kept for the next run), every aggregate then read back through
`repository.get` in every round (no snapshots, no cache: its whole history each time).
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from collections.abc import Callable

import psycopg

from benchmarks import projection_catchup
from ledger.engine import Ledger
from ledger.store import open_store
from projections.audit import replay

TEXTBOOK_SAVE_CARDS = 50  # aggregates saved per transaction while the textbook log is written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--textbook", action="store_true")
    parser.add_argument("--events", type=int, default=0,
                        help="write a log of this many events first when the database holds "
                        "fewer (its ledger tables are dropped); default: time the log as it is")
    parser.add_argument("--cards", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shares", type=int, default=None,
                        help="processes the replay uses (default: its own choice)")
    ns = parser.parse_args()
    if ns.events:
        _ensure_log(ns.database, ns.events, ns.cards)
    textbook_app = None
    if ns.textbook:  # written first (its size from the log's), read back in every round
        events, cards = _log_size(ns.database)
        textbook_app = _textbook(ns.database, events, cards)
    bare_runs: list[tuple[float, float]] = []
    audit_runs: list[tuple[float, float]] = []
    textbook_runs: list[float] = []
    events = cards = 0
    for _ in range(max(1, ns.repeat)):
        wall, events, cpu = projection_catchup.bare(ns.database)
        bare_runs.append((wall, cpu))
        print(f"  bare read and decode: {wall:.2f} s (CPU {cpu:.2f} s)", flush=True)
        wall, cpu, report = _audit(ns.database, ns.shares)
        audit_runs.append((wall, cpu))
        cards = len(report.cards)
        print(f"  audit replay: {wall:.2f} s (CPU {cpu:.2f} s in every process; "
              f"{report.replies_compared:,} replies and {report.cards_compared:,} snapshots "
              f"compared, {len(report.differences)} differences)", flush=True)
        assert report.events == events, (report.events, events)
        del report  # its cards would slow the next bare read (the collector walks them)
        gc.collect()
        if textbook_app is not None:
            textbook_runs.append(textbook_app())
            print(f"  eventsourcing repository replay: {textbook_runs[-1]:,.0f} events/s",
                  flush=True)
    bare, bare_cpu = min(bare_runs)
    audited, audit_cpu = min(audit_runs)
    print(f"{events:,} events, {cards:,} cards: bare read and decode {events / bare:,.0f}/s "
          f"(best of {len(bare_runs)}); audit replay {events / audited:,.0f}/s = "
          f"{bare / audited:.2f}x bare (CPU seconds {audit_cpu:.1f} against {bare_cpu:.1f})",
          flush=True)
    if textbook_runs:
        textbook = max(textbook_runs)
        print(f"eventsourcing repository replay of as many events: {textbook:,.0f}/s (best "
              f"of {len(textbook_runs)}); the audit replay is {events / audited / textbook:.2f}x"
              " that")
    # the same within each round, whose runs met the same load
    for index, ((bare_s, _), (audit_s, _)) in enumerate(zip(bare_runs, audit_runs,
                                                             strict=True)):
        versus = (f", {events / audit_s / textbook_runs[index]:.2f}x the eventsourcing replay"
                  if textbook_runs else "")
        print(f"round {index + 1}: the audit replay {bare_s / audit_s:.2f}x bare{versus}")
    return 0


def _log_size(url: str) -> tuple[int, int]:
    """(events, card streams) in the log."""
    store = open_store(url)
    try:
        with store.session(commit=False) as session:
            (streams,) = session.query("SELECT count(DISTINCT originator_id) FROM "
                                       "ledger_events")[0]
        return store.max_notification_id(), max(1, int(streams) - 1)  # the registry's
    finally:
        store.close()


def _audit(url: str, shares: int | None) -> tuple[float, float, object]:
    """One whole replay: (wall seconds, CPU seconds here and in the processes it started,
    the report)."""
    store = open_store(url)
    try:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started, cpu = time.perf_counter(), time.process_time()
        report = replay(store, shares=shares)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = time.process_time() - cpu + (after.ru_utime + after.ru_stime
                                           - children.ru_utime - children.ru_stime)
        return wall, cpu, report
    finally:
        store.close()


def _ensure_log(url: str, events: int, cards: int) -> None:
    """A log of `events` events or more, unless the database holds that many already."""
    store = open_store(url)
    try:
        store.create_schema()
        if store.max_notification_id() >= events:
            return
    finally:
        store.close()
    store = open_store(projection_catchup._fresh(url))
    store.create_schema()
    ledger = Ledger(store).start()
    try:
        # write_log counts commands; the few it sees declined write no event
        projection_catchup.write_log(ledger, events + events // 100, cards)
    finally:
        ledger.stop()
        store.close()


def _textbook(url: str, events: int, cards: int) -> Callable[[], float]:
    """A textbook application's log of about `events` events on `cards` aggregates (written
    unless it is there already), and a run of reading every aggregate back through
    `repository.get` (its events per second)."""
    from benchmarks import loadgen

    es_url = loadgen._with_database(url, loadgen._database_name(url) + "_es")
    per_card = max(2, events // cards)
    numbers = loadgen._card_numbers(cards)
    ids = [loadgen.TextbookCard.create_id(n) for n in numbers]
    if _textbook_events(es_url) != (cards * per_card, cards):
        print(f"  writing the textbook log: {cards:,} aggregates of {per_card} events",
              flush=True)
        loadgen._recreate_database(es_url)
        app = loadgen.TextbookLedger(env=loadgen.textbook_env(es_url))
        for start in range(0, cards, TEXTBOOK_SAVE_CARDS):
            app.issue(numbers[start:start + TEXTBOOK_SAVE_CARDS])  # issued, loaded
            batch = [app.repository.get(i) for i in ids[start:start + TEXTBOOK_SAVE_CARDS]]
            for card in batch:
                for step in range(per_card - 2):
                    card.authorize(f"a{card.card_number}.{step}", 1)
            app.save(*batch)
        app.close()

    def read_back() -> float:
        app = loadgen.TextbookLedger(env=loadgen.textbook_env(es_url))
        try:
            started = time.perf_counter()
            for card_id in ids:
                app.repository.get(card_id)
            return cards * per_card / (time.perf_counter() - started)
        finally:
            app.close()
    return read_back


def _textbook_events(es_url: str) -> tuple[int, int] | None:
    """(events, aggregates) in the textbook application's table, None when there is none."""
    try:
        with psycopg.connect(es_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*), count(DISTINCT originator_id) "
                               "FROM textbookledger_events").fetchone()
    except psycopg.Error:
        return None
    return (int(row[0]), int(row[1])) if row else None


if __name__ == "__main__":
    raise SystemExit(main())
