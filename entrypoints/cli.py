"""The `loyalty-ledger` command: init, serve, project, expire, prune-keys, audit,
import-cards, demo, bench."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ledger import limits
from ledger.limits import EXPIRY_EVERY_S
from ledger.store import ConfigError, EventStore, open_store

DATABASE_ENV = "LEDGER_DATABASE_URL"
TOKEN_ENV = "LEDGER_TOKEN"
COUPON_KEY_ENV = "LEDGER_COUPON_KEY"
COUPON_KEY_MIN_CHARS = 32
# `report` views of the customer read model (entrypoints/customer_reports.py)
CUSTOMER_VIEWS = ("pyramid", "matrix", "rfm", "churn", "visits", "affinity")
log = logging.getLogger("loyalty-ledger")


def _database(ns: argparse.Namespace) -> str:
    url = ns.database or os.environ.get(DATABASE_ENV, "")
    if not url:
        raise ConfigError(f"no database: pass --database URL or set {DATABASE_ENV}")
    return str(url)


def cmd_init(ns: argparse.Namespace) -> int:
    from ledger.engine import Ledger

    url = _database(ns)
    if ns.place and not ns.split:
        raise ConfigError("--place needs --split")
    store = open_store(url)
    try:
        if ns.split:
            store = _split(store, url, ns.place)
        store.create_schema()
        token = Ledger(store).bootstrap_admin(label="init")
    finally:
        store.close()
    print(f"schema ready in {store.url}")
    if store.split:
        print(f"log split into {store.count} partitions: " + ", ".join(  # type: ignore[attr-defined]
            f"{first}-{last} on {where}" for first, last, where in _spans(
                store.placement)))  # type: ignore[attr-defined]
    print("new ADMIN token (shown once; keep it secret):")
    print(token)
    return 0


def _split(store: Any, url: str, places: list[str]) -> Any:
    """`init --split`: the partitions' schemas placed as `--place` says, recorded once."""
    from ledger import limits, partitioned
    from ledger.store import PostgresStore

    if store.split:
        store.close()  # reopened below with the placement asked for (refused if it differs)
        store = PostgresStore(url)
    elif not isinstance(store, PostgresStore):
        store.close()
        raise ConfigError("--split: the split layout is PostgreSQL only")
    urls = partitioned.parse_places(places, limits.PARTITIONS, url)
    partitioned.create_split(store, limits.PARTITIONS, urls)
    split = partitioned.open_split(store)
    assert split is not None
    return split


def _spans(placement: list[str]) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for partition, where in enumerate(placement):
        if spans and spans[-1][2] == where:
            spans[-1] = (spans[-1][0], partition, where)
        else:
            spans.append((partition, partition, where))
    return spans


def coupon_key() -> bytes | None:
    """The coupon codes' HMAC key from LEDGER_COUPON_KEY (every process of a deployment must
    share it); None, with a warning, when unset: coupon operations then answer
    FAILED_PRECONDITION and everything else works."""
    value = os.environ.get(COUPON_KEY_ENV, "")
    if not value:
        print(f"loyalty-ledger: {COUPON_KEY_ENV} is not set: coupons are disabled",
              file=sys.stderr, flush=True)
        return None
    if len(value) < COUPON_KEY_MIN_CHARS:
        raise ConfigError(f"{COUPON_KEY_ENV} must be at least {COUPON_KEY_MIN_CHARS} "
                          "characters (e.g. `openssl rand -hex 32`)")
    return value.encode()


def _open_ready_store(url: str) -> EventStore:
    store = open_store(url)
    try:
        store.check_schema()
    except ConfigError:
        store.close()
        raise
    return store


def cmd_expire(ns: argparse.Namespace) -> int:
    import time

    from grpc_api.translate import format_time_us, parse_time_us
    from ledger.engine import Ledger
    from projections.maintenance import PointsExpiry

    now_us = time.time_ns() // 1000
    try:
        as_of_us = parse_time_us(ns.as_of, "--as-of", now_us)
    except ValueError as error:
        print(f"loyalty-ledger expire: {error}", file=sys.stderr)
        return 2
    if as_of_us > now_us:
        print("loyalty-ledger expire: --as-of must not be in the future (points are never "
              "expired early)", file=sys.stderr)
        return 2
    store = _open_ready_store(_database(ns))
    ledger = Ledger(store, coupon_key=coupon_key()).start()
    try:
        run = PointsExpiry(ledger).run(as_of_us)
    finally:
        ledger.stop()
        store.close()
    print(f"expired {run.points_expired} points on {run.cards_with_expiry} of "
          f"{run.cards_checked} cards, lowered {run.tiers_lowered} tiers, as of "
          f"{format_time_us(as_of_us)}"
          + (f"; {run.failures} cards failed (run again)" if run.failures else ""))
    return 1 if run.failures else 0


def cmd_partitions(ns: argparse.Namespace) -> int:
    """Which process owns each card partition now."""
    from domain.common import format_time_us
    from ledger.ownership import leases

    store = _open_ready_store(_database(ns))
    try:
        params = store.connect_params
        if params is None:
            print("one partition: an SQLite store has one log and no partition owners")
            return 0
        found = leases(params)
        placement: list[str] = list(getattr(store, "placement", []))
    finally:
        store.close()
    print(f"{'partition':>9}  {'owner':<56}  {'since':<20}" + ("  log" if placement else ""))
    for lease in found:
        print(f"{lease.partition:>9}  {lease.address or '(none)':<56}  "
              + f"{format_time_us(lease.since_us) if lease.address else '-':<20}"
              + (f"  {placement[lease.partition]} (ledger_p{lease.partition:02d})"
                 if lease.partition < len(placement) else ""))
    owners = {lease.address for lease in found if lease.address}
    print(f"{len(found)} partitions, {sum(1 for lease in found if lease.address)} owned by "
          f"{len(owners)} processes" + (
              f"; the log split over {len(set(placement))} "
              f"database{'s' if len(set(placement)) != 1 else ''}" if placement else
              "; one log"))
    return 0


def cmd_prune_keys(ns: argparse.Namespace) -> int:
    import time

    from ledger.retention import prune_request_keys

    if ns.retention_days < 7:
        print("loyalty-ledger prune-keys: --retention-days must be at least 7 (the contract's "
              "retry window)", file=sys.stderr)
        return 2
    store = _open_ready_store(_database(ns))
    try:
        deleted = prune_request_keys(store, time.time_ns() // 1000,
                                     int(ns.retention_days * 86_400))
    finally:
        store.close()
    print(f"pruned {deleted} request keys older than {ns.retention_days:g} days")
    return 0


def cmd_audit(ns: argparse.Namespace) -> int:
    from entrypoints import audit_commands as ac
    from projections.audit import audit_replay

    if ns.check == "keygen":
        return _bad_input_exits(lambda: ac.cmd_keygen(ns))
    if ns.check == "verify":
        return ac.cmd_verify(ns)
    if ns.check == "checkpoint":
        return _on_store(ns, ac.cmd_checkpoint)
    if ns.check == "export":
        return _on_store(ns, ac.cmd_export)
    from domain.common import InvalidInput, parse_time_us

    try:
        as_of_us = parse_time_us(ns.as_of, "--as-of", 0) if ns.as_of else None
    except InvalidInput as error:
        print(f"loyalty-ledger: {error}", file=sys.stderr)
        return 2
    store = _open_ready_store(_database(ns))
    try:
        return audit_replay(store, as_of_us=as_of_us, figures_to=ns.figures)
    finally:
        store.close()


def cmd_import_cards(ns: argparse.Namespace) -> int:
    """Issue (and load) the cards of a card file through an in-process writer."""
    import time

    from ledger import limits
    from ledger.card_import import FileFormatError, collecting_less, import_cards
    from ledger.engine import Ledger
    from projections.audit import ProgressBar

    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise ConfigError(f"no credential: set {TOKEN_ENV} to the bearer token of a credential "
                          "that may issue cards (ADMIN, PARTNER_MANAGER, STORE_MANAGER)")
    try:
        with open(ns.file, "rb") as counting:
            total = max(0, sum(chunk.count(b"\n") for chunk in iter(
                lambda: counting.read(1 << 20), b"")))
        source = open(ns.file, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except OSError as error:
        raise ConfigError(f"cannot read {ns.file}: {error.strerror}") from None
    store = _open_ready_store(_database(ns))
    ledger = Ledger(store, card_cache_max=limits.IMPORT_CARD_CACHE_MAX).start()
    bar = ProgressBar(sys.stderr, "import-cards")
    try:
        credential = ledger.authenticate(token)
        if credential is None:
            raise ConfigError(f"{TOKEN_ENV}: unknown or revoked token")
        started = time.perf_counter()
        with collecting_less():
            summary = import_cards(ledger, credential.credential_id, source, ns.store,
                                   lambda line: bar("lines", line, max(total, line)))
        elapsed = time.perf_counter() - started
    except FileFormatError as error:
        print(f"loyalty-ledger import-cards: {ns.file} {error}; nothing imported",
              file=sys.stderr)
        return 2
    except UnicodeDecodeError as error:
        print(f"loyalty-ledger import-cards: {ns.file}: not UTF-8 ({error.reason} at byte "
              f"{error.start}); lines before it were imported, rerun once it is fixed",
              file=sys.stderr)
        return 2
    finally:
        bar.end()
        source.close()
        ledger.stop()
        store.close()
    _print_import_summary(ns.file, summary, elapsed)
    return 0 if summary.ok else 1


def _print_import_summary(path: str, summary: object, elapsed_s: float) -> None:
    from ledger import limits
    from ledger.card_import import Summary

    assert isinstance(summary, Summary)
    done = summary.issued + summary.issued_before
    print(f"import-cards {path}: {summary.lines:,} card lines in {elapsed_s:.1f} s "
          f"({summary.lines / elapsed_s if elapsed_s > 0 else 0:,.0f} lines/s)")
    print(f"  issued            {done:>10,}  ({summary.issued:,} now, "
          f"{summary.issued_before:,} by an earlier run: replayed)")
    print(f"  loaded            {summary.loaded + summary.loaded_before:>10,}  "
          f"({summary.loaded:,} now, {summary.loaded_before:,} by an earlier run)")
    existed = summary.already_existed
    print(f"  already existed   {len(existed):>10,}" + (
        "  (card number issued before, not by this file: nothing done; lines "
        + ", ".join(map(str, existed[:10])) + (" ..." if len(existed) > 10 else "") + ")"
        if existed else ""))
    reasons: dict[str, int] = {}
    for _, reason in summary.declined:
        reasons[reason] = reasons.get(reason, 0) + 1
    print(f"  declined          {len(summary.declined):>10,}" + (
        "  (" + ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items())) + ")"
        if reasons else ""))
    print(f"  errors            {len(summary.errors):>10,}" + (
        "  (on stderr, by line; nothing written for those lines)" if summary.errors else ""))
    for line, reason in summary.declined[:limits.IMPORT_ERRORS_SHOWN]:
        print(f"line {line}: declined: {reason}", file=sys.stderr)
    for error in summary.errors[:limits.IMPORT_ERRORS_SHOWN]:
        print(f"line {error.line}: {error.message}", file=sys.stderr)
    hidden = (max(0, len(summary.errors) - limits.IMPORT_ERRORS_SHOWN)
              + max(0, len(summary.declined) - limits.IMPORT_ERRORS_SHOWN))
    if hidden:
        print(f"... and {hidden:,} more lines not shown", file=sys.stderr)
    if not summary.ok:
        print("  result: some lines were not imported as the file asks (exit status 1); "
              "fix them and run the same command again: what was done is not done twice")


def cmd_serve(ns: argparse.Namespace) -> int:
    url = _database(ns)
    if ns.workers > 1 or ns.fronts:
        return _serve_workers(ns, url)
    key = coupon_key()
    store = _open_ready_store(url)
    try:
        plan = _partition_plan(ns, store)
    except ConfigError:
        store.close()
        raise
    projector = (_start_projector(url, ns.audit_key, ns.projector_nice) if ns.projector
                 else None)
    try:
        return asyncio.run(_serve_one(store, ns.listen, ns.expire_every_s, key, plan))
    finally:
        _stop_projector(projector)


class PartitionPlan(NamedTuple):
    index: int  # worker `index` of `of` prefers the partitions p with p % of == index
    of: int
    route_dir: str
    front: bool  # terminates gRPC and routes; owns no partition


def _partition_plan(ns: argparse.Namespace, store: EventStore) -> PartitionPlan | None:
    """How this process takes partition leases and routes requests to their owners:
    PostgreSQL unless --no-routing."""
    if not ns.routing or store.connect_params is None:
        return None
    index, of, front = 0, 1, False
    if ns.worker == "front":
        front = True
    elif ns.worker:
        parts = ns.worker.split("/")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or not (
                0 <= int(parts[0]) < int(parts[1])):
            raise ConfigError(f"--worker must be K/N with 0 <= K < N, or front; not "
                              f"{ns.worker!r}")
        index, of = int(parts[0]), int(parts[1])
    from ledger.routing import private_directory

    route_dir = ns.route_dir or os.path.join(tempfile.gettempdir(),
                                             f"loyalty-ledger-routes-{os.getuid()}")
    return PartitionPlan(index, of, private_directory(route_dir), front)


def _start_projector(url: str, audit_key: str = "",
                     nice: int = limits.PROJECTOR_NICE) -> subprocess.Popen[bytes]:
    """The read models follow the log in a process of their own (`loyalty-ledger project`):
    applying every event to them inside a server would take the writer's interpreter from it
    (measured: a quarter of Batch throughput). A server still catches a read model up before
    reading it, so a reply is never stale, only the follower keeps the backlog short. It runs
    at a lower CPU priority than the servers (`limits.PROJECTOR_NICE`)."""
    return subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "project", "--database",
                             url, "--parent-pid", str(os.getpid()), "--nice", str(nice)]
                            + (["--audit-key", audit_key] if audit_key else []))


def _stop_projector(projector: subprocess.Popen[bytes] | None) -> None:
    if projector is not None and projector.poll() is None:
        projector.send_signal(signal.SIGTERM)
        try:
            projector.wait(timeout=10)
        except subprocess.TimeoutExpired:
            projector.kill()


def _checkpoint_loop(store: EventStore, signer: Any, poll_s: float,
                     stop: threading.Event) -> None:
    """Signed checkpoints beside the read models (projections/checkpoints.py); a failed pass
    (the database away) is retried at the next poll."""
    from ledger.store import StoreError
    from projections.checkpoints import Checkpointer

    checkpointer = Checkpointer(store, signer)
    while not stop.wait(poll_s):
        try:
            checkpointer.run_once()
        except StoreError as error:
            logging.getLogger(__name__).warning("checkpointer: %s", error)


def cmd_project(ns: argparse.Namespace) -> int:
    from projections.customers import customers_runner
    from projections.finance import finance_runner
    from projections.movements import movements_runner
    from projections.runner import SharedLog
    from projections.settlement import settlement_runner

    if ns.rebuild == "customers":
        from entrypoints.customer_reports import cmd_rebuild_customers

        return _on_store(ns, cmd_rebuild_customers)
    if ns.rebuild:
        from entrypoints.finance_reports import cmd_rebuild

        return _on_store(ns, cmd_rebuild)
    signer = None
    if ns.audit_key:
        from projections.checkpoints import Signer

        signer = Signer.from_file(ns.audit_key)  # a bad key stops the command at once
    if ns.nice:
        os.nice(ns.nice)
    store = _open_ready_store(_database(ns))
    log = SharedLog(store)  # each full batch of the log read once for every read model
    runners = [movements_runner(store, log), settlement_runner(store, log),
               finance_runner(store, log), customers_runner(store, log)]
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    for runner in runners:
        runner.start(ns.poll_s)
    if signer is not None:
        threading.Thread(target=_checkpoint_loop, args=(store, signer, ns.poll_s, stop),
                         daemon=True, name="checkpointer").start()
    # Started by `serve`: end with it, even when it is killed (kill -9 leaves no time to stop
    # its children, and an orphan follower would go on moving the read models' positions).
    while not stop.wait(0.5):
        if ns.parent_pid and os.getppid() != ns.parent_pid:
            break
    for runner in runners:
        runner.stop()
    store.close()
    return 0


def _bad_input_exits(run: Callable[[], int]) -> int:
    from domain.common import InvalidInput

    try:
        return run()
    except InvalidInput as error:
        print(f"loyalty-ledger: {error}", file=sys.stderr)
        return 2


def _on_store(ns: argparse.Namespace, run: Callable[[argparse.Namespace, Any], int]) -> int:
    """Run `run(ns, store)` on the --database store; a bad input is a one-line error, exit 2;
    a read that waits on the ledger's writes (a closed period whose marks have not reached
    every partition yet: the split log) a one-line error, exit 75 (EX_TEMPFAIL: retry)."""
    from domain.common import InvalidInput
    from ledger.refusals import StillWriting

    store = _open_ready_store(_database(ns))
    try:
        return run(ns, store)
    except InvalidInput as error:
        print(f"loyalty-ledger: {error}", file=sys.stderr)
        return 2
    except StillWriting as busy:
        print(f"loyalty-ledger: {busy}", file=sys.stderr)
        return 75
    finally:
        store.close()


def cmd_report(ns: argparse.Namespace) -> int:
    from entrypoints.finance_reports import cmd_report_finance
    from entrypoints.reports import cmd_report_statement

    if ns.report in CUSTOMER_VIEWS:
        from entrypoints.customer_reports import cmd_report_customers

        return _on_store(ns, cmd_report_customers)
    if ns.report == "html":
        from entrypoints.report_page import cmd_report_html

        return _on_store(ns, cmd_report_html)
    return _on_store(ns, cmd_report_statement if ns.report == "statement"
                     else cmd_report_finance)


def cmd_settlement(ns: argparse.Namespace) -> int:
    from entrypoints.recon import cmd_settlement_pay
    from entrypoints.reports import cmd_settlement_close

    return _on_store(ns, cmd_settlement_pay if ns.action == "pay" else cmd_settlement_close)


def cmd_reconcile(ns: argparse.Namespace) -> int:
    from entrypoints.recon import cmd_reconcile as reconcile
    from entrypoints.recon import cmd_resolve

    return _on_store(ns, cmd_resolve if ns.target == "resolve" else reconcile)


async def _expiry_schedule(ledger: object, every_s: float) -> None:
    """Run the points expiry job every `every_s` seconds, as of the moment it starts."""
    import time

    from ledger.retention import prune_request_keys
    from projections.maintenance import PointsExpiry

    job = PointsExpiry(ledger)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every_s)
        try:
            run = await loop.run_in_executor(None, job.run, time.time_ns() // 1000)
        except Exception:  # a failed run is retried at the next tick
            log.exception("points expiry run failed")
            continue
        if run.points_expired or run.tiers_lowered or run.failures:
            log.warning("card maintenance: %d points expired on %d cards, %d tiers lowered, "
                        "%d failures", run.points_expired, run.cards_with_expiry,
                        run.tiers_lowered, run.failures)
        try:  # request keys past the retry window, on this task's executor thread
            await loop.run_in_executor(None, prune_request_keys, ledger.store,  # type: ignore[attr-defined]
                                       time.time_ns() // 1000)
        except Exception:
            log.exception("request key pruning failed")


async def _serve_one(store: EventStore, listen: str, expire_every_s: float = 0,
                     key: bytes | None = None,
                     partitions: PartitionPlan | None = None) -> int:
    from grpc_health.v1 import health_pb2

    from grpc_api.server import create_server, shutdown
    from ledger import collector
    from ledger.engine import Ledger

    # The writer's threads wake on I/O while the event loop runs gRPC code; a shorter GIL
    # switch interval than the default 5 ms lets them in sooner (lower p99 under load).
    sys.setswitchinterval(0.001)
    from ledger.rule_kernel import warm_up

    warm_up()  # numba kernels compiled (or loaded from cache) before the port opens
    ledger = Ledger(store, coupon_key=key).start()
    routes = _start_routing(ledger, store, partitions) if partitions is not None else None
    served = await create_server(ledger, listen)
    collector.for_serving()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await served.server.start()
    await served.health.set("", health_pb2.HealthCheckResponse.SERVING)
    host = listen.rsplit(":", 1)[0]
    print(f"ready: listening on {host}:{served.port} (pid {os.getpid()}, database {store.url})",
          flush=True)
    expiry = (asyncio.create_task(_expiry_schedule(ledger, expire_every_s))
              if expire_every_s > 0 else None)
    await stop.wait()
    if expiry is not None:
        expiry.cancel()
    await shutdown(served, grace_s=10)  # calls already sent are answered; new ones refused
    routed = ""
    if routes is not None:
        ownership, router, listener = routes
        routed = (f", {router.forwarded} forwarded to partition owners, "
                  f"{listener.received} received as owner of {len(ownership.owned)}")
        router.close()
        ledger.stop()  # what was forwarded here is answered before the leases go
        listener.close()
        ownership.stop()
    else:
        ledger.stop()
    store.close()
    print(f"stopped: pid {os.getpid()}; {ledger.batches} batches decided, "
          f"{ledger.requests_committed} requests in {ledger.commits_done} commits, "
          f"{ledger.conflicts} conflicts re-decided{routed}", flush=True)
    return 0


def _start_routing(ledger: Any, store: EventStore, plan: PartitionPlan) -> tuple[Any, Any, Any]:
    """Take this process's card partition leases and route requests to other owners."""
    from ledger.ownership import Ownership
    from ledger.routing import RouteListener, Router

    address = f"unix:{os.path.join(plan.route_dir, f'ledger-{os.getpid()}.sock')}"
    listener = RouteListener(address, ledger.enqueue)  # listening before it is named
    params = store.connect_params
    assert params is not None
    ownership = Ownership(params, address, (plan.index, plan.of), owner=not plan.front).start()
    ledger.router = Router(ownership, ledger.enqueue)
    return ownership, ledger.router, listener


def _serve_workers(ns: argparse.Namespace, url: str) -> int:
    """N server processes sharing the port (SO_REUSEPORT) and the database; worker k prefers
    the card partitions p with p % N == k. A worker that dies (kill -9, a crash) is started
    again; its partitions are owned by the others meanwhile and handed back to the new one."""
    import time

    store = _open_ready_store(url)
    sqlite = store.connect_params is None
    store.close()
    if ns.fronts and (sqlite or not ns.routing):
        raise ConfigError("--fronts needs card partition owners to route to: PostgreSQL, "
                          "without --no-routing")
    processes = ns.workers + ns.fronts
    ready = threading.Barrier(processes + 1)
    stopping = threading.Event()

    def start(index: int, first: bool) -> subprocess.Popen[str]:
        role = f"{index}/{ns.workers}" if index < ns.workers else "front"
        child = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", "serve", "--database", url, "--listen",
             ns.listen, "--workers", "1", "--expire-every-s", str(ns.expire_every_s),
             "--no-projector", "--worker", role]
            + (["--route-dir", ns.route_dir] if ns.route_dir else [])
            + ([] if ns.routing else ["--no-routing"]),
            stdout=subprocess.PIPE, text=True)
        threading.Thread(target=relay, args=(child, first), daemon=True).start()
        return child

    def relay(child: subprocess.Popen[str], first: bool) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            print(line, end="", flush=True)
            if first and line.startswith("ready:"):
                ready.wait()

    children = [start(index, True) for index in range(processes)]
    projector = (_start_projector(url, ns.audit_key, ns.projector_nice)  # one for all workers
                 if ns.projector else None)

    def forward(signum: int, _frame: object) -> None:
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        ready.wait(timeout=120)
        print(f"ready: {ns.workers} workers"
              + (f" and {ns.fronts} front processes" if ns.fronts else "")
              + f" on {ns.listen}", flush=True)
    except threading.BrokenBarrierError:
        forward(signal.SIGTERM, None)
    started = [time.monotonic()] * processes
    quick_deaths = 0
    while not stopping.wait(0.5):
        for index, child in enumerate(children):
            code = child.poll()
            if code is None or stopping.is_set():
                continue
            quick_deaths = quick_deaths + 1 if time.monotonic() - started[index] < 30 else 0
            if quick_deaths > limits.WORKER_RESTARTS_MAX:
                print(f"loyalty-ledger: worker {index} keeps dying (exit {code}); stopping",
                      file=sys.stderr, flush=True)
                forward(signal.SIGTERM, None)
                break
            print(f"worker {index} (pid {child.pid}) exited with {code}; starting another",
                  file=sys.stderr, flush=True)
            children[index] = start(index, False)
            started[index] = time.monotonic()
            if stopping.is_set():  # SIGTERM came while it was starting: it stops too
                children[index].send_signal(signal.SIGTERM)
    codes = [child.wait() for child in children]
    _stop_projector(projector)
    return 0 if all(code == 0 for code in codes) and quick_deaths <= limits.WORKER_RESTARTS_MAX \
        else 1


def cmd_demo(ns: argparse.Namespace) -> int:
    from entrypoints.demo import run_demo

    return run_demo(seconds=ns.seconds, concurrency=ns.concurrency, cards=ns.cards,
                    page=ns.report)


def cmd_bench(ns: argparse.Namespace) -> int:
    from benchmarks.loadgen import run_bench  # type: ignore[import-not-found]

    return int(run_bench(ns))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loyalty-ledger",
        description="Event-sourced stored-value and loyalty ledger for a retail alliance.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  loyalty-ledger demo\n  loyalty-ledger init --database "
               "sqlite:///ledger.db && loyalty-ledger serve --database sqlite:///ledger.db")
    commands = parser.add_subparsers(dest="command", required=True)

    def sub(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text,
                                   epilog=f"example:\n  {example}",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    database_help = (f"sqlite:///path/to/file.db or postgresql://user@host:port/db "
                     f"(default: ${DATABASE_ENV})")
    p = sub("init", "Create the ledger's tables and print a new ADMIN token as the last line.",
            "loyalty-ledger init --database postgresql://postgres@127.0.0.1:5432/ledger")
    p.add_argument("--database", help=database_help)
    p.add_argument("--split", action="store_true",
                   help="split the log into card partitions, a schema each (PostgreSQL; "
                        "recorded once: a card never moves)")
    p.add_argument("--place", action="append", default=[], metavar="FIRST-LAST=URL",
                   help="with --split: put partitions FIRST..LAST on another PostgreSQL "
                        "database (repeatable; the others stay in --database)")
    p.set_defaults(func=cmd_init)

    p = sub("serve", "Serve the gRPC API (AdminService, CardService, PosService, "
            "ProgramService, health, reflection) on a database made by init. SIGTERM drains "
            "in-flight requests.",
            "loyalty-ledger serve --database sqlite:///ledger.db --listen 0.0.0.0:50051 "
            "--workers 2")
    p.add_argument("--database", help=database_help)
    p.add_argument("--listen", default="127.0.0.1:50051", help="HOST:PORT (default %(default)s)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the port and the database (default 1)")
    p.add_argument("--expire-every-s", type=float, default=EXPIRY_EVERY_S,
                   help="run the points expiry job this often, in seconds (0 = never; "
                        "default %(default)s)")
    p.add_argument("--no-projector", dest="projector", action="store_false",
                   help="do not start the read models' follower process (`project`); "
                        "ListMovements then catches them up itself")
    p.add_argument("--audit-key", default="",
                   help="the operator's Ed25519 private key file (audit keygen): the "
                        "follower signs checkpoints over the log with it")
    p.add_argument("--projector-nice", type=int, default=limits.PROJECTOR_NICE,
                   help="the read models' follower's CPU priority below the server's "
                        "(os.nice; 0 = the same; default %(default)s)")
    p.add_argument("--no-routing", dest="routing", action="store_false",
                   help="PostgreSQL: do not take card partition leases nor route requests "
                        "to their partition's owner; every process decides what it "
                        "receives, optimistically (the behaviour before partitions)")
    p.add_argument("--route-dir", default="",
                   help="directory of the processes' local route sockets (default: a "
                        "directory under the system's temporary directory)")
    p.add_argument("--fronts", type=int, default=0,
                   help="PostgreSQL: this many more processes that only terminate gRPC on "
                        "the same port and send every card's request to its partition's "
                        "owner among the --workers (default 0)")
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)  # "K/N" or "front"
    p.set_defaults(func=cmd_serve)

    p = sub("project", "Follow the log into the read models (movements, settlement, finance, "
            "customers) "
            "until SIGTERM; serve starts one. Safe to run several: each batch is applied once. "
            "With --rebuild NAME: drop that read model, apply the whole log again (progress on "
            "stderr), print its position (and the finance model's digest) and exit.",
            "loyalty-ledger project --database postgresql://postgres@127.0.0.1/ledger\n"
            "  loyalty-ledger project --rebuild finance --database sqlite:///ledger.db")
    p.add_argument("--database", help=database_help)
    p.add_argument("--rebuild", choices=["finance", "movements", "settlement", "customers"],
                   default="",
                   help="rebuild this read model from zero, then exit")
    p.add_argument("--poll-s", type=float, default=1.0,
                   help="look at the log this often when idle, in seconds (default %(default)s)")
    p.add_argument("--parent-pid", type=int, default=0,
                   help="end when this process (the server that started it) is gone")
    p.add_argument("--nice", type=int, default=0,
                   help="lower this process's CPU priority by this much (os.nice; serve "
                        f"starts its follower with --nice {limits.PROJECTOR_NICE})")
    p.add_argument("--audit-key", default="",
                   help="also sign checkpoints over the log with this private key file")
    p.set_defaults(func=cmd_project)

    p = sub("expire", "Record the expiry of every points lot whose time is up at --as-of "
            "(default: now) and lower the tiers the last whole period's spend no longer "
            "reaches. Safe beside running servers; running it twice changes nothing.",
            "loyalty-ledger expire --database sqlite:///ledger.db --as-of 2026-12-31T16:00:00Z")
    p.add_argument("--database", help=database_help)
    p.add_argument("--as-of", default="", help="RFC 3339 time with an offset (default: now)")
    p.set_defaults(func=cmd_expire)

    p = sub("partitions", "List the card partitions and the process that owns each now "
            "(PostgreSQL: the live leases of running servers).",
            "loyalty-ledger partitions --database postgresql://postgres@127.0.0.1/ledger")
    p.add_argument("--database", help=database_help)
    p.set_defaults(func=cmd_partitions)

    p = sub("prune-keys", "Delete request keys older than the retry window (7 days): a retry "
            "after it is a new request. serve does this with its card maintenance; safe beside "
            "running servers.",
            "loyalty-ledger prune-keys --database postgresql://postgres@127.0.0.1/ledger")
    p.add_argument("--database", help=database_help)
    p.add_argument("--retention-days", type=float, default=7.0,
                   help="keep keys this many days (at least 7; default %(default)s)")
    p.set_defaults(func=cmd_prune_keys)

    p = sub("audit", "replay: read the whole log, re-evaluate every purchase with the reference "
            "evaluator and its pinned rule-set versions, rebuild every purse lot by lot and "
            "compare (progress on stderr; exit 0 if all equal, 1 listing the differences). "
            "keygen: a new Ed25519 key pair for signing checkpoints. checkpoint: sign "
            "checkpoints over every event not yet covered. export: the package of the signed "
            "checkpoints covering --from..--to (positions or RFC 3339 times), --entity P for "
            "P's events only with inclusion proofs. verify: check a package offline (or "
            "--database) against --public-key; exit 1 naming the first bad position. On a "
            "split log (init --split) each lane has its own chain and positions: checkpoint "
            "and verify cover every lane; export takes times for --from/--to (each lane's "
            "range recorded then, a package per lane in OUT/lane-LL), or positions of one "
            "lane with --lane L.",
            "loyalty-ledger audit replay --database sqlite:///ledger.db\n"
            "  loyalty-ledger audit replay --as-of 2026-11-30T23:59:59+08:00 --figures "
            "nov.json --database sqlite:///ledger.db\n"
            "  loyalty-ledger audit keygen --out keys/2026\n"
            "  loyalty-ledger audit export --from 2026-11-01T00:00:00Z --to "
            "2026-12-01T00:00:00Z --entity P2 --out p2-nov --database sqlite:///ledger.db\n"
            "  loyalty-ledger audit verify p2-nov --public-key keys/2026/audit-key.pub.pem")
    p.add_argument("check", choices=["replay", "keygen", "checkpoint", "export", "verify"])
    p.add_argument("package", nargs="?", default="", help="verify: the package directory")
    p.add_argument("--database", help=database_help)
    p.add_argument("--out", default="", help="keygen, export: the directory to write")
    p.add_argument("--audit-key", default="", help="checkpoint: the private key file")
    p.add_argument("--public-key", action="append", default=[],
                   help="verify: a public key file (repeat for rotated keys)")
    p.add_argument("--from", dest="from_", default="", help="export: first position or time")
    p.add_argument("--to", default="", help="export: last position or time (default: now)")
    p.add_argument("--entity", default="", help="export: only this entity's events")
    p.add_argument("--lane", type=int, default=None,
                   help="export on a split log: the lane (0 registry, 1+P card partition P) "
                        "whose positions --from/--to are (default: every lane, by time)")
    p.add_argument("--as-of", default="", help="replay: only the events recorded by this RFC "
                                               "3339 time (default: all)")
    p.add_argument("--figures", default="", help="replay: write every card's figures and every "
                                                 "account balance (JSON) to this file")
    p.set_defaults(func=cmd_audit)

    p = sub("import-cards", "Issue the cards of a card file (CSV with a header: card_number, "
            "card_class, currency, [customer_ref], [issuing_store_id], [amount_minor, "
            "payment_ref] for an initial load) through the ledger's own decisions, in batches, "
            f"as the credential whose token is in ${TOKEN_ENV}. Safe to run again after a "
            "crash or a fix: every line's requests have ids derived from its card number, so "
            "nothing is applied twice. Progress on stderr; a summary at the end; bad lines "
            "listed by line number (nothing written for them). Exit status 0 when every line "
            "was imported, 1 when some were not, 2 when the file or the setup is unusable.",
            f"{TOKEN_ENV}=llk_... loyalty-ledger import-cards cards.csv --database "
            "postgresql://postgres@127.0.0.1/ledger --store S1\n\n"
            "card file:\n  card_number,card_class,currency,customer_ref,amount_minor,"
            "payment_ref\n  7000000000000013,STANDARD,USD,cust-0001,5000,psp-batch-42\n"
            "  7000000000000021,VIP,USD,cust-0002,,")
    p.add_argument("file", help="the card file (UTF-8 CSV with a header line)")
    p.add_argument("--database", help=database_help)
    p.add_argument("--store", default="",
                   help="issuing store of lines without an issuing_store_id (default: the "
                        "credential's own store)")
    p.set_defaults(func=cmd_import_cards)

    p = sub("settlement", "close: end the open settlement period now (a marker in the log: "
            "every movement committed before it is the period's), as the ADMIN or alliance "
            f"FINANCE credential whose token is in ${TOKEN_ENV}. pay: record a payment against "
            "the transfer payer -> payee of a closed period (ADMIN, alliance FINANCE or the "
            "payee's FINANCE; more than is outstanding is refused, nothing written).",
            f"{TOKEN_ENV}=llk_... loyalty-ledger settlement close --note 'November 2026' "
            "--database postgresql://postgres@127.0.0.1/ledger\n  "
            f"{TOKEN_ENV}=llk_... loyalty-ledger settlement pay --period 1 --currency USD "
            "--payer P1 --payee P2 --amount-minor 500 --reference wire-1 --database ...")
    p.add_argument("action", choices=["close", "pay"])
    p.add_argument("--database", help=database_help)
    p.add_argument("--note", default="", help="why now, for the record")
    p.add_argument("--request-id", default="",
                   help="idempotency key: the same id again replays the first close/payment")
    for flag, kind, text in (  # pay (issue 9): a payment against a closed period's transfer
            ("--period", int, "pay: the closed period"), ("--currency", str, "pay"),
            ("--payer", str, "pay: the paying entity"), ("--payee", str, "pay: the payee"),
            ("--amount-minor", int, "pay: minor units, at most what is outstanding"),
            ("--reference", str, "pay: the bank transfer's reference")):
        p.add_argument(flag, type=kind, default=kind(), help=text)
    p.set_defaults(func=cmd_settlement)

    p = sub("reconcile", "FILE: match a partner's POS journal for a closed settlement period "
            "(CSV with the header store_id,reference,type,amount_minor,currency; see README) "
            "against the ledger's movements at its stores, record the run (the file's digest "
            "and the counts per class) as the credential whose token is in "
            f"${TOKEN_ENV}, and list the breaks. export: the ledger's per-store, per-day, "
            "per-type totals (--detail: its rows, in the journal's format). resolve: resolve a "
            "break with a reason. Exit 2 on a bad file (every bad line listed as 'line N: "
            "column: problem', nothing recorded).",
            f"{TOKEN_ENV}=llk_... loyalty-ledger reconcile journal.csv --partner P1 --period 3"
            " --database sqlite:///ledger.db\n  loyalty-ledger reconcile export --partner P1 "
            "--period 3 --database sqlite:///ledger.db")
    p.add_argument("target", help="the journal file, or export, or resolve")
    p.add_argument("--database", help=database_help)
    p.add_argument("--partner", required=True)
    p.add_argument("--period", type=int, required=True, help="a closed settlement period")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--detail", action="store_true", help="export: the rows, not the totals")
    p.add_argument("--output", default="", help="export: write to this file (default stdout)")
    p.add_argument("--break-id", default="", help="resolve: the break")
    p.add_argument("--reason", default="", help="resolve: why it is resolved")
    p.add_argument("--request-id", default="", help="idempotency key of the run or resolution")
    p.set_defaults(func=cmd_reconcile)

    p = sub("report", "statement: a settlement period's statements per entity (lines per "
            "counterparty and category, bilateral and multilateral nets) and the instructions "
            "that settle them, from the settlement read model (brought up to the log's end). "
            "liability: stored value per issuer (available, held) and points per program "
            "(vested, pending, value) outstanding at the end of the UTC day --as-of. "
            "rollforward: opening, movements line by line and closing, per issuer and "
            "program, from the start of --from to the end of --to (UTC days). breakage: what "
            "expired per UTC month from --from to --to. From the finance read model. "
            "pyramid, matrix, rfm, churn, visits, affinity: the customer views as of --as-of "
            "(a local day) over --months, for the alliance, --partner or --store, from the "
            "customers read model (README, Customer views).",
            "loyalty-ledger report statement --period 1 --entity P1 --format csv "
            "--database sqlite:///ledger.db\n"
            "  loyalty-ledger report liability --as-of 2026-11-30 --database "
            "sqlite:///ledger.db\n"
            "  loyalty-ledger report rollforward --from 2026-11-01 --to 2026-11-30 --format csv "
            "--database sqlite:///ledger.db\n"
            "  loyalty-ledger report pyramid --as-of 2026-12-03 --partner P1 "
            "--database sqlite:///ledger.db\n"
            "  loyalty-ledger report html --out report.html --database sqlite:///ledger.db")
    p.add_argument("report", choices=["statement", "liability", "rollforward", "breakage",
                                      "ifrs15", "campaigns", "html", *CUSTOMER_VIEWS])
    p.add_argument("--out", default="", help="html: the page to write (one self-contained "
                                             "file: liability, settlement, customer views)")
    p.add_argument("--partner", default="",
                   help="customer views: only this partner's stores and their customers")
    p.add_argument("--store", default="", help="customer views: only this store")
    p.add_argument("--months", type=int, default=12,
                   help="customer views: the period, months ending with --as-of (default 12)")
    p.add_argument("--sales-split", type=int, default=None,
                   help="matrix: high sales above this net spend (default: the median)")
    p.add_argument("--margin-split", type=int, default=None,
                   help="matrix: high margin above this margin (default: the median)")
    p.add_argument("--top", type=int, default=20,
                   help="customer views: customers listed in a table (default 20)")
    p.add_argument("--chart", default="",
                   help="customer views: also draw the view to this PNG or SVG file")
    p.add_argument("--method", choices=["published", "runoff"], default="runoff",
                   help="ifrs15: expected redemptions published by finance (--expected-bps) "
                        "or estimated from the cohorts' own run-off (default)")
    p.add_argument("--expected-bps", type=int, default=10_000,
                   help="ifrs15 --method published: expected redemption rate, basis points, "
                        "from each program's first cohort")
    p.add_argument("--estimate", action="append", default=[], metavar="YYYY-MM=BPS",
                   help="ifrs15 --method published: a revised rate from that month on "
                        "(repeatable)")
    p.add_argument("--as-of", default="",
                   help="liability, ifrs15: YYYY-MM-DD, UTC (default: today)")
    p.add_argument("--from", dest="from_day", default="",
                   help="rollforward, breakage, campaigns: first UTC day YYYY-MM-DD (default: "
                        "the first of --to's month)")
    p.add_argument("--to", default="",
                   help="rollforward, breakage, campaigns: last UTC day YYYY-MM-DD (default: "
                        "today)")
    p.add_argument("--database", help=database_help)
    p.add_argument("--period", type=int, default=0,
                   help="period id (default: the last closed one, else the open one)")
    p.add_argument("--entity", default="", help="only this entity's statement or report")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=cmd_report)

    p = sub("demo", "Run a self-contained demo: a server on a temporary SQLite file, a small "
            "alliance, simulated POS traffic over real gRPC, and a summary table.",
            "loyalty-ledger demo --seconds 5")
    p.add_argument("--seconds", type=float, default=5.0, help="traffic duration (default 5)")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    p.add_argument("--cards", type=int, default=200, help="cards issued (default 200)")
    p.add_argument("--report", default="loyalty-report.html",
                   help="write the report page (report html) of the demo's database here at "
                        "the end (default %(default)s; '' = none)")
    p.set_defaults(func=cmd_demo)

    p = sub("bench", "Measure the server against baselines on this machine (see README).",
            "loyalty-ledger bench --seconds 8 --database postgresql://postgres@127.0.0.1/bench")
    p.add_argument("--database", help="PostgreSQL URL of a scratch database (recreated)")
    p.add_argument("--seconds", type=float, default=8.0, help="seconds per measurement")
    p.add_argument("--only", default="", help="comma-separated subset of: a,b,c,d,e,f")
    p.add_argument("--json", default="", help="also write the results to this JSON file")
    p.add_argument("--no-projector", dest="projector", action="store_false",
                   help="(b), (c), (f): the server without its read-model follower, to "
                        "measure what following the log live costs the POS path")
    p.add_argument("--workers", type=int, default=1,
                   help="(b), (c), (f): the server as this many processes (serve --workers)")
    p.add_argument("--fronts", type=int, default=0,
                   help="(b), (c), (f): serve --fronts F (processes that only terminate gRPC)")
    p.add_argument("--projector-nice", type=int, default=None,
                   help="(b), (c), (f): serve --projector-nice N (default: serve's)")
    p.add_argument("--no-routing", dest="routing", action="store_false",
                   help="(b), (c), (f): serve --no-routing (no partition owners)")
    p.add_argument("--split", action="store_true",
                   help="(b), (c), (f): init --split: the log in one lane per card partition")
    p.add_argument("--place", action="append", default=[], metavar="FIRST-LAST=URL",
                   help="with --split: init --place (partitions on another server; its "
                        "database is dropped and made again)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    ns = build_parser().parse_args(argv)
    for option in ("nice", "projector_nice"):
        if (getattr(ns, option, 0) or 0) < 0:
            print(f"loyalty-ledger: --{option.replace('_', '-')} must be 0 or more",
                  file=sys.stderr)
            return 2
    if getattr(ns, "fronts", 0) < 0:
        print("loyalty-ledger: --fronts must be 0 or more", file=sys.stderr)
        return 2
    if getattr(ns, "workers", 1) < 1:
        print("loyalty-ledger: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        return int(ns.func(ns))
    except ConfigError as error:
        print(f"loyalty-ledger: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
