"""Card partitions and the process that owns each (issue 14).

A card belongs to partition `stream_id.int % count`; the count is recorded in the database on
first use (`ledger_partitioning`) and read back by every later process, so a card never moves.
A partition is owned by the process holding a session advisory lock on it (PostgreSQL: the
lease dies with the owner's connection, so kill -9 of the owner frees it at once); the owner
writes its address beside it (`ledger_partition_owners`), and a row counts only while its
backend holds the lock (joined with `pg_locks`), so a stale row is never routed to.

Each process has preferred partitions (`serve --workers N`: worker k prefers p % N == k) and
takes them as soon as they are free; once it has run for `limits.LEASE_STARTUP_S` (time for
the other workers to start) it takes any other partition that has had no owner for
`limits.LEASE_TAKEOVER_S`, so a dead owner's cards find a new one within seconds. While
worker k runs it holds a member lock (MEMBER_CLASS, k); a process that took over worker k's
partitions gives them back when it sees that lock held again (`serve --workers N` starts a
new worker k when one dies). Ownership
is an optimisation of who decides, never a condition of correctness: a request that reaches a
process which does not own its card, with no live owner to route it to, is decided there as
before partitions (the log's (stream, version) key and the request keys keep it exactly once).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import psycopg
import psycopg.errors

from ledger import limits
from ledger.codec import card_stream_id
from ledger.store import ConfigError

log = logging.getLogger("ledger.ownership")

# The advisory lock space of partition leases: pg_advisory_lock(LEASE_CLASS, partition); and
# of running workers of `serve --workers N`: pg_advisory_lock(MEMBER_CLASS, worker index).
LEASE_CLASS = 0x4C4C  # "LL"
MEMBER_CLASS = 0x4C4D

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger_partitioning ("
    " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), count integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_partition_owners ("
    " partition integer PRIMARY KEY, address text NOT NULL, backend_pid integer NOT NULL,"
    " since_us bigint NOT NULL)",
)
_LIVE_HOLDERS = (
    "SELECT objid::bigint::integer, pid FROM pg_locks WHERE locktype = 'advisory' "
    "AND classid = %s::bigint::oid AND objsubid = 2 AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
_ROUTES = (
    "SELECT o.partition, o.address, o.since_us FROM ledger_partition_owners o JOIN pg_locks l "
    "ON l.locktype = 'advisory' AND l.classid = %s::bigint::oid "
    "AND l.objid = o.partition::bigint::oid AND l.objsubid = 2 AND l.granted "
    "AND l.pid = o.backend_pid "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")


class Lease(NamedTuple):
    partition: int
    address: str  # "" when nobody owns it
    since_us: int


def leases(connect: dict[str, Any]) -> list[Lease]:
    """Every partition and its live owner, for operators (`loyalty-ledger partitions`)."""
    with psycopg.connect(**connect, autocommit=True) as conn:
        count = recorded_count(conn)
        live = {int(p): (str(address), int(since))
                for p, address, since in conn.execute(_ROUTES, (LEASE_CLASS,))}
    return [Lease(p, *live.get(p, ("", 0))) for p in range(count)]


def _routes(conn: psycopg.Connection[Any]) -> dict[int, str]:
    """Partition -> the address of its live owner."""
    return {int(p): str(address) for p, address, _ in conn.execute(_ROUTES, (LEASE_CLASS,))}


def partition_of_stream(stream_id: uuid.UUID, count: int) -> int:
    return stream_id.int % count


def partition_of_card(card_number: str, count: int) -> int:
    return card_stream_id(card_number).int % count


def recorded_count(conn: psycopg.Connection[Any], wanted: int = limits.PARTITIONS) -> int:
    """The database's partition count: `wanted` if none is recorded yet, else the one that
    is (a card never moves, so a later process cannot change it)."""
    for statement in _SCHEMA:  # on an autocommit connection
        # two processes creating it at once: one of them raises, and it is there
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            conn.execute(statement)
    conn.execute("INSERT INTO ledger_partitioning (count) VALUES (%s) ON CONFLICT DO NOTHING",
                 (wanted,))
    row = conn.execute("SELECT count FROM ledger_partitioning").fetchone()
    assert row is not None
    return int(row[0])


START_ATTEMPTS = 5  # first lease passes before a process refuses to start


class Ownership:
    """This process's leases on card partitions, and where every other live owner listens."""

    def __init__(self, connect: dict[str, Any], address: str, worker: tuple[int, int] = (0, 1),
                 *, owner: bool = True,
                 poll_s: float = limits.LEASE_POLL_S,
                 takeover_s: float = limits.LEASE_TAKEOVER_S,
                 startup_s: float = limits.LEASE_STARTUP_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._connect = connect
        self.address = address
        self._worker = worker  # (index, of): prefers the partitions p with p % of == index
        self._owner = owner  # False: a front process, which routes and never owns
        self._poll_s = poll_s
        self._takeover_s = takeover_s
        self._startup_s = startup_s
        self._started: float | None = None
        self._clock = clock
        self._conn: psycopg.Connection[Any] | None = None
        self._member = False  # holds the lock that says its worker index runs
        self.count = 0
        # Read without a lock by other threads: each is replaced whole, never changed in place.
        self.owned: frozenset[int] = frozenset()
        self.routes: dict[int, str] = {}
        self._free_since: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0  # for tests: lease passes done

    def start(self) -> Ownership:
        """Take the preferred partitions that are free now, then keep looking in a thread.
        A first pass that fails (several processes starting at once on a new database, a
        slow connection) is tried again a few times before the start is refused."""
        for attempt in range(START_ATTEMPTS):
            self.run_once()
            if self.count or self._stop.wait(0.2 * (attempt + 1)):
                break
        if self.count == 0:
            raise ConfigError("cannot reach the database for the card partition leases")
        self._thread = threading.Thread(target=self._run, name="ledger-ownership", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Give every lease back (closing the session frees them)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._drop()

    def owner(self, partition: int) -> str | None:
        """The address of the live process that owns `partition`; None when it is this one
        or when nobody does."""
        if partition in self.owned:
            return None
        return self.routes.get(partition)

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.run_once()

    def run_once(self) -> None:
        try:
            self._pass()
        except (psycopg.Error, OSError) as error:
            log.warning("partition leases: %s; holding none until the database is back",
                        str(error).strip().splitlines()[0] if str(error) else repr(error))
            self._drop()
        self.passes += 1

    def _pass(self) -> None:
        if self._conn is None:
            self._conn = psycopg.connect(**self._connect, autocommit=True)
            self.count = recorded_count(self._conn)
            self.owned = frozenset()
            self._member = False
        conn = self._conn
        index, of = self._worker
        if not self._owner:  # a front: where the owners are is all it needs
            self.routes = _routes(conn)
            return
        if of > 1 and not self._member:  # "worker `index` is running", while its session is
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                               (MEMBER_CLASS, index)).fetchone()
            self._member = bool(row and row[0])
        held = {int(p): int(pid) for p, pid in conn.execute(_LIVE_HOLDERS, (LEASE_CLASS,))}
        if of > 1:
            self._hand_back(conn, held)
        now = self._clock()
        if self._started is None:
            self._started = now
        settled = now - self._started >= self._startup_s  # the other workers have started
        taken = set(self.owned)
        for partition in range(self.count):
            if partition in taken:
                continue
            if partition in held:
                self._free_since.pop(partition, None)
                continue
            free_since = self._free_since.setdefault(partition, now)
            preferred = partition % self._worker[1] == self._worker[0]
            if not preferred and (not settled or now - free_since < self._takeover_s):
                continue
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                               (LEASE_CLASS, partition)).fetchone()
            if row is not None and row[0]:
                taken.add(partition)
                self._free_since.pop(partition, None)
                conn.execute(
                    "INSERT INTO ledger_partition_owners (partition, address, backend_pid, "
                    "since_us) VALUES (%s, %s, pg_backend_pid(), %s) ON CONFLICT (partition) "
                    "DO UPDATE SET address = excluded.address, "
                    "backend_pid = excluded.backend_pid, since_us = excluded.since_us",
                    (partition, self.address, time.time_ns() // 1000))
                if not preferred:
                    log.warning("took over card partition %d (its owner was gone for %.1f s)",
                                partition, now - free_since)
        self.owned = frozenset(taken)
        self.routes = _routes(conn)

    def _hand_back(self, conn: psycopg.Connection[Any], held: dict[int, int]) -> None:
        """Give a partition taken over back once the worker that prefers it runs again."""
        index, of = self._worker
        foreign = [p for p in self.owned if p % of != index]
        if not foreign:
            return
        mine = conn.execute("SELECT pg_backend_pid()").fetchone()
        running = {int(worker) for worker, pid in conn.execute(_LIVE_HOLDERS, (MEMBER_CLASS,))
                   if mine is None or pid != mine[0]}
        back = [p for p in foreign if p % of in running]
        for partition in back:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LEASE_CLASS, partition))
            held.pop(partition, None)
            log.warning("handed card partition %d back to worker %d", partition, partition % of)
        self.owned = self.owned - set(back)

    def _drop(self) -> None:
        self.owned = frozenset()
        self.routes = {}
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                self._conn.close()
            self._conn = None
