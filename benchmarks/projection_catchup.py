"""The projection runner catching up with the finance read model (issue 9, section 8): events
per second applied from zero, against a bare read and decode of the same log rows (the same
batches, the same store; nothing written).

A log of `--events` events is written first through the in-process writer (cards issued,
activated and loaded; then rounds of authorizations, their captures or voids, and purchases
that charge stored value, redeem and earn points), then the two are timed back to back,
`--repeat` times each, best of the runs reported:

- bare: `store.read_log(position, 20,000)` (the runner's batch while catching up) and
  `decode_event` of every row, to the end;
- runner: `ProjectionRunner(store, FinanceModel()).rebuild()`: the same reads, the decodes of
  the rows the model reads (it passes over topics it has no use for), the model's sums, and
  one transaction per batch writing them with the position.

    nice -n 19 .venv/bin/python -m benchmarks.projection_catchup \
        --database postgresql://postgres@127.0.0.1:5432/fin_bench --events 200000
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import tempfile
import time

import psycopg

from benchmarks import bench_writer
from domain.cards import commands as cc
from domain.common import APPROVALS, Principal, Role, luhn_complete
from domain.points.program import DefineProgram
from domain.points.purse import ExpiryKind
from domain.purchases import commands as pc
from domain.registry import commands as rc
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Line, Rule, RuleSet
from ledger.codec import Outcome, decode_event
from ledger.engine import Ledger
from ledger.store import open_store
from projections.finance import FinanceModel, digest
from projections.runner import CATCHUP_BATCH_ROWS, ProjectionRunner

CHUNK = 2_000


def _fresh(url: str) -> str:
    if not url:
        return f"sqlite:///{tempfile.mkdtemp()}/catchup.db"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, ledger_request_keys, "
                     "projection_positions, proj_fin_cards, proj_fin_card_points, proj_fin_lots,"
                     " proj_fin_programs, proj_fin_money, proj_fin_points CASCADE")
    return url


def _ok(replies: list[object]) -> None:
    bad = [r for r in replies if not (isinstance(r, Outcome) and r.result in APPROVALS)]
    assert len(bad) < len(replies) // 2 + 1, bad[:3]  # declines are traffic too


def _submit(ledger: Ledger, who: str, commands: list[object]) -> list[object]:
    replies: list[object] = []
    for start in range(0, len(commands), CHUNK):
        replies += bench_writer._submit_all(ledger, who, commands[start:start + CHUNK], 300.0)
    return replies


def write_log(ledger: Ledger, events: int, cards: int) -> None:
    token = ledger.bootstrap_admin("catchup")
    admin = ledger.authenticate(token)
    assert admin is not None
    for command in (rc.RegisterPartner("P1", "Bench", "USD"),
                    rc.RegisterStore("P1", "S1", "Bench store", "UTC"),
                    rc.RegisterTerminal("S1", "T1"),
                    DefineProgram("P1", "USD", 1_000_000, ExpiryKind.NEVER, 0, "UTC", 0),
                    PublishRuleSet(RuleSet(rule_set_id="base", version=1, scope="partner:P1",
                                           valid_from_us=0, valid_to_us=2**62, rules=(
                                               Rule(rule_id="earn", effect=Effect.EARN,
                                                    rate_num=1, rate_den=100),)))):
        reply = ledger.call(admin.credential_id, command, request_id=bench_writer._rid("s"))
        assert isinstance(reply, Outcome) and reply.result in APPROVALS, reply
    made = ledger.call(admin.credential_id, rc.CreateCredential(
        Principal(Role.TERMINAL, "P1", "S1", "T1"), "bench"), request_id=bench_writer._rid("s"))
    assert isinstance(made, Outcome)
    terminal = made.credential_id
    numbers = [luhn_complete(f"8{seed:014d}") for seed in range(1, cards + 1)]
    for make in (lambda n: cc.IssueCard(n, "STANDARD", "USD", "bench", "S1"),
                 lambda n: cc.ActivateCard(n, ""),
                 lambda n: cc.LoadValue(n, 50_000_000, "USD", "bench")):
        _ok(_submit(ledger, admin.credential_id, [make(n) for n in numbers]))
    rng = random.Random(7)
    written = 3 * cards
    while written < events:
        picked = rng.sample(numbers, min(len(numbers), 1_000))
        holds = _submit(ledger, terminal, [cc.Authorize(n, rng.randint(1, 5_000), "USD", False,
                                                        "") for n in picked])
        second: list[object] = []
        for reply in holds:
            if isinstance(reply, Outcome) and reply.authorization_id:
                second.append(cc.Capture(reply.authorization_id, 0) if rng.random() < 0.85
                              else cc.Void(reply.authorization_id))
        second += [pc.Purchase(n, "USD", (Line("sku", "food", 1, rng.randint(100, 9_000)),), 0,
                               True, rng.choice((0, 0, 20)), "", "r",
                               stored_value_pays_rest=True) for n in picked[:300]]
        _ok(_submit(ledger, terminal, second))
        written += len(holds) + len(second)
        print(f"\r  log: {written:,}/{events:,} events", end="", flush=True)
    print()


# A run: (wall seconds, log rows, this process's CPU seconds in every thread; the runner's
# digest). The CPU seconds say what the wall clock hides on a shared machine: how much work
# each did, the database server's apart.
def bare(url: str, collect: bool = True) -> tuple[float, int, float]:
    """Read and decode every row; `collect=False`: with the cyclic collector off, as the
    runner reads and prepares its batches (the stricter baseline)."""
    store = open_store(url)
    if not collect:
        gc.disable()
    try:
        start, cpu, position, count = time.perf_counter(), time.process_time(), 1, 0
        while rows := store.read_log(position, CATCHUP_BATCH_ROWS):
            for row in rows:
                decode_event(row.state)
            count += len(rows)
            position = rows[-1].id + 1
        return time.perf_counter() - start, count, time.process_time() - cpu
    finally:
        gc.enable()
        store.close()


def runner(url: str, profile: str = "") -> tuple[float, int, float, str]:
    store = open_store(url)
    try:
        run = ProjectionRunner(store, FinanceModel())
        profiler = cProfile.Profile() if profile else None
        start, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        run.rebuild()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").dump_stats(profile)
        return elapsed, run.position, cpu, digest(run)
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="", help="PostgreSQL URL of a scratch database "
                        "(its ledger tables are dropped); default: a temporary SQLite file")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--cards", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse", action="store_true",
                        help="time the log already in --database instead of writing one")
    parser.add_argument("--profile", default="", help="write a cProfile of one runner pass here")
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
    if ns.profile:
        runner(url, ns.profile)
    rows = bare_runs[0][1]
    best_bare = min(r[0] for r in bare_runs)
    best_strict = min(r[0] for r in strict_runs)
    best_runner = min(r[0] for r in runner_runs)
    assert len({r[3] for r in runner_runs}) == 1, "a rebuild gave another digest"
    cpu = {name: min(r[2] for r in runs) for name, runs in
           (("bare", bare_runs), ("strict", strict_runs), ("runner", runner_runs))}
    print(f"store: {url.split('://')[0]}, log rows: {rows:,}")
    for label, runs, best, key in (("bare read + decode: ", bare_runs, best_bare, "bare"),
                                   ("bare, collector off:", strict_runs, best_strict, "strict"),
                                   ("runner (finance):   ", runner_runs, best_runner, "runner")):
        print(f"{label}{rows / best:>10,.0f} events/s  ({', '.join(f'{r[0]:.2f}' for r in runs)}"
              f" s; CPU {cpu[key]:.2f} s)")
    print(f"runner / bare:      {best_bare / best_runner:.2f}x "
          f"(/ bare with the collector off: {best_strict / best_runner:.2f}x; "
          f"CPU seconds: {cpu['bare'] / cpu['runner']:.2f}x, {cpu['strict'] / cpu['runner']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
