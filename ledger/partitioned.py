"""The split layout (issue 14): the log in one lane per card partition, each a schema of its
own (`ledger_p00` ... : the recorders' events table with its own lock and notification ids, the
request keys, the snapshots) on the PostgreSQL server the placement names, plus the global
lane (the registry) in the database the ledger is opened with, where the read models, the
leases and the placement itself live.

- Placement: `ledger_placement(partition, url, schema)` in the global database, written once by
  `loyalty-ledger init --split [--place FIRST-LAST=URL ...]` and read by every process, so a
  card never moves. A URL is stored without its password; the global URL's password is used
  for every server (one set of credentials per deployment).
- Lanes: 0 is the global log, 1 + p is partition p. A card's stream is in lane
  1 + stream_id.int % count (ledger/ownership.py's partition), the registry in lane 0.
- Writing: `append` sends each lane's rows to its schema; lanes on one server go in ONE
  transaction (each lane's table locked in lane order, so two writers never deadlock), servers
  one after the other in a fixed order (the global server first). A request's key goes to the
  lane of its events on the server committed last, so a request whose rows span two servers
  (ReplaceCard between partitions placed apart) has no key until both are durable: a failure
  between the two commits is decided again (ledger/handlers/cards.py completes the half that
  exists). A request whose rows are on one server is atomic, as before.
- A partial failure (one server committed, the next failed) raises like a failed commit: the
  engine re-decides the group, and every request whose rows were committed is found by its
  request key (replayed), the others decided again.
- Reading: followers read lane by lane with a position each (`read_lane`, `lane_head`,
  `heads()` for a cut); `read_log` and `changes_after`, which assume one order, refuse, and
  `max_notification_id` is the sum of the heads (it grows with every commit, and is no
  position).
"""

from __future__ import annotations

import contextlib
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from eventsourcing import persistence as es
from eventsourcing.persistence import StoredEvent
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Literal

from ledger.codec import NAMESPACE, REGISTRY_ID
from ledger.store import (
    Append,
    Change,
    ConfigError,
    EventStore,
    KeyRow,
    LogRow,
    PostgresStore,
    Session,
    StoreError,
    Tail,
    _ms,
    _once,
    _translate,
    redact,
)

PLACEMENT_DDL = ("CREATE TABLE IF NOT EXISTS ledger_placement (partition integer PRIMARY KEY, "
                 "url text NOT NULL, schema text NOT NULL)")
# Requests whose rows span two servers, from just before their first commit until both are
# durable (ledger/engine.py): what a process that died in between left is sent again by the
# next one to start, and completes (ledger/handlers/cards.py: ReplaceCard).
SAGAS_DDL = ("CREATE TABLE IF NOT EXISTS ledger_sagas (key_space text NOT NULL, "
             "request_id text NOT NULL, request bytea NOT NULL, "
             "recorded_at timestamptz NOT NULL DEFAULT now(), "
             "PRIMARY KEY (key_space, request_id))")


def marks_stream(lane: int, count: int) -> uuid.UUID:
    """The stream of a card lane's settlement period marks: the first uuid5 of
    "period-marks/LANE/k" that falls in that lane (so `lane_of` needs no special case)."""
    k = 0
    while True:
        stream = uuid.uuid5(NAMESPACE, f"period-marks/{lane}/{k}")
        if 1 + stream.int % count == lane:
            return stream
        k += 1


def schema_of(partition: int) -> str:
    return f"ledger_p{partition:02d}"


def without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def with_password(url: str, like: str) -> str:
    """`url` with the password of `like` (the global URL), if it has none of its own."""
    password = urllib.parse.urlsplit(like).password
    parts = urllib.parse.urlsplit(url)
    if password is None or parts.password is not None:
        return url
    netloc = (f"{parts.username or 'postgres'}:{password}@"  # as written in `like`: quoted
              f"{parts.hostname}" + (f":{parts.port}" if parts.port else ""))
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def server_of(url: str) -> tuple[str, int, str]:
    parts = urllib.parse.urlsplit(url)
    return (parts.hostname or "", parts.port or 5432, parts.path.lstrip("/"))


def parse_places(places: Sequence[str], count: int, default_url: str) -> list[str]:
    """`--place SPANS=URL` options (SPANS: `P`, `FIRST-LAST`, or several joined by commas,
    e.g. `8-15` or `1,3,5,7`) as the URL of every partition."""
    urls = [default_url] * count
    for place in places:
        spans, sep, url = place.partition("=")
        placed: list[int] = []
        for span in spans.split(","):
            first, dash, last = span.partition("-")
            try:
                low, high = int(first), int(last if dash else first)
            except ValueError:
                raise ConfigError(f"--place {place!r}: expected FIRST-LAST=URL, e.g. "
                                  "8-15=postgresql://postgres@127.0.0.1:5433/ledger") from None
            if not 0 <= low <= high < count:
                raise ConfigError(f"--place {place!r}: partitions are 0..{count - 1}")
            placed += range(low, high + 1)
        if not sep or not url:
            raise ConfigError(f"--place {place!r}: needs a URL after '='")
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("postgresql", "postgres"):
            raise ConfigError(f"--place {place!r}: the split layout is PostgreSQL only")
        for partition in placed:
            urls[partition] = url
    return urls


def create_split(global_store: PostgresStore, count: int, urls: Sequence[str]) -> None:
    """`init --split`: each partition's schema on its server, then the placement (and the
    partition count) in the global database. Refused if a placement is recorded already and
    differs (a card never moves)."""
    assert len(urls) == count
    with global_store.session(commit=True) as session:
        session.execute(PLACEMENT_DDL)
        session.execute(SAGAS_DDL)
        session.execute("CREATE TABLE IF NOT EXISTS ledger_partitioning (singleton boolean "
                        "PRIMARY KEY DEFAULT true CHECK (singleton), count integer NOT NULL)")
        recorded = session.query("SELECT partition, url, schema FROM ledger_placement "
                                 "ORDER BY partition")
        counted = session.query("SELECT count FROM ledger_partitioning")
    wanted = [(p, without_password(url), schema_of(p)) for p, url in enumerate(urls)]
    if recorded and [tuple(row) for row in recorded] != wanted:
        raise ConfigError(f"database {global_store.url} already has another placement of its "
                          "partitions; a card never moves (see `loyalty-ledger partitions`)")
    if counted and int(counted[0][0]) != count:
        raise ConfigError(f"database {global_store.url} records {counted[0][0]} partitions, "
                          f"not {count}")
    split = PartitionedStore(global_store, [with_password(u, _url(global_store)) for u in urls],
                             owns_global=False)
    try:
        for part in split.parts:
            part.create_schema()
    finally:
        split.close()
    with global_store.session(commit=True) as session:
        session.executemany("INSERT INTO ledger_placement (partition, url, schema) VALUES "
                            "(?, ?, ?) ON CONFLICT (partition) DO NOTHING", wanted)
        session.execute("INSERT INTO ledger_partitioning (count) VALUES (?) "
                        "ON CONFLICT DO NOTHING", (count,))


def _url(store: PostgresStore) -> str:
    c = store.connect_params or {}
    password = c.get("password") or ""
    auth = c.get("user", "postgres") + (
        ":" + urllib.parse.quote(password, safe="") if password else "")
    return f"postgresql://{auth}@{c.get('host')}:{c.get('port')}/{c.get('dbname')}"


def open_split(global_store: PostgresStore) -> PartitionedStore | None:
    """The split store when the database records a placement, else None (one log)."""
    try:
        with global_store.session(commit=False) as session:
            found = session.query("SELECT to_regclass('ledger_placement') IS NOT NULL")
            if not found or not found[0][0]:
                return None
            rows = session.query("SELECT partition, url FROM ledger_placement "
                                 "ORDER BY partition")
    except StoreError:
        return None  # the database is away: the caller meets it again and says so
    if not rows:
        return None
    if [int(p) for p, _ in rows] != list(range(len(rows))):
        raise ConfigError(f"database {global_store.url}: ledger_placement is not 0..n-1")
    like = _url(global_store)
    return PartitionedStore(global_store, [with_password(str(url), like) for _, url in rows])


class PartitionedStore(EventStore):
    """The EventStore of the split layout (see the module's docstring)."""

    split = True

    def __init__(self, global_store: PostgresStore, urls: Sequence[str], *,
                 owns_global: bool = True) -> None:
        self.global_store = global_store
        self.url = global_store.url
        self.count = len(urls)
        self._owns_global = owns_global
        pools: dict[tuple[str, int, str], PostgresStore] = {
            server_of(_url(global_store)): global_store}
        self.parts: list[PostgresStore] = []
        try:
            for partition, url in enumerate(urls):
                server = server_of(url)
                shared = pools.get(server)
                part = PostgresStore(url, schema=schema_of(partition), shared=shared)
                if shared is None:
                    pools[server] = part
                self.parts.append(part)
        except BaseException:
            for part in self.parts:
                part.close()
            raise
        self.placement = [redact(url) for url in urls]
        # Servers in commit order: the global one first, then as placed.
        self._servers = list(pools.values())
        self._server_rank = {id(store.datastore.pool): rank
                             for rank, store in enumerate(self._servers)}
        self._lanes: list[PostgresStore] = [global_store, *self.parts]
        self._marks: dict[int, uuid.UUID] = {}
        # One writer: every lane's NOTIFY carries the same token, so this process's watches
        # (one per server: its lanes share the channel) never take its own commits for
        # another process's.
        for part in self.parts:
            part.writer_token = global_store.writer_token
            part.events.set_writer(global_store.writer_token)
        self._one_server = len(self._servers) == 1

    # ------------------------------------------------------------------------ lanes

    def lanes(self) -> list[int]:
        return list(range(self.count + 1))

    def lane_of(self, stream_id: uuid.UUID) -> int:
        return 0 if stream_id == REGISTRY_ID else 1 + stream_id.int % self.count

    def marks_stream(self, lane: int) -> uuid.UUID:
        found = self._marks.get(lane)
        if found is None:
            found = self._marks[lane] = marks_stream(lane, self.count)
        return found

    def lane_store(self, lane: int) -> PostgresStore:
        return self._lanes[lane]

    def server_rank(self, lane: int) -> int:
        return self._server_rank[id(self._lanes[lane].datastore.pool)]

    def read_lane(self, lane: int, start: int, limit: int) -> Sequence[LogRow]:
        return self._lanes[lane].read_log(start, limit)

    def lane_head(self, lane: int) -> int:
        return self._lanes[lane].max_notification_id()

    def lane_changes(self, lane: int, notification_id: int, limit: int) -> list[Change]:
        return self._lanes[lane].changes_after(notification_id, limit)

    # ------------------------------------------------------------------------ schema

    def create_schema(self) -> None:
        self.global_store.create_schema()
        for part in self.parts:
            part.create_schema()

    # ------------------------------------------------------------------------ sagas

    def spans_servers(self, lanes: Sequence[int]) -> bool:
        return not self._one_server and len({self.server_rank(lane) for lane in lanes}) > 1

    def begin_sagas(self, sagas: Sequence[tuple[str, str, bytes]]) -> None:
        """(key space, request id, the encoded request) of requests about to commit on two
        servers; kept until `end_sagas`."""
        with self.global_store.session(commit=True) as session:
            session.execute(SAGAS_DDL)  # a database split before sagas were kept
            session.executemany("INSERT INTO ledger_sagas (key_space, request_id, request) "
                                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING", sagas)

    def end_sagas(self, pairs: Sequence[tuple[str, str]]) -> None:
        with self.global_store.session(commit=True) as session:
            session.executemany("DELETE FROM ledger_sagas WHERE key_space = ? AND "
                                "request_id = ?", pairs)

    def pending_sagas(self) -> list[tuple[str, str, bytes]]:
        with self.global_store.session(commit=False) as session:
            if not session.query("SELECT to_regclass('ledger_sagas') IS NOT NULL")[0][0]:
                return []  # a database split before sagas were kept
            return [(str(k), str(r), bytes(b)) for k, r, b in session.query(
                "SELECT key_space, request_id, request FROM ledger_sagas "
                "ORDER BY recorded_at")]

    def check_schema(self) -> None:
        self.global_store.check_schema()
        for part in self.parts:
            part.check_schema()

    # ------------------------------------------------------------------------ writing

    def _split(self, events: Sequence[StoredEvent], keys: Sequence[KeyRow],
               snapshots: Sequence[StoredEvent],
               key_lanes: Sequence[tuple[int, ...]] | None
               ) -> dict[int, tuple[list[int], list[StoredEvent], list[KeyRow],
                                    list[StoredEvent]]]:
        """lane -> (positions of its events in `events`, events, keys, snapshots)."""
        lanes: dict[int, tuple[list[int], list[StoredEvent], list[KeyRow],
                               list[StoredEvent]]] = defaultdict(lambda: ([], [], [], []))
        lane_of = self.lane_of
        for index, event in enumerate(events):
            entry = lanes[lane_of(event.originator_id)]
            entry[0].append(index)
            entry[1].append(event)
        for snapshot in snapshots:
            lanes[lane_of(snapshot.originator_id)][3].append(snapshot)
        order = self._commit_order(key_lanes)
        every = range(len(self._lanes))
        for index, key in enumerate(keys):
            touched = key_lanes[index] if key_lanes is not None and index < len(key_lanes) \
                else None
            if touched == ():  # no rows and no card (a reversal's tombstone): every lane
                for lane in every:
                    lanes[lane][2].append(key)
                continue
            if not touched:
                lanes[0][2].append(key)
                continue
            if len(touched) == 1 or self._one_server:
                lanes[touched[-1]][2].append(key)
                continue
            lanes[max(touched, key=lambda t: (order[self.server_rank(t)], t))][2].append(key)
        return lanes

    def _commit_order(self, key_lanes: Sequence[tuple[int, ...]] | None) -> list[int]:
        """Each server's place in this append's commit order (by server rank): the global
        server first, then as placed; but where a request's rows span servers (ReplaceCard
        between partitions placed apart), the server of its first rows (the old card's: the
        handler writes them first) commits before the other, so a failure between the two
        commits can only leave the old card replaced and the new one missing, which nothing
        can spend (ledger/handlers/cards.py completes it on retry). The first such request
        of the append decides."""
        order = list(range(len(self._servers)))
        if self._one_server:
            return order
        for touched in key_lanes or ():
            ranks = list(dict.fromkeys(self.server_rank(lane) for lane in touched))
            if len(ranks) > 1:
                rest = [rank for rank in order if rank not in ranks]
                sequence = ranks + rest
                return [sequence.index(rank) for rank in range(len(self._servers))]
        return order

    def _append(self, events: Sequence[StoredEvent], keys: Sequence[KeyRow],
                snapshots: Sequence[StoredEvent],
                key_lanes: Sequence[tuple[int, ...]] | None = None) -> list[int]:
        lanes = self._split(events, keys, snapshots, key_lanes)
        ids = [0] * len(events)
        for server in self._order(lanes, key_lanes):
            with server.datastore.get_connection() as conn:
                self._write_server(conn, server, lanes, ids, locked=False)
        return ids

    def _write_server(self, conn: Any, server: PostgresStore, lanes: dict[int, Any],
                      ids: list[int], *, locked: bool) -> None:
        """`server`'s lanes of a split append (`_split`) in one transaction (the caller's
        when `locked`: a turn); their notification ids into `ids`."""
        mine = sorted(server_lanes(self, server, lanes))
        if not mine:
            return
        written = _write_lanes(conn, [(lane, self._lanes[lane], *lanes[lane][1:])
                                      for lane in mine], locked=locked)
        for lane, lane_ids in written.items():
            for index, notification_id in zip(lanes[lane][0], lane_ids, strict=True):
                ids[index] = notification_id

    def _order(self, lanes: dict[int, Any],
               key_lanes: Sequence[tuple[int, ...]] | None) -> list[PostgresStore]:
        order = self._commit_order(key_lanes)
        ranks = {self.server_rank(lane) for lane in lanes}
        return [self._servers[rank] for rank in sorted(ranks, key=lambda r: order[r])]

    @contextlib.contextmanager
    def _turn(self, wait_s: float) -> Iterator[Append]:
        """Every lane's lock, server by server in rank order and lane order within a server
        (as appends take them: no deadlock); on exit each server's transaction commits in
        the append's commit order (`_commit_order`: a request key with its last server)."""
        wait = SQL("SET LOCAL lock_timeout = {0}").format(Literal(f"{_ms(wait_s)}ms"))
        conns: list[Any] = []
        order = [list(range(len(self._servers)))]
        with contextlib.ExitStack() as stack:
            try:
                for server in self._servers:
                    conn = stack.enter_context(server.datastore.get_connection())
                    conn.execute("BEGIN")
                    conns.append(conn)
                    conn.execute(wait)
                    conn.execute(_lock_statement(
                        [lane for lane in self._lanes
                         if lane.datastore.pool is server.datastore.pool]))

                def write(events: Sequence[StoredEvent], keys: Sequence[KeyRow],
                          snapshots: Sequence[StoredEvent],
                          key_lanes: Sequence[tuple[int, ...]] | None = None) -> list[int]:
                    lanes = self._split(events, keys, snapshots, key_lanes)
                    order[0] = self._commit_order(key_lanes)
                    ids = [0] * len(events)
                    for server, conn in zip(self._servers, conns, strict=True):
                        self._write_server(conn, server, lanes, ids, locked=True)
                    return ids

                yield _once(write)
                for rank in sorted(range(len(conns)), key=lambda r: order[0][r]):
                    conns[rank].execute("COMMIT")
                conns.clear()
            finally:
                for conn in conns:  # not committed: an error, or a commit that failed
                    with contextlib.suppress(Exception):
                        conn.execute("ROLLBACK")

    # ------------------------------------------------------------------------ reading

    def _stream(self, originator_id: uuid.UUID, gt: int | None, lte: int | None,
                limit: int | None) -> Sequence[StoredEvent]:
        return self._lanes[self.lane_of(originator_id)]._stream(originator_id, gt, lte, limit)

    def _latest_snapshot(self, originator_id: uuid.UUID) -> StoredEvent | None:
        return self._lanes[self.lane_of(originator_id)]._latest_snapshot(originator_id)

    def _load_tails(self, ids: Sequence[uuid.UUID], snapshot_topic: str | None
                    ) -> Iterator[tuple[int, Tail]]:
        by_lane: dict[int, list[int]] = defaultdict(list)
        for position, stream_id in enumerate(ids):
            by_lane[self.lane_of(stream_id)].append(position)
        for lane, positions in by_lane.items():
            for index, tail in self._lanes[lane]._load_tails(
                    [ids[p] for p in positions], snapshot_topic):
                yield positions[index], tail

    def _existing_streams(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        by_lane: dict[int, list[uuid.UUID]] = defaultdict(list)
        for stream_id in ids:
            by_lane[self.lane_of(stream_id)].append(stream_id)
        found: set[uuid.UUID] = set()
        for lane, streams in by_lane.items():
            found |= self._lanes[lane]._existing_streams(streams)
        return found

    def _save_snapshot(self, snapshot: StoredEvent) -> None:
        self._lanes[self.lane_of(snapshot.originator_id)]._save_snapshot(snapshot)

    def _find_keys(self, pairs: Sequence[tuple[str, str]]) -> list[KeyRow]:
        """A key may be in any lane (its request's card decides): one query per server over
        all of its lanes' key tables."""
        spaces, ids = zip(*pairs, strict=True)
        found: list[KeyRow] = []
        for server in self._servers:
            tables = [lane.tables.keys for lane in self._lanes
                      if lane.datastore.pool is server.datastore.pool]
            union = " UNION ALL ".join(
                f"SELECT key_space, request_id, payload_hash, outcome FROM {table} WHERE "
                "(key_space, request_id) IN (SELECT * FROM unnest(%(s)s::text[], %(i)s::text[]))"
                for table in tables)
            with server.datastore.get_connection() as conn, \
                    conn.cursor(row_factory=tuple_row) as c:
                c.execute(union, {"s": list(spaces), "i": list(ids)})
                found += [KeyRow(r[0], r[1], bytes(r[2]), bytes(r[3])) for r in c.fetchall()]
        return found

    def _prune_keys(self, cutoff_us: int, limit: int) -> int:
        pruned = 0
        for lane in self._lanes:
            if pruned >= limit:
                break
            pruned += lane._prune_keys(cutoff_us, limit - pruned)
        return pruned

    def _changes_after(self, notification_id: int, limit: int) -> list[Change]:
        raise StoreError("the split log has no single order: follow it lane by lane "
                         "(lane_changes)")

    def _max_notification_id(self) -> int:
        """The sum of the lanes' heads: it grows with every commit and only then (a
        watermark for "was anything written"), but it is no position: the split log has no
        single order (`heads()` is a cut, `read_lane` reads one lane)."""
        return sum(self.heads().values())

    def _read_log(self, start: int, limit: int) -> Sequence[LogRow]:
        raise StoreError("the split log has no single order: read it lane by lane "
                         "(read_lane)")

    def position_of(self, originator_id: uuid.UUID, version: int) -> int:
        lane = self._lanes[self.lane_of(originator_id)]
        try:
            with (lane.datastore.get_connection() as conn,
                  conn.cursor(row_factory=tuple_row) as c):
                c.execute(f"SELECT notification_id FROM {lane.tables.events} WHERE "
                          "originator_id = %s AND originator_version = %s",
                          (originator_id, version))
                row = c.fetchone()
        except es.PersistenceError as error:  # as the base class's reads: a StoreError
            raise _translate(error) from error
        except psycopg.Error as error:
            raise _translate(error) from error
        return int(row[0]) if row else 0

    def _session(self, commit: bool) -> contextlib.AbstractContextManager[Session]:
        return self.global_store._session(commit)

    @property
    def connect_params(self) -> dict[str, Any] | None:
        return self.global_store.connect_params

    def others_may_have_written(self) -> bool:
        return self.foreign_lanes() != set()

    def foreign_lanes(self) -> set[int] | None:
        """One watch per server (its lanes share the channel); a commit's NOTIFY names the
        lanes it wrote (`_write_lanes`), so the writer reads only those."""
        found: set[int] | None = set()
        for server in self._servers:
            lanes = server.watch().foreign_lanes()
            if lanes is None or found is None:
                found = None
            else:
                found |= lanes
        return found

    def close(self) -> None:
        for part in self.parts:
            part.close()
        if self._owns_global:
            self.global_store.close()


def server_lanes(store: PartitionedStore, server: PostgresStore,
                 lanes: dict[int, Any]) -> list[int]:
    pool = server.datastore.pool
    return [lane for lane in lanes if store.lane_store(lane).datastore.pool is pool]


def _lock_statement(stores: Sequence[PostgresStore]) -> bytes:
    """One LOCK of these lanes' events tables, in the order given (lane order: the order
    every writer takes them in, so no two deadlock)."""
    return ("LOCK TABLE " + ", ".join(
        store.tables.events if store.schema else f"public.{store.tables.events}"
        for store in stores) + " IN EXCLUSIVE MODE").encode()


def _write_lanes(conn: Any, lanes: Sequence[tuple[int, PostgresStore, list[StoredEvent],
                                                  list[KeyRow], list[StoredEvent]]],
                 *, locked: bool) -> dict[int, list[int]]:
    """Several lanes of one server in one transaction (the caller's when `locked`: a turn),
    pipelined: one round trip."""
    cursors: list[tuple[int, Any]] = []
    with contextlib.ExitStack() as stack:
        others = stack.enter_context(conn.cursor())
        with conn.pipeline() as pipeline:
            try:
                writing = [lane for lane, _, events, _, _ in lanes if events]
                if writing:  # the lock timeout, every written lane's table in one LOCK
                    first = lanes[0][1].events._rendered(conn)  # (lane order), one NOTIFY
                    if not locked:
                        others.execute(b"BEGIN")
                        others.execute(first.prelude[0])
                        others.execute(_lock_statement(
                            [lane for _, lane, events, _, _ in lanes if events]))
                    written = ",".join(str(lane) for lane, _, events, _, _ in lanes if events)
                    # NOTIFY channel, 'TOKEN:LANE,LANE': the others' watches read those only
                    others.execute(first.notify[:-1] + f":{written}'".encode())
                elif not locked:
                    others.execute(b"BEGIN")
                for lane, store, events, keys, snapshots in lanes:
                    cursor = stack.enter_context(conn.cursor(row_factory=tuple_row))
                    cursors.append((lane, cursor if events else None))
                    sql = store.events._rendered(conn)
                    store.events.send_lane(cursor, others, sql, events, keys, snapshots,
                                           locked=True, notify=False)
                if not locked:
                    others.execute(b"COMMIT")
            except Exception:
                with contextlib.suppress(psycopg.Error):
                    pipeline.sync()
                raise
        return {lane: [row[0] for row in cursor.fetchall()]
                for lane, cursor in cursors if cursor is not None}
