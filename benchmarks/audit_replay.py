"""`audit replay` against a bare read and decode of the same log rows, in one run, on an
existing database (issue 10, section 3: the replay at >= 0.5x the bare read):

    .venv/bin/python -m benchmarks.audit_replay --database postgresql://…/bench
"""

from __future__ import annotations

import argparse
import time

from ledger.codec import decode_event
from ledger.store import open_store
from projections.audit import PAGE_ROWS, replay


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    ns = parser.parse_args()
    store = open_store(ns.database)
    try:
        started, events, position = time.perf_counter(), 0, 1
        while page := store.read_log(position, PAGE_ROWS):
            for row in page:
                decode_event(row.state)
            events += len(page)
            position = page[-1].id + 1
        bare = time.perf_counter() - started
        started = time.perf_counter()
        report = replay(store)
        audited = time.perf_counter() - started
    finally:
        store.close()
    print(f"{events:,} events: bare read and decode {events / bare:,.0f}/s; audit replay "
          f"{events / audited:,.0f}/s = {bare / audited:.2f}x bare ({report.replies_compared:,}"
          f" replies and {report.cards_compared:,} snapshots compared, "
          f"{len(report.differences)} differences)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
