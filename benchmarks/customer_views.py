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
import tempfile
import time

import numpy as np
import psycopg

from benchmarks import bench_writer
from benchmarks.projection_catchup import bare
from domain.cards import commands as cc
from domain.common import APPROVALS, Principal, Role, luhn_complete
from domain.customers import views
from domain.customers.activity import Activity, day_number, period_ending
from domain.purchases import commands as pc
from domain.registry import commands as rc
from domain.rules.model import Line
from grpc_api.insights import LIMIT_DEFAULT
from ledger.codec import Outcome
from ledger.engine import Ledger
from ledger.store import open_store
from projections import customer_index, customers
from projections.runner import ProjectionRunner, bulk

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


def percentile(times: list[float], p: int) -> float:
    """The p-th percentile (nearest rank) of the times."""
    ordered = sorted(times)
    return ordered[max(0, -(-p * len(ordered) // 100) - 1)]


SCOPES = (("", ""), ("P1", ""), ("P1", "S1"))


def queries(url: str, repeat: int, scopes: tuple[tuple[str, str], ...] = SCOPES,
            as_of: int | None = None) -> list[str]:
    """Each view for each scope, `repeat` times after a first query that loads the model's
    rows into memory: p50 and p99 (nearest rank) and the largest, in ms. As InsightsService
    asks them: customer lists cut to its default limit."""
    store = open_store(url)
    lines = []
    try:
        run = customers.customers_runner(store)
        if as_of is None:
            as_of = day_number(dt.date.today().isoformat())
        start = time.perf_counter()
        customers.view(run, "pyramid", as_of, 12, current=False)
        lines.append(f"first query (loads the rows into memory, compiles or loads the "
                     f"kernels): {time.perf_counter() - start:.2f} s")
        for partner, store_id in scopes:
            for name in customers.VIEWS:
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    customers.view(run, name, as_of, 12, partner, store_id, current=False,
                                   top=LIMIT_DEFAULT, listed=LIMIT_DEFAULT)
                    times.append((time.perf_counter() - start) * 1_000)
                lines.append(f"  {name:<9} {store_id or partner or 'alliance':<9} p50 "
                             f"{percentile(times, 50):8.1f} ms  p99 "
                             f"{percentile(times, 99):8.1f} ms  max {max(times):8.1f} ms")
        with store.session(commit=False) as session:
            rows, people = session.query("SELECT count(*), count(DISTINCT customer) "
                                         "FROM proj_cust_activity")[0]
        lines.insert(0, f"activity rows: {rows:,}, customers: {people:,}, "
                        f"{repeat} runs of each query")
    finally:
        store.close()
    return lines


def write_rows(url: str, people: int, seed: int = 10) -> int:
    """The model's rows of `people` customers at P1's two stores (Asia/Shanghai) over two
    years, a fifth of them also at P2's A1 (Europe/Paris), written straight into its tables
    (writing this many purchases through the engine would take hours on this machine): each
    customer 1 to 60 visits (geometric, mean ~8) at a rhythm of their own, spend per visit
    around a level of their own, a margin, and one return in twenty visits. Returns the rows."""
    rng = np.random.default_rng(seed)
    today = day_number(dt.date.today().isoformat())
    counts = np.minimum(rng.geometric(1 / 8, people), 60)
    levels = rng.lognormal(8.5, 0.8, people).astype(np.int64)
    found: dict[tuple[str, str, int, int], list[int | str]] = {}
    for i in range(people):
        customer = f"cust-{i}"
        n = int(counts[i])
        days = today - rng.integers(0, 730, n)
        hours = rng.integers(8, 22, n)
        shops = rng.choice(("S1", "S2", "A1") if i % 5 == 0 else ("S1", "S2"), n)
        spend = (levels[i] * rng.uniform(0.5, 1.5, n)).astype(np.int64) // 10 * 10
        returned = rng.random(n) < 0.05
        for day, hour, shop, paid, back in zip(days.tolist(), hours.tolist(), shops.tolist(),
                                               spend.tolist(), returned.tolist(), strict=True):
            key = (customer, shop, day, hour)
            row = found.setdefault(key, ["P2" if shop == "A1" else "P1", 0, 0, 0])
            row[1] += 0 if back else 1
            row[2] += -paid // 3 if back else paid
            row[3] += -paid // 30 if back else paid // 10
    store = open_store(url)
    try:
        store.create_schema()
        customers.customers_runner(store).catch_up()  # the model's tables, at position 0
        rows = [(c, s, p, d, h, v, sp, m) for (c, s, d, h), (p, v, sp, m) in found.items()]
        with store.session(commit=True) as session:
            bulk(session, "INSERT INTO proj_cust_stores (store_id, partner_id, timezone)",
                 ("text", "text", "text"),
                 [(store_id, partner, zone) for partner, store_id, zone, _ in STORES])
            for start in range(0, len(rows), 50_000):
                bulk(session, "INSERT INTO proj_cust_activity (customer, store_id, partner_id, "
                     "day, hour, visits, spend_minor, margin_minor)",
                     ("text", "text", "text", "integer", "integer", "bigint", "bigint",
                      "bigint"), rows[start:start + 50_000])
    finally:
        store.close()
    return len(rows)


def plain(url: str, partner: str, as_of: int) -> list[str]:
    """Each view of `partner` by the plain-Python twins (domain/customers/views.py) over
    the rows read from the table, once: their time, and that the fast view equals it."""
    store = open_store(url)
    lines = []
    try:
        run = customers.customers_runner(store)
        start = time.perf_counter()
        rows = [r for r in customers.activity(run, as_of) if r.partner_id == partner]
        lines.append(f"  plain Python: rows read in {time.perf_counter() - start:.1f} s")
        zones = {s: z for _, s, z, _ in STORES}
        for name in customers.VIEWS:
            start = time.perf_counter()
            if name == "affinity":
                period = period_ending(as_of, 12)
                seen = {r.customer for r in rows if r.day >= period.first}
                others = {r.customer for r in customers.activity(run, as_of, period.first)
                          if r.partner_id != partner and r.customer in seen}
                expected = views.affinity(rows, as_of, 12, others, flows=False, when=lambda r: (
                    customers.utc_hour(r.day, r.hour, zones[r.store_id])))
            else:
                expected = PLAIN[name](rows, as_of, 12)
            took = time.perf_counter() - start
            same = customers.view(run, name, as_of, 12, partner, current=False) == expected
            lines.append(f"  {name:<9} {partner:<9} plain Python {took * 1_000:8.0f} ms, "
                         f"{'the same answer' if same else 'A DIFFERENT ANSWER'}")
    finally:
        store.close()
    return lines


PLAIN = {"pyramid": views.pyramid, "matrix": views.matrix, "rfm": views.rfm,
         "churn": views.churn, "visits": views.visit_times}


def following(url: str, as_of: int, added: int = 1_000) -> str:
    """The cost of new rows: `added` rows merged into the columns, then a pyramid of P1."""
    store = open_store(url)
    try:
        run = customers.customers_runner(store)
        index = customer_index.index_of(run)
        rows = [Activity(f"cust-{i * 97 % 100_000}", "S1", "P1", as_of, 12, 1, 1_000, 100)
                for i in range(added)]
        start = time.perf_counter()
        with index.lock:
            index.add(rows)
        merged = time.perf_counter() - start
        start = time.perf_counter()
        customers.view(run, "pyramid", as_of, 12, "P1", current=False)
        return (f"{added:,} new activity rows merged in {merged * 1_000:.1f} ms; the next "
                f"pyramid of P1 {(time.perf_counter() - start) * 1_000:.1f} ms")
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="", help="PostgreSQL URL of a scratch database "
                        "(its ledger tables are dropped); default: a temporary SQLite file")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", type=int, default=20, help="runs of each view query")
    parser.add_argument("--reuse", action="store_true",
                        help="time the log already in --database instead of writing one")
    parser.add_argument("--customers", type=int, default=0,
                        help="instead of a log: this many customers' rows written straight "
                        "into the model's tables (P1's), then only the view queries timed")
    parser.add_argument("--queries-only", action="store_true",
                        help="with --reuse: only the view queries, no rebuild")
    ns = parser.parse_args()
    if ns.customers:
        url = _fresh(ns.database)
        start = time.perf_counter()
        written = write_rows(url, ns.customers)
        print(f"store: {url.split('://')[0]}, {written:,} activity rows of {ns.customers:,} "
              f"customers written in {time.perf_counter() - start:.0f} s")
        as_of = day_number(dt.date.today().isoformat())
        for line in (*queries(url, ns.queries, as_of=as_of), following(url, as_of),
                     *plain(url, "P1", as_of)):
            print(line)
        return 0
    if ns.queries_only:
        for line in queries(ns.database, ns.queries):
            print(line)
        return 0
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
    best_bare = min(run[0] for run in bare_runs)
    best_strict = min(run[0] for run in strict_runs)
    best_runner = min(t for t, _, _ in runner_runs)
    assert len({d for _, _, d in runner_runs}) == 1, "a rebuild gave another digest"
    print(f"store: {url.split('://')[0]}, log rows: {rows:,}")
    print(f"bare read + decode:   {rows / best_bare:>10,.0f} events/s  "
          f"({', '.join(f'{run[0]:.2f}' for run in bare_runs)} s)")
    print(f"bare, collector off:  {rows / best_strict:>10,.0f} events/s  "
          f"({', '.join(f'{run[0]:.2f}' for run in strict_runs)} s)")
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
