"""The projection runner: follows the log from a recorded position and keeps a read model's
rows and that position in the same transaction, so a read model is exactly once, resumable
and rebuildable on either store.

- Position: `projection_positions(name, log_partition, position)`, the notification id of the
  last log row the read model has applied, per lane of the log (`EventStore.lanes`): one row
  (lane 0) for one log; with the log split by card partition (ledger/partitioned.py) one row
  per lane, each lane applied in its own order. A catch-up takes a cut first (every card
  lane's head), then applies the registry's lane to its head (so whatever a card row of the
  cut depends on, a program or an agreement, is applied before it), then each card lane to
  the cut. A batch holds rows of one lane; read models that need a card row's place among
  others use its lane's marks (projections/settlement.py).
- A batch: the runner reads up to `PROJECTION_BATCH_ROWS` log rows after the position (no
  transaction held; `CATCHUP_BATCH_ROWS` while it is more than a batch behind its target, so
  a catch-up or rebuild writes each card's sums once per 20,000 rows, not per 2,000), lets
  the read model work out its rows (it may read its own tables), then opens ONE short
  transaction that first moves the position from the value it read to the batch's last id
  (`UPDATE ... WHERE position = old`) and then writes the rows. If the update finds another
  position (another process or runner applied the batch first), the transaction
  is rolled back and the runner reads again from the new position. So rows and position never
  disagree, a crash at any point leaves the previous batch's state, and nothing is applied
  twice. Python work happens outside the transaction (PostgreSQL's idle-in-transaction
  timeout is 5 s on these connections).
- Gaps: notification ids have holes (a rolled-back or conflicting append takes an id from the
  sequence and never commits it). The runner reads "ids above the position, in order", so
  holes are simply skipped; it never waits for them. That is safe because an id is never
  committed after a higher one: appends hold the events table's lock until they commit on
  PostgreSQL, and SQLite has one writer at a time.
- Rebuild: `rebuild()` drops the read model's tables and its position row and applies the log
  from the start again.
"""

from __future__ import annotations

import concurrent.futures
import gc
import heapq
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import msgspec

from domain.common import Meta
from ledger import limits
from ledger.store import EventStore, LogRow, Session

LOG_PARTITION = 0  # the log is one partition until it is split by card (roadmap, stage 5)
# Rows per batch while more than a batch behind (a catch-up, a rebuild): the sums of a card or
# a day are written once per batch, and a batch's fixed costs (its statements, its commit,
# the model's look-ups) are paid a tenth as often. ~10 MB of rows a batch (two at a time: the
# next is read while one is worked; a SharedLog keeps up to four).
CATCHUP_BATCH_ROWS = 20_000
DDL_LOCK = 0x70726F6A  # PostgreSQL advisory lock taken while projections create their tables

POSITIONS_DDL = ("CREATE TABLE IF NOT EXISTS projection_positions (name TEXT NOT NULL, "
                 "log_partition INTEGER NOT NULL, position BIGINT NOT NULL, "
                 "PRIMARY KEY (name, log_partition))")


class ReadModel(Protocol):
    """What the runner needs from a read model. `prepare` may read the model's own tables
    (outside any transaction) and returns what `write` puts in the transaction."""

    name: str

    def create(self, session: Session) -> None:
        """CREATE TABLE IF NOT EXISTS ... for every table of the model."""

    def drop(self, session: Session) -> None: ...

    def prepare(self, store: EventStore, rows: Sequence[LogRow]) -> Any:
        """May raise PositionMoved when what it reads of its tables is already past `rows`
        (another runner committed since the position was read)."""

    def write(self, session: Session, prepared: Any) -> None: ...


def log_rows(store: EventStore, topics: frozenset[str] | None = None,
             page_rows: int = 10_000, *, first: int = 1,
             last: int | None = None, lane: int | None = None,
             by_time: bool = False) -> Iterator[LogRow]:
    """The log in its order from position `first` (to `last` when given), a page at a time
    (for reports and audits that scan it once rather than keep a read model); only the rows
    of `topics` when given.

    Lanes (ledger/partitioned.py): `lane` reads that lane alone (`first`/`last` are its own
    notification ids). Otherwise every lane, each to its end, the registry's (0) first, so a
    card row comes after whatever of the registry it depends on; `first`/`last` then only
    make sense on one log (a split log has no positions across lanes: ValueError). With
    `by_time` the split lanes are merged by the time each row was recorded (ties: lane 0
    first, then lane order), for one-pass reports whose facts cross card lanes (a purchase on
    a card, its return on the replacement card in another lane). On one log every way reads
    the same rows in the same order."""
    if lane is not None:
        yield from _lane_rows(store, lane, topics, page_rows, first, last)
        return
    lanes = store.lanes()
    if len(lanes) > 1 and (first != 1 or last is not None):
        raise ValueError("the split log has no positions across lanes: read a lane "
                         "(lane=) from and to its own notification ids")
    if len(lanes) > 1 and by_time:
        yield from heapq.merge(*(_lane_rows(store, one, topics, page_rows, 1, None)
                                 for one in lanes), key=recorded_at_us)
        return
    for one in lanes:
        yield from _lane_rows(store, one, topics, page_rows, first, last)


def _lane_rows(store: EventStore, lane: int, topics: frozenset[str] | None, page_rows: int,
               first: int, last: int | None) -> Iterator[LogRow]:
    position = first
    while page := store.read_lane(lane, position, page_rows):
        for row in page:
            if last is not None and row.id > last:
                return
            if topics is None or row.topic in topics:
                yield row
        position = page[-1].id + 1


# Every event is stored as [tag, meta, ...] (array-like), meta as Meta's fields in order:
# only `recorded_at_us` is decoded to merge lanes by time, the rest passed over.
_META_NAMES = [f.name for f in msgspec.structs.fields(Meta)]
_TimeMeta = msgspec.defstruct(
    "TimeMeta", [(name, msgspec.Raw) for name in _META_NAMES[:_META_NAMES.index(
        "recorded_at_us")]] + [("recorded_at_us", int)], array_like=True, frozen=True,
    gc=False)
_TimeHead = msgspec.defstruct("TimeHead", [("tag", msgspec.Raw), ("meta", _TimeMeta)],
                              array_like=True, frozen=True, gc=False)
_time_head = msgspec.msgpack.Decoder(_TimeHead).decode


def recorded_at_us(row: LogRow) -> int:
    """When a log row was recorded (its meta's `recorded_at_us`); 0 if it does not decode
    (a row the caller's own decoding then reports)."""
    try:
        return int(_time_head(row.state).meta.recorded_at_us)  # type: ignore[attr-defined]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return 0


def bulk(session: Session, head: str, types: Sequence[str], rows: Sequence[Sequence[Any]],
         tail: str = "") -> None:
    """`head` (an INSERT naming its columns) for every row in one statement on PostgreSQL
    (unnest of one array per column: a batch touches a thousand cards or more, and a
    statement per row costs ~20 us in the driver), executemany on SQLite (a C loop)."""
    if not rows:
        return
    if session.dialect == "sqlite":
        session.executemany(f"{head} VALUES ({', '.join('?' * len(types))}) {tail}", rows)
        return
    marks, columns = arrays(types, rows)
    session.execute(f"{head} SELECT * FROM unnest({marks}) {tail}", columns)


def arrays(types: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """One array per column of `rows` for unnest (PostgreSQL): the placeholders and their
    values. A column of integers, byte strings or plain text goes as one array literal joined
    in C (`{1,2,3}`, `{"\\\\x00ff",...}`, `{"a","b"}`; the server parses it); a column of another
    type, or whose text holds a quote or a backslash, goes as a list, which the driver dumps
    element by element in Python (~0.5 us each: a batch has tens of thousands)."""
    marks: list[str] = []
    values: list[Any] = []
    for kind, column in zip(types, zip(*rows, strict=True), strict=True):
        if kind == "bigint":
            values.append("{" + ",".join(map(str, column)) + "}")
        elif kind == "bytea":
            values.append('{"\\\\x' + '","\\\\x'.join(map(bytes.hex, column)) + '"}')
        elif kind == "text" and all(type(v) is str for v in column) and not (
                '\\' in (joined := '","'.join(column))
                or joined.count('"') != 2 * (len(column) - 1)):
            values.append('{"' + joined + '"}')
        else:  # another type, or text to escape: element by element in the driver
            marks.append(f"%b::{kind}[]")
            values.append(list(column))
            continue
        marks.append(f"%s::{kind}[]")
    return ", ".join(marks), values


class SharedLog:
    """The log as several runners in one process read it: a full batch (`limit` rows) read by
    one runner is kept for the others, which follow at the same positions, so the projector
    reads and builds each row once, not once per read model. A short read (the log's end) is
    never kept: rows may still be committed after it. Thread-safe. Per lane of the log."""

    KEPT = 4  # full batches kept: the runners are at most a few batches apart

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._batches: dict[tuple[int, int, int], Sequence[LogRow]] = {}
        self.reads = 0  # database reads (tests and measurements)

    def read_log(self, start: int, limit: int) -> Sequence[LogRow]:
        return self.read_lane(0, start, limit)

    def read_lane(self, lane: int, start: int, limit: int) -> Sequence[LogRow]:
        with self._lock:
            kept = self._batches.get((lane, start, limit))
        if kept is not None:
            return kept
        rows = self.store.read_lane(lane, start, limit)
        self.reads += 1
        if len(rows) == limit:
            with self._lock:
                self._batches[(lane, start, limit)] = rows
                while len(self._batches) > self.KEPT:
                    del self._batches[next(iter(self._batches))]
        return rows


class PositionMoved(Exception):
    """Another runner applied a batch since this one read the position: read again."""


class ProjectionRunner:
    """Keeps one read model up to date with the log. Thread-safe: `catch_up` may be called
    from any thread (readers that need the model current) while `start` runs a follower
    thread; several processes may run it on one database (the position decides)."""

    def __init__(self, store: EventStore, model: ReadModel,
                 batch_rows: int | None = None,
                 log: SharedLog | None = None, catchup_rows: int | None = None) -> None:
        self.store = store
        self.log = log or store  # where batches are read: the store, or a SharedLog
        self.model = model
        self.batch_rows = batch_rows or limits.PROJECTION_BATCH_ROWS
        # Batches while far behind: CATCHUP_BATCH_ROWS unless the caller chose a batch size.
        self.catchup_rows = max(self.batch_rows, catchup_rows or (
            CATCHUP_BATCH_ROWS if batch_rows is None else self.batch_rows))
        self._lock = threading.Lock()  # one batch at a time in this process
        self._positions: dict[int, int] = {}  # per lane, cached; absent until read
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches_applied = 0
        self.batches_lost = 0  # batches another runner applied first
        self._created = False  # tables made on first use: a server starts with the database away

    def _create(self) -> None:
        if self._created:
            return
        with self.store.session(commit=True) as session:
            if session.dialect == "postgres":  # two processes starting at once: CREATE TABLE
                session.query("SELECT pg_advisory_xact_lock(?)", (DDL_LOCK,))  # IF NOT EXISTS races
            session.execute(POSITIONS_DDL)
            self.model.create(session)
            for lane in self.store.lanes():
                session.execute("INSERT INTO projection_positions (name, log_partition, "
                                "position) VALUES (?, ?, 0) ON CONFLICT (name, log_partition) "
                                "DO NOTHING", (self.model.name, lane))
        self._created = True

    @property
    def position(self) -> int:
        """The last log id the read model has applied (as this process last saw it); with
        the log split, the sum over its lanes (it grows with every row applied)."""
        return sum(self.positions().values())

    def positions(self) -> dict[int, int]:
        """Per lane, the last log id the read model has applied."""
        for lane in self.store.lanes():
            if lane not in self._positions:
                self._positions[lane] = self._read_position(lane)
        return dict(self._positions)

    def _read_position(self, lane: int = LOG_PARTITION) -> int:
        self._create()
        with self.store.session(commit=False) as session:
            found = session.query("SELECT position FROM projection_positions "
                                  "WHERE name = ? AND log_partition = ?",
                                  (self.model.name, lane))
        return int(found[0][0]) if found else 0

    def _rows(self, position: int, target: int | None) -> int:
        """The batch size from `position`: a catch-up's while further than a batch from
        `target`, a live follower's otherwise."""
        if target is not None and target - position > self.batch_rows:
            return self.catchup_rows
        return self.batch_rows

    def step(self, target: int | None = None, lane: int | None = None) -> int:
        """Apply one batch of `lane` after the recorded position (a catch-up's size while
        further than a batch from `target`); returns the log rows it covered (0 at the end).
        Without a lane: of the first lane with rows to apply (the registry's first)."""
        if lane is not None:
            return self._step(target, lane)
        for each in self.store.lanes():
            if covered := self._step(target, each):
                return covered
        return 0

    def _step(self, target: int | None, lane: int) -> int:
        with self._lock:
            before = self._read_position(lane)
            rows = self.log.read_lane(lane, before + 1, self._rows(before, target))
            if not rows:
                self._positions[lane] = before
                return 0
            after = rows[-1].id
            try:
                prepared = self.model.prepare(self.store, rows)
                applied = self._apply(before, after, prepared, lane)
            except PositionMoved:
                applied = False
            if not applied:
                self.batches_lost += 1
                self._positions.pop(lane, None)
                return len(rows)
            self._positions[lane] = after
            self.batches_applied += 1
            return len(rows)

    def _apply(self, before: int, after: int, prepared: Any,
               lane: int = LOG_PARTITION) -> bool:
        """One transaction: the position from `before` to `after`, then the model's rows.
        False (rolled back, nothing written) when the position was no longer `before`."""
        try:
            with self.store.session(commit=True) as session:
                moved = session.execute(
                    "UPDATE projection_positions SET position = ? WHERE name = ? AND "
                    "log_partition = ? AND position = ?",
                    (after, self.model.name, lane, before))
                if moved != 1:
                    raise PositionMoved
                self.model.write(session, prepared)
        except PositionMoved:
            return False
        return True

    def catch_up(self, target: int | dict[int, int] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> int:
        """Apply batches until the model has passed log id `target` (default: the end of the
        log as it is now; with the log split, a cut: a target per lane, by default each
        card lane's head then the registry's). A target in a hole of the log is passed once
        the log has nothing more below it. Returns the position. `progress(position,
        target)` is called after each batch (a progress bar)."""
        if isinstance(target, dict):
            targets = target
        elif target is not None:
            targets = {LOG_PARTITION: target}
        elif not self.store.split:
            targets = {LOG_PARTITION: self.store.max_notification_id()}
        else:  # a cut of the card lanes first, then the registry's lane to its head
            targets = {lane: self.store.lane_head(lane) for lane in self.store.lanes()[1:]}
            targets[0] = self.store.lane_head(0)
        for lane in sorted(targets):
            self._catch_up_lane(lane, targets[lane], progress)
        return self.position

    def _catch_up_lane(self, lane: int, target: int,
                       progress: Callable[[int, int], None] | None) -> int:
        if getattr(self.model, "overlap", False):
            return self._catch_up_overlapped(target, progress, lane)
        with self._lock:
            try:
                with concurrent.futures.ThreadPoolExecutor(
                        1, thread_name_prefix=f"projection-{self.model.name}-read") as reader:
                    self._positions[lane] = self._stepped(reader, target, progress, lane)
            except BaseException:
                self._positions.pop(lane, None)
                raise
        return self._positions[lane]

    def _stepped(self, reader: concurrent.futures.ThreadPoolExecutor, target: int,
                 progress: Callable[[int, int], None] | None, lane: int) -> int:
        """catch_up one batch after the other, as `step` applies them, with the next batch
        of the log read meanwhile (a read needs nothing of the model); the position reached.
        A batch lost to another runner drops what was read after it."""
        position = self._read_position(lane)
        reading = (reader.submit(self._read, lane, position + 1, self._rows(position, target),
                                   self._bound(lane, target))
                   if position < target else None)
        while reading is not None:
            rows = reading.result()
            reading = None
            if not rows:
                break
            after = rows[-1].id
            if after < target:
                reading = reader.submit(self._read, lane, after + 1, self._rows(after, target),
                                   self._bound(lane, target))
            try:
                prepared = self.model.prepare(self.store, rows)
                applied = self._apply(position, after, prepared, lane)
            except PositionMoved:
                applied = False
            if not applied:
                self.batches_lost += 1
                if reading is not None:
                    reading.cancel()
                position = self._read_position(lane)
                reading = (reader.submit(self._read, lane, position + 1,
                                         self._rows(position, target),
                                         self._bound(lane, target))
                           if position < target else None)
                continue
            self.batches_applied += 1
            position = after
            if progress is not None:
                progress(min(position, target), target)
        return position

    def _catch_up_overlapped(self, target: int,
                             progress: Callable[[int, int], None] | None,
                             lane: int = LOG_PARTITION) -> int:
        """catch_up for a model whose `prepare` needs nothing of its own tables that the
        batch before wrote (`overlap = True`: it keeps what it needs in memory): the next
        batch is prepared while the previous one is written, one write in flight, and the
        batch after it is read meanwhile (reads and writes wait mostly on the server: both
        run beside the preparing, which is Python). The writes stay in log order, each
        moving the position from the previous batch's end in its own transaction, so
        exactly-once holds as in `step`; when one finds the position moved (another runner),
        what was read and prepared after it is dropped and reading starts again from the
        recorded position. The cyclic collector is off meanwhile: the batches' rows and sums
        all live until they are written, and nothing here makes a cycle (it would walk them
        again and again)."""
        collecting = gc.isenabled()
        gc.disable()
        name = f"projection-{self.model.name}"
        with self._lock:
            try:
                with (concurrent.futures.ThreadPoolExecutor(
                        1, thread_name_prefix=f"{name}-write") as pool,
                      concurrent.futures.ThreadPoolExecutor(
                        1, thread_name_prefix=f"{name}-read") as reader):
                    position = self._read_position(lane)
                    while position < target:
                        position = self._overlapped_run(pool, reader, position, target,
                                                        progress, lane)
                        if position < 0:  # a write lost to another runner
                            position = self._read_position(lane)
                            continue
                        break
            except BaseException:
                self._positions.pop(lane, None)
                raise
            finally:
                if collecting:
                    gc.enable()
            self._positions[lane] = position
            return position

    def _bound(self, lane: int, target: int) -> int | None:
        """The last row of `lane` a catch-up to `target` may apply: a split log's card lane
        stops at its cut (a row after it may depend on a registry row committed after the
        registry's lane was applied); the registry's lane and one log may pass their target."""
        return target if lane and self.store.split else None

    def _read(self, lane: int, start: int, limit: int,
              last: int | None = None) -> Sequence[LogRow]:
        """A batch of the log with the cyclic collector off: its thousands of rows all live
        until the batch is applied, and the collector would walk them again and again
        (reading runs ~15 % faster without it; nothing read makes a cycle). Only rows up to
        `last` when given."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            rows = self.log.read_lane(lane, start, limit)
            if last is not None and rows and rows[-1].id > last:
                rows = [row for row in rows if row.id <= last]
            return rows
        finally:
            if collecting:
                gc.enable()

    def _overlapped_run(self, pool: concurrent.futures.ThreadPoolExecutor,
                        reader: concurrent.futures.ThreadPoolExecutor, position: int,
                        target: int, progress: Callable[[int, int], None] | None,
                        lane: int = LOG_PARTITION) -> int:
        """Batches from `position` until `target` or the log's end; the position reached, or
        -1 when a write found the position moved."""
        writing: concurrent.futures.Future[bool] | None = None
        reading: concurrent.futures.Future[Sequence[LogRow]] | None = None
        if position < target:
            reading = reader.submit(self._read, lane, position + 1, self._rows(position, target),
                                   self._bound(lane, target))
        while True:
            rows = reading.result() if reading is not None else ()
            reading = None
            if rows and rows[-1].id < target:  # the next batch, read while this one is worked
                after = rows[-1].id
                reading = reader.submit(self._read, lane, after + 1, self._rows(after, target),
                                   self._bound(lane, target))
            try:
                prepared = self.model.prepare(self.store, rows) if rows else None
            except PositionMoved:
                prepared, rows = None, ()
                position = -1
            if writing is not None:
                applied = writing.result()
                writing = None
                if not applied:
                    self.batches_lost += 1
                    if reading is not None:
                        reading.cancel()  # read from a position that is no longer ours
                    return -1
                self.batches_applied += 1
            if not rows:
                if reading is not None:
                    reading.cancel()
                return position
            writing = pool.submit(self._apply, position, rows[-1].id, prepared, lane)
            position = rows[-1].id
            if progress is not None:
                progress(min(position, target), target)

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Drop the model's rows and position and apply the whole log again."""
        self._create()
        with self._lock, self.store.session(commit=True) as session:
            self.model.drop(session)
            self.model.create(session)
            session.execute("UPDATE projection_positions SET position = 0 WHERE name = ?",
                            (self.model.name,))
            self._positions = dict.fromkeys(self.store.lanes(), 0)
        return self.catch_up(progress=progress)

    # ------------------------------------------------------------------ following in a thread

    def start(self, poll_s: float = limits.PROJECTION_POLL_S) -> ProjectionRunner:
        """Follow the log in a daemon thread: a batch whenever `poke()` is called or every
        `poll_s` seconds. Readers that must be current still call `catch_up(target)`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, args=(poll_s,),
                                        name=f"projection-{self.model.name}", daemon=True)
        self._thread.start()
        return self

    def poke(self) -> None:
        self._wake.set()

    def _follow(self, poll_s: float) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
            except Exception:  # database away: the next poll tries again
                self._positions = {}
            self._wake.wait(poll_s)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
