"""The customer read model catching up (issue 10, section 3): events per second applied from
zero by `ProjectionRunner(store, CustomersModel()).rebuild()`, against a bare read and decode
of the same log rows (the same batches, the same store; nothing written), and the time of each
view query on the result.

A log of `--events` events is written first through the in-process writer: `--cards` cards
(two cards under each customer reference) issued, activated and loaded at three stores of two
partners in two timezones; then rounds of 1,000 cards: 600 purchases with one to three lines
carrying a margin, at a local time spread over the last year, 200 authorizations and their
captures, and 10 returns of earlier purchases. So about half the log is purchases, the rows
this model does the most work for. The two are timed back to back, `--repeat` times each,
interleaved, best of the runs reported; every rebuild must give the same digest.

    nice -n 19 .venv/bin/python -m benchmarks.customer_views \\
        --database postgresql://postgres@127.0.0.1:5432/views_bench --events 200000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time

import psycopg

from benchmarks import bench_writer
from benchmarks.projection_catchup import bare
from domain.cards import commands as cc
from domain.common import APPROVALS, Principal, Role, luhn_complete
from domain.customers.activity import day_number
from domain.purchases import commands as pc
from domain.registry import commands as rc
from domain.rules.model import Line
from ledger.codec import Outcome
from ledger.engine import Ledger
from ledger.store import open_store
from projections import customers
from projections.runner import ProjectionRunner

CHUNK = 2_000
STORES = (("P1", "S1", "Asia/Shanghai", "T1"), ("P1", "S2", "Asia/Shanghai", "T2"),
          ("P2", "A1", "Europe/Paris", "TA"))


def _fresh(url: str) -> str:
    if not url:
        return f"sqlite:///{tempfile.mkdtemp()}/views.db"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, ledger_request_keys, "
                     "projection_positions, proj_cust_activity, proj_cust_cards, "
                     "proj_cust_stores CASCADE")
    return url


def _submit(ledger: Ledger, who: str, commands: list[object],
            check: bool = True) -> list[object]:
    replies: list[object] = []
    for start in range(0, len(commands), CHUNK):
        replies += bench_writer._submit_all(ledger, who, commands[start:start + CHUNK], 300.0)
    bad = [r for r in replies if not (isinstance(r, Outcome) and r.result in APPROVALS)]
    assert not check or len(bad) < len(replies) // 2 + 1, bad[:3]  # declines are traffic
    return replies


def write_log(ledger: Ledger, events: int, cards: int) -> None:
    token = ledger.bootstrap_admin("views")
    admin = ledger.authenticate(token)
    assert admin is not None
    setup: list[object] = [rc.RegisterPartner("P1", "Retail", "USD"),
                           rc.RegisterPartner("P2", "Airline", "USD")]
    for partner, store, zone, terminal in STORES:
        setup += [rc.RegisterStore(partner, store, store, zone), rc.RegisterTerminal(store,
                                                                                     terminal)]
    for command in setup:
        reply = ledger.call(admin.credential_id, command, request_id=bench_writer._rid("s"))
        assert isinstance(reply, Outcome) and reply.result in APPROVALS, reply
    terminals = []
    for partner, store, _, terminal in STORES:
        made = ledger.call(admin.credential_id, rc.CreateCredential(
            Principal(Role.TERMINAL, partner, store, terminal), "bench"),
            request_id=bench_writer._rid("s"))
        assert isinstance(made, Outcome)
        terminals.append(made.credential_id)
    numbers = [luhn_complete(f"8{seed:014d}") for seed in range(1, cards + 1)]
    for make in (lambda i, n: cc.IssueCard(n, "STANDARD", "USD", f"cust-{i // 2}", "S1"),
                 lambda i, n: cc.ActivateCard(n, ""),
                 lambda i, n: cc.LoadValue(n, 50_000_000, "USD", "bench")):
        _submit(ledger, admin.credential_id, [make(i, n) for i, n in enumerate(numbers)])
    rng = random.Random(10)
    today = dt.date.today()
    written = 3 * cards
    purchases: list[tuple[str, str]] = []  # (terminal, purchase id)
    while written < events:
        picked = rng.sample(numbers, min(len(numbers), 1_000))
        by_terminal: dict[str, list[object]] = {t: [] for t in terminals}
        for n in picked[:600]:
            day = today - dt.timedelta(days=rng.randrange(365))
            local = f"{day.isoformat()}T{rng.randrange(8, 22):02d}:{rng.randrange(60):02d}"
            lines = tuple(Line(f"sku-{k}", "food", rng.randint(1, 3), rng.randint(100, 9_000),
                               rng.randint(0, 900)) for k in range(rng.randint(1, 3)))
            by_terminal[rng.choice(terminals)].append(pc.Purchase(
                n, "USD", lines, 0, True, 0, local, "r", stored_value_pays_rest=True))
        for terminal, commands in by_terminal.items():
            for reply in _submit(ledger, terminal, commands):
                if isinstance(reply, Outcome) and reply.purchase is not None:
                    purchases.append((terminal, reply.purchase.purchase_id))
            written += len(commands)
        holds = _submit(ledger, terminals[0], [cc.Authorize(n, rng.randint(1, 5_000), "USD",
                                                            False, "") for n in picked[600:800]])
        captures = [cc.Capture(r.authorization_id, 0) for r in holds
                    if isinstance(r, Outcome) and r.authorization_id]
        _submit(ledger, terminals[0], captures)
        written += len(holds) + len(captures)
        for terminal, purchase_id in rng.sample(purchases, min(10, len(purchases))):
            # at the partner where it was bought; refused when the line is back already
            _submit(ledger, terminal, [pc.Return(purchase_id, (pc.ReturnLine(0, 1),), "r")],
                    check=False)
            written += 1
        print(f"\r  log: {written:,}/{events:,} events", end="", flush=True)
    print()


def runner(url: str) -> tuple[float, int, str]:
    store = open_store(url)
    try:
        run = ProjectionRunner(store, customers.CustomersModel())
        start = time.perf_counter()
        run.rebuild()
        return time.perf_counter() - start, run.position, customers.digest(run)
    finally:
        store.close()


def queries(url: str, repeat: int) -> list[str]:
    """Each view, for the alliance and for P1, `repeat` times: p50 and max in ms."""
    store = open_store(url)
    lines = []
    try:
        run = customers.customers_runner(store)
        as_of = day_number(dt.date.today().isoformat())
        for partner in ("", "P1"):
            for name in customers.VIEWS:
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    customers.view(run, name, as_of, 12, partner, current=False)
                    times.append((time.perf_counter() - start) * 1_000)
                lines.append(f"  {name:<9} {partner or 'alliance':<9} p50 "
                             f"{statistics.median(times):8.1f} ms  max {max(times):8.1f} ms")
        with store.session(commit=False) as session:
            rows, people = session.query("SELECT count(*), count(DISTINCT customer) "
                                         "FROM proj_cust_activity")[0]
        lines.insert(0, f"activity rows: {rows:,}, customers: {people:,}")
    finally:
        store.close()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="", help="PostgreSQL URL of a scratch database "
                        "(its ledger tables are dropped); default: a temporary SQLite file")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", type=int, default=3, help="runs of each view query")
    parser.add_argument("--reuse", action="store_true",
                        help="time the log already in --database instead of writing one")
    ns = parser.parse_args()
    url = ns.database if ns.reuse else _fresh(ns.database)
    if not ns.reuse:
        store = open_store(url)
        store.create_schema()
        ledger = Ledger(store).start()
        try:
            write_log(ledger, ns.events, ns.cards)
        finally:
            ledger.stop()
            store.close()
    bare_runs, strict_runs, runner_runs = [], [], []
    for _ in range(ns.repeat):  # interleaved: the machine's load changes from minute to minute
        bare_runs.append(bare(url))
        strict_runs.append(bare(url, collect=False))
        runner_runs.append(runner(url))
    rows = bare_runs[0][1]
    best_bare = min(t for t, _ in bare_runs)
    best_strict = min(t for t, _ in strict_runs)
    best_runner = min(t for t, _, _ in runner_runs)
    assert len({d for _, _, d in runner_runs}) == 1, "a rebuild gave another digest"
    print(f"store: {url.split('://')[0]}, log rows: {rows:,}")
    print(f"bare read + decode:   {rows / best_bare:>10,.0f} events/s  "
          f"({', '.join(f'{t:.2f}' for t, _ in bare_runs)} s)")
    print(f"bare, collector off:  {rows / best_strict:>10,.0f} events/s  "
          f"({', '.join(f'{t:.2f}' for t, _ in strict_runs)} s)")
    print(f"runner (customers):   {rows / best_runner:>10,.0f} events/s  "
          f"({', '.join(f'{t:.2f}' for t, _, _ in runner_runs)} s)")
    print(f"runner / bare:        {best_bare / best_runner:.2f}x "
          f"(/ bare with the collector off: {best_strict / best_runner:.2f}x)")
    print(f"digest {runner_runs[0][2]}")
    for line in queries(url, ns.queries):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
