"""`audit replay` against a bare read and decode of the same log rows, in one run, on an
existing database (issue 10, section 3: the replay at >= 0.5x the bare read):

    .venv/bin/python -m benchmarks.audit_replay --database postgresql://…/bench [--textbook]

With --textbook, also the eventsourcing library's own replay of as many events: a textbook
application (benchmarks/loadgen.py's TextbookCard: one aggregate per card, issued, loaded and
authorized) written to `<database>_es` with the same number of cards and events, then every
card read back through `repository.get` (issue 10 asks the audit replay to be >= 20x that).
"""

from __future__ import annotations

import argparse
import time

from benchmarks import projection_catchup
from ledger.store import open_store
from projections.audit import replay


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--textbook", action="store_true")
    ns = parser.parse_args()
    bare, events, _ = projection_catchup.bare(ns.database)
    store = open_store(ns.database)
    try:
        started = time.perf_counter()
        report = replay(store)
        audited = time.perf_counter() - started
    finally:
        store.close()
    if ns.textbook:
        textbook = _textbook_rate(ns.database, events, len(report.cards) or 1)
        print(f"eventsourcing repository replay of {events:,} events: {textbook:,.0f}/s; the "
              f"audit replay is {events / audited / textbook:.2f}x that")
    print(f"{events:,} events: bare read and decode {events / bare:,.0f}/s; audit replay "
          f"{events / audited:,.0f}/s = {bare / audited:.2f}x bare ({report.replies_compared:,}"
          f" replies and {report.cards_compared:,} snapshots compared, "
          f"{len(report.differences)} differences)")
    return 0


def _textbook_rate(url: str, events: int, cards: int) -> float:
    """Events per second of `repository.get` over a textbook application's log of about
    `events` events on `cards` aggregates."""
    from benchmarks import loadgen

    es_url = loadgen._with_database(url, loadgen._database_name(url) + "_es")
    loadgen._recreate_database(es_url)
    app = loadgen.TextbookLedger(env=loadgen.textbook_env(es_url))
    per_card = max(2, events // cards)
    numbers = loadgen._card_numbers(cards)
    for start in range(0, cards, 200):
        app.issue(numbers[start:start + 200])  # two events each: issued, loaded
    ids = [loadgen.TextbookCard.create_id(n) for n in numbers]
    for index, card_id in enumerate(ids):
        card = app.repository.get(card_id)
        for step in range(per_card - 2):
            card.authorize(f"a{index}.{step}", 1)
        app.save(card)
    written = cards * per_card
    started = time.perf_counter()
    for card_id in ids:
        app.repository.get(card_id)
    took = time.perf_counter() - started
    app.close()
    return written / took


if __name__ == "__main__":
    raise SystemExit(main())
