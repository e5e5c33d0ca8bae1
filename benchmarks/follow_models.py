"""The read models following the log, as `loyalty-ledger project` runs them, with one left out:
to measure one model's share of what following live costs the authorization path (issue 10,
section 3: "with the views following live, unary Authorize throughput stays within 10 % of the
same run without them").

Run beside `loyalty-ledger bench --only b --no-projector` (a server without its own follower):
this waits for the bench's database to be initialized, then follows it with every read model
(movements, settlement, finance, customers) or every one but `--without`, one SharedLog for
all as `project` does, until it is stopped (SIGTERM) or the database goes away.

    nice -n 19 .venv/bin/python -m benchmarks.follow_models \\
        --database postgresql://postgres@127.0.0.1/views_authz --without customers
"""

from __future__ import annotations

import argparse
import signal
import threading
import time

import psycopg

from ledger.store import open_store
from projections.customers import customers_runner
from projections.finance import finance_runner
from projections.movements import movements_runner
from projections.runner import SharedLog
from projections.settlement import settlement_runner

RUNNERS = {"movements": movements_runner, "settlement": settlement_runner,
           "finance": finance_runner, "customers": customers_runner}


def initialized(url: str) -> bool:
    """The bench's `init` has run: the log's table exists."""
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT to_regclass('ledger_events') IS NOT NULL").fetchone()[0]
    except psycopg.Error:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="the bench's PostgreSQL URL")
    parser.add_argument("--without", default="", choices=["", *RUNNERS],
                        help="the read model left out (default: none)")
    parser.add_argument("--wait-s", type=float, default=300.0,
                        help="how long to wait for the database to be initialized")
    ns = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    deadline = time.monotonic() + ns.wait_s
    while not initialized(ns.database):
        if stop.wait(0.5) or time.monotonic() > deadline:
            return 1
    store = open_store(ns.database)
    log = SharedLog(store)
    runners = [make(store, log) for name, make in RUNNERS.items() if name != ns.without]
    for runner in runners:
        runner.start()
    print(f"following with {', '.join(r.model.name for r in runners)}", flush=True)
    while not stop.wait(1.0) and initialized(ns.database):
        pass
    for runner in runners:
        runner.stop()
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
