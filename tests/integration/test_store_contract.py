"""The EventStore contract, run on both backends (SQLite and PostgreSQL) through the `store`
fixture: atomic appends of events and request keys, stream reads, snapshots, key lookups,
log following, the global log and configuration errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from domain.registry import events as rev
from ledger.codec import REGISTRY_ID, decode_event, encode, topic_of
from ledger.handlers.context import system_meta
from ledger.store import (
    SNAPSHOTS_TABLE,
    ConfigError,
    Conflict,
    EventStore,
    KeyRow,
    PostgresStore,
    SQLiteStore,
    StoreError,
    open_store,
)
from tests.support.alliance import wait_until


def ev(stream: uuid.UUID, version: int, body: bytes = b"") -> StoredEvent:
    return StoredEvent(stream, version, "test.event.v1", body or f"{stream}/{version}".encode())


def key(request_id: str, space: str = "t:T1", digest: bytes = b"h" * 16,
        outcome: bytes = b"outcome") -> KeyRow:
    return KeyRow(space, request_id, digest, outcome)


def registry_event(version: int, partner_id: str) -> StoredEvent:
    event = rev.PartnerRegistered(system_meta(1), partner_id, f"Partner {partner_id}", "USD")
    return StoredEvent(REGISTRY_ID, version, topic_of(event), encode(event))


def log_of(store: EventStore) -> list[tuple[int, uuid.UUID, int, bytes]]:
    rows = store.read_log(1, 10_000)
    return [(n.id, n.originator_id, n.originator_version, n.state) for n in rows]


class TestEventStore:
    # ------------------------------------------------------------------ atomic appends

    def test_append_writes_events_and_keys_and_returns_increasing_ids(self, store):
        a = uuid.uuid4()
        ids = store.append([ev(a, 1), ev(a, 2), ev(a, 3)], [key("r1"), key("r2")])
        assert len(ids) == 3 and ids == sorted(ids) and len(set(ids)) == 3
        assert [e.originator_version for e in store.stream(a)] == [1, 2, 3]
        assert [e.state for e in store.stream(a)] == [ev(a, v).state for v in (1, 2, 3)]
        found = store.find_keys([("t:T1", "r1"), ("t:T1", "r2")])
        assert found == {("t:T1", "r1"): key("r1"), ("t:T1", "r2"): key("r2")}
        assert store.max_notification_id() == ids[-1]
        # a second append continues the log after the first
        more = store.append([ev(uuid.uuid4(), 1)], [])
        assert more[0] > ids[-1]

    def test_duplicate_key_rolls_back_the_whole_append(self, store):
        a, b = uuid.uuid4(), uuid.uuid4()
        store.append([ev(a, 1)], [key("taken")])
        log_before = log_of(store)
        top_before = store.max_notification_id()
        with pytest.raises(Conflict):
            store.append([ev(b, 1), ev(a, 2)], [key("fresh"), key("taken", digest=b"x" * 16)])
        assert store.stream(b) == []
        assert [e.originator_version for e in store.stream(a)] == [1]
        assert store.find_keys([("t:T1", "fresh")]) == {}
        assert store.find_keys([("t:T1", "taken")])[("t:T1", "taken")] == key("taken")
        assert log_of(store) == log_before
        assert store.max_notification_id() == top_before

    def test_duplicate_stream_version_rolls_back_the_whole_append(self, store):
        a, b = uuid.uuid4(), uuid.uuid4()
        store.append([ev(a, 1), ev(a, 2)], [])
        log_before = log_of(store)
        with pytest.raises(Conflict):
            store.append([ev(b, 1), ev(a, 2, b"other writer")], [key("k1"), key("k2")])
        assert store.stream(b) == []
        assert [e.state for e in store.stream(a)] == [ev(a, 1).state, ev(a, 2).state]
        assert store.find_keys([("t:T1", "k1"), ("t:T1", "k2")]) == {}
        assert log_of(store) == log_before

    @pytest.mark.parametrize("clash", ["keys", "versions"])
    def test_a_clash_inside_one_append_writes_nothing(self, store, clash):
        a = uuid.uuid4()
        events = [ev(a, 1), ev(a, 1 if clash == "versions" else 2)]
        keys = [key("same"), key("same" if clash == "keys" else "other")]
        with pytest.raises(Conflict):
            store.append(events, keys)
        assert store.stream(a) == []
        assert store.find_keys([("t:T1", "same"), ("t:T1", "other")]) == {}
        assert store.max_notification_id() == 0

    def test_a_clash_is_a_conflict_on_a_fresh_connection_every_time(self, store, store_url):
        """On a new connection the driver may read the clash's error while the rest of the
        append is still being sent; it must still be a Conflict, never UNAVAILABLE (seen as a
        race before the fix: about one attempt in seven)."""
        for attempt in range(30):
            fresh = open_store(store_url)
            try:
                a = uuid.uuid4()
                with pytest.raises(Conflict):
                    fresh.append([ev(a, 1), ev(a, 1)], [key(f"x{attempt}"), key(f"y{attempt}")])
            finally:
                fresh.close()
        assert store.max_notification_id() == 0

    def test_conflict_is_a_store_error_and_the_store_stays_usable(self, store):
        a = uuid.uuid4()
        store.append([ev(a, 1)], [])
        with pytest.raises(StoreError):
            store.append([ev(a, 1)], [])
        ids = store.append([ev(a, 2)], [key("after")])
        assert len(ids) == 1
        assert [e.originator_version for e in store.stream(a)] == [1, 2]

    def test_every_connection_takes_appends_after_failed_ones(self, store, caplog):
        """A commit is one pipelined segment (BEGIN ... COMMIT); a clash makes the server skip
        the rest of it, COMMIT included, and leaves its transaction aborted. That transaction
        is rolled back before its connection serves anything else: no connection comes back
        to the pool inside one (the pool would warn), and each takes the next append."""
        a = uuid.uuid4()
        store.append([ev(a, 1)], [key("first")])
        with caplog.at_level("WARNING"):
            for attempt in range(6):  # more than the pool's connections
                with pytest.raises(Conflict):
                    store.append([ev(a, 2), ev(a, 1)], [key(f"clash{attempt}")])
                with pytest.raises(Conflict):
                    store.append([], [key(f"new{attempt}"), key("first")])
        assert not [r for r in caplog.records if "rolling back" in r.getMessage()]
        for version in range(2, 8):
            assert len(store.append([ev(a, version)], [key(f"after{version}")])) == 1
        assert [e.originator_version for e in store.stream(a)] == list(range(1, 8))
        assert store.find_keys([("t:T1", "clash0"), ("t:T1", "new0")]) == {}

    def test_a_commit_is_one_round_trip_on_postgres(self, store, monkeypatch):
        """Events, keys and snapshots with BEGIN and COMMIT go out as one pipeline segment: one
        Sync, so one round trip (psycopg's `transaction()` inside a pipeline made five)."""
        if not isinstance(store, PostgresStore):
            pytest.skip("SQLite commits in process")
        from psycopg import _pipeline_base

        syncs: list[int] = []
        enqueue = _pipeline_base.BasePipeline._enqueue_sync

        def counted(pipeline: Any) -> None:
            syncs.append(1)
            enqueue(pipeline)

        a = uuid.uuid4()
        store.append([ev(a, 1)], [])
        monkeypatch.setattr(_pipeline_base.BasePipeline, "_enqueue_sync", counted)
        store.append([ev(a, 2), ev(a, 3)], [key("one")], [ev(a, 3)])
        assert len(syncs) == 1
        with pytest.raises(Conflict):
            store.append([ev(a, 4)], [key("one")])
        assert [e.originator_version for e in store.stream(a)] == [1, 2, 3]

    def test_key_only_appends(self, store):
        assert store.append([], [key("k1"), key("k2", space="c:x", digest=b"")]) == []
        assert store.max_notification_id() == 0
        assert store.read_log(1, 10) == []
        found = store.find_keys([("t:T1", "k1"), ("c:x", "k2")])
        assert found[("c:x", "k2")].payload_hash == b""  # a tombstone keeps its empty hash
        assert found[("t:T1", "k1")] == key("k1")
        with pytest.raises(Conflict):
            store.append([], [key("k3"), key("k1")])
        assert store.find_keys([("t:T1", "k3")]) == {}

    def test_the_same_request_id_in_two_key_spaces_are_two_keys(self, store):
        store.append([], [key("r", space="t:T1", outcome=b"one"),
                          key("r", space="t:T2", outcome=b"two")])
        found = store.find_keys([("t:T1", "r"), ("t:T2", "r")])
        assert found[("t:T1", "r")].outcome == b"one"
        assert found[("t:T2", "r")].outcome == b"two"

    # ------------------------------------------------------------------ streams

    def test_stream_reads_with_gt_lte_and_limit(self, store):
        a, other = uuid.uuid4(), uuid.uuid4()
        store.append([ev(a, v) for v in range(1, 8)] + [ev(other, 1)], [])

        def versions(**kwargs):
            return [e.originator_version for e in store.stream(a, **kwargs)]

        assert versions() == [1, 2, 3, 4, 5, 6, 7]
        assert versions(gt=3) == [4, 5, 6, 7]
        assert versions(lte=3) == [1, 2, 3]
        assert versions(gt=2, lte=5) == [3, 4, 5]
        assert versions(limit=2) == [1, 2]
        assert versions(gt=2, limit=3) == [3, 4, 5]
        assert versions(gt=1, lte=6, limit=10) == [2, 3, 4, 5, 6]
        assert versions(gt=7) == []
        assert versions(lte=0) == []
        assert store.stream(uuid.uuid4()) == []
        assert all(e.originator_id == a for e in store.stream(a))
        assert all(isinstance(e.state, bytes) for e in store.stream(a))

    # ------------------------------------------------------------------ snapshots

    def test_snapshots_latest_wins_and_duplicates_are_ignored(self, store):
        a = uuid.uuid4()
        assert store.latest_snapshot(a) is None
        store.save_snapshot(StoredEvent(a, 100, "snapshot.card.v1", b"at 100"))
        store.save_snapshot(StoredEvent(a, 300, "snapshot.card.v1", b"at 300"))
        store.save_snapshot(StoredEvent(a, 200, "snapshot.card.v1", b"at 200"))
        latest = store.latest_snapshot(a)
        assert latest is not None
        assert (latest.originator_version, latest.state) == (300, b"at 300")
        # another process already wrote this snapshot: fine, and the first one stays
        store.save_snapshot(StoredEvent(a, 300, "snapshot.card.v1", b"again"))
        latest = store.latest_snapshot(a)
        assert latest is not None and latest.state == b"at 300"
        assert store.latest_snapshot(uuid.uuid4()) is None
        # snapshots are not events: the log and the stream do not see them
        assert store.stream(a) == []
        assert store.max_notification_id() == 0

    def test_snapshots_commit_with_their_events_or_not_at_all(self, store):
        a, b = uuid.uuid4(), uuid.uuid4()
        store.append([ev(a, 1)], [], [StoredEvent(a, 1, "snapshot.card.v1", b"a at 1")])
        latest = store.latest_snapshot(a)
        assert latest is not None and latest.state == b"a at 1"
        # a snapshot already there (another process) does not fail the commit
        store.append([ev(a, 2)], [], [StoredEvent(a, 1, "snapshot.card.v1", b"other")])
        assert [e.originator_version for e in store.stream(a)] == [1, 2]
        assert store.latest_snapshot(a).state == b"a at 1"  # type: ignore[union-attr]
        # an append that conflicts writes none of its snapshots
        with pytest.raises(Conflict):
            store.append([ev(b, 1), ev(a, 2)], [],
                         [StoredEvent(b, 1, "snapshot.card.v1", b"b at 1")])
        assert store.latest_snapshot(b) is None

    def test_one_current_snapshot_per_stream(self, store):
        """A commit's snapshot replaces the stream's older ones: snapshot storage grows with
        the number of cards, not with their history."""
        a, b = uuid.uuid4(), uuid.uuid4()
        store.append([ev(a, 1)], [], [StoredEvent(a, 1, "snapshot.card.v1", b"a at 1")])
        store.append([ev(b, 1)], [], [StoredEvent(b, 1, "snapshot.card.v1", b"b at 1")])
        for version in (2, 3):
            store.append([ev(a, version)], [],
                         [StoredEvent(a, version, "snapshot.card.v1", b"a at %d" % version)])
        assert snapshot_versions(store, a) == [3]
        assert snapshot_versions(store, b) == [1]  # another stream's stays
        assert store.latest_snapshot(a).state == b"a at 3"  # type: ignore[union-attr]
        assert [e.originator_version for e in store.stream(a)] == [1, 2, 3]  # events stay

    def test_many_streams_load_together(self, store):
        """A batch's cold cards: each stream's latest snapshot and the events after it, in
        the order asked."""
        a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        store.append([ev(a, 1), ev(a, 2), ev(b, 1)], [],
                     [StoredEvent(a, 2, "snapshot.card.v1", b"a at 2")])
        store.append([ev(a, 3)], [])
        loaded = sorted(store.load_tails([c, a, b], "snapshot.card.v1"))
        assert loaded == [(0, (0, None, [])), (1, (2, b"a at 2", [ev(a, 3).state])),
                          (2, (0, None, [ev(b, 1).state]))]
        assert all(isinstance(s, bytes) for _, tail in loaded for s in tail.events)
        assert list(store.load_tails([], "snapshot.card.v1")) == []
        assert list(store.load_tails([a], None)) == [(0, (2, b"a at 2", [ev(a, 3).state]))]

    def test_a_snapshot_of_another_topic_is_passed_over(self, store):
        """After the snapshot topic changes (a new CardState shape), an old snapshot is
        never returned for the new topic: the stream loads from its first event."""
        a = uuid.uuid4()
        store.append([ev(a, 1), ev(a, 2)], [], [StoredEvent(a, 2, "snapshot.card.v1", b"old")])
        assert list(store.load_tails([a], "snapshot.card.v2")) == [
            (0, (0, None, [ev(a, 1).state, ev(a, 2).state]))]
        store.append([ev(a, 3)], [], [StoredEvent(a, 3, "snapshot.card.v2", b"new")])
        assert list(store.load_tails([a], "snapshot.card.v2")) == [(0, (3, b"new", []))]

    def test_existing_streams_in_one_query(self, store):
        """A batch of issues asks which card streams exist, without loading them."""
        a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        store.append([ev(a, 1), ev(a, 2), ev(b, 1)], [])
        assert store.existing_streams([a, b, c]) == {a, b}
        assert store.existing_streams([c]) == set()
        assert store.existing_streams([]) == set()
        many = [uuid.uuid4() for _ in range(1_200)] + [a]  # past SQLite's IN-list chunk
        assert store.existing_streams(many) == {a}

    # ------------------------------------------------------------------ keys

    def test_find_keys(self, store):
        store.append([], [key("a", outcome=b"A"), key("b", outcome=b"B"),
                          key("a", space="t:T2", outcome=b"A2")])
        assert store.find_keys([]) == {}
        found = store.find_keys([("t:T1", "a"), ("t:T1", "missing"), ("t:T1", "a"),
                                 ("t:T2", "a"), ("t:T9", "b")])
        assert set(found) == {("t:T1", "a"), ("t:T2", "a")}
        assert found[("t:T1", "a")].outcome == b"A"
        assert found[("t:T2", "a")].outcome == b"A2"
        row = found[("t:T1", "a")]
        assert isinstance(row.payload_hash, bytes) and isinstance(row.outcome, bytes)
        # a generator works too
        assert set(store.find_keys(p for p in [("t:T1", "b")])) == {("t:T1", "b")}

    def test_find_keys_many_at_once(self, store):
        rows = [key(f"r{i}", outcome=str(i).encode()) for i in range(300)]
        store.append([], rows)
        found = store.find_keys([("t:T1", f"r{i}") for i in range(0, 400, 3)])
        assert set(found) == {("t:T1", f"r{i}") for i in range(0, 300, 3)}
        assert all(found[("t:T1", f"r{i}")].outcome == str(i).encode()
                   for i in range(0, 300, 3))

    # ------------------------------------------------------------------ following the log

    def test_changes_after_in_log_order_with_registry_state_only(self, store):
        a, b = uuid.uuid4(), uuid.uuid4()
        first = store.append([ev(a, 1), registry_event(1, "P1")], [])
        second = store.append([ev(b, 1), ev(a, 2), registry_event(2, "P2")], [])
        changes = store.changes_after(0, 100)
        assert [c.notification_id for c in changes] == first + second
        assert [(c.originator_id, c.originator_version) for c in changes] == [
            (a, 1), (REGISTRY_ID, 1), (b, 1), (a, 2), (REGISTRY_ID, 2)]
        for change in changes:
            if change.originator_id == REGISTRY_ID:
                assert change.state is not None
                event = decode_event(change.state)
                assert isinstance(event, rev.PartnerRegistered)
                assert event.partner_id == f"P{change.originator_version}"
            else:
                assert change.state is None  # card rows carry no payload to followers
        assert isinstance(changes[0].originator_id, uuid.UUID)
        # from a position, with a limit
        after = store.changes_after(first[-1], 2)
        assert [c.notification_id for c in after] == second[:2]
        assert store.changes_after(second[-1], 100) == []
        assert store.changes_after(0, 1)[0].notification_id == first[0]

    def test_others_may_have_written_is_false_only_when_certain(self, store, store_url):
        """A writer may skip reading the log only when the store is sure nobody else wrote:
        never on SQLite; on PostgreSQL once listening, until another writer's NOTIFY."""
        if isinstance(store, SQLiteStore):
            store.append([ev(uuid.uuid4(), 1)], [])
            assert store.others_may_have_written() and store.others_may_have_written()
            return
        assert isinstance(store, PostgresStore)
        wait_until(lambda: not store.others_may_have_written())  # listening, nothing new
        watch = store._watch
        assert watch is not None
        seen = watch.notes_seen
        store.append([ev(uuid.uuid4(), 1)], [])  # our own commit...
        wait_until(lambda: watch.notes_seen > seen)
        assert not store.others_may_have_written()  # ...is not someone else's
        other = open_store(store_url)
        try:
            other.append([ev(uuid.uuid4(), 1)], [])
        finally:
            other.close()
        wait_until(store.others_may_have_written)
        assert not store.others_may_have_written()  # reset by the answer

    def test_changes_after_skips_nothing_across_a_rolled_back_append(self, store):
        a = uuid.uuid4()
        first = store.append([ev(a, 1)], [])
        with pytest.raises(Conflict):
            store.append([ev(a, 2), ev(a, 1)], [])
        later = store.append([ev(a, 2)], [])
        assert [c.notification_id for c in store.changes_after(first[-1], 10)] == later
        assert [(c.originator_version) for c in store.changes_after(0, 10)] == [1, 2]

    # ------------------------------------------------------------------ the global log

    def test_read_log_order_is_stable_and_readable_from_a_position(self, store):
        streams = [uuid.uuid4() for _ in range(3)]
        ids: list[int] = []
        for version in range(1, 5):
            ids += store.append([ev(s, version) for s in streams], [key(f"r{version}")])
        log = store.read_log(1, 1000)
        assert [n.id for n in log] == ids
        assert [n.id for n in log] == sorted({n.id for n in log})
        assert store.read_log(1, 1000) == log  # stable across reads
        assert [(n.originator_id, n.originator_version) for n in log] == [
            (s, v) for v in range(1, 5) for s in streams]
        assert all(n.topic == "test.event.v1" for n in log)
        assert log[0].state == ev(streams[0], 1).state
        # from a position (inclusive), in pages
        middle = ids[5]
        assert [n.id for n in store.read_log(middle, 1000)] == ids[5:]
        pages: list[int] = []
        position = 1
        while True:
            page = store.read_log(position, 5)
            if not page:
                break
            assert len(page) <= 5
            pages += [n.id for n in page]
            position = page[-1].id + 1
        assert pages == ids
        assert store.read_log(ids[-1] + 1, 10) == []

    def test_max_notification_id(self, store):
        assert store.max_notification_id() == 0
        ids = store.append([ev(uuid.uuid4(), 1), ev(uuid.uuid4(), 1)], [])
        assert store.max_notification_id() == ids[-1]
        store.append([], [key("only-a-key")])
        assert store.max_notification_id() == ids[-1]
        more = store.append([ev(uuid.uuid4(), 1)], [])
        assert store.max_notification_id() == more[-1]

    # ------------------------------------------------------------------ processes

    def test_a_second_store_on_the_same_database_sees_everything(self, store, store_url):
        other = open_store(store_url)
        try:
            other.check_schema()
            a = uuid.uuid4()
            ids = store.append([ev(a, 1)], [key("r1")])
            assert [e.originator_version for e in other.stream(a)] == [1]
            assert set(other.find_keys([("t:T1", "r1")])) == {("t:T1", "r1")}
            assert other.max_notification_id() == ids[-1]
            # the request key guards across processes: the second writer conflicts
            with pytest.raises(Conflict):
                other.append([ev(uuid.uuid4(), 1)], [key("r1")])
            with pytest.raises(Conflict):
                other.append([ev(a, 1)], [])
            assert [c.notification_id for c in store.changes_after(0, 10)] == ids
        finally:
            other.close()

    def test_check_schema_before_create_schema_raises_config_error(self, store_url):
        fresh = open_store(store_url)
        try:
            with pytest.raises(ConfigError, match="init"):
                fresh.check_schema()
            fresh.create_schema()
            fresh.check_schema()
            fresh.create_schema()  # idempotent
            fresh.check_schema()
        finally:
            fresh.close()


# ---------------------------------------------------------------------- configuration errors
# These do not need a database, so they run once rather than once per backend.


@pytest.mark.parametrize("url", [
    "mysql://u:secret@127.0.0.1/x",
    "postgresql://u:secret@127.0.0.1:abc/x",
    "postgresql://u:secret@127.0.0.1:99999/x",
    "postgresql://u:secret@/x",
    "postgresql://u:secret@127.0.0.1:5432/",
    "sqlite://relative.db",
    "sqlite:///",
    "",
    "not a url",
])
def test_malformed_urls_raise_config_error_without_the_password(url):
    with pytest.raises(ConfigError, match="malformed") as raised:
        open_store(url)
    assert "secret" not in str(raised.value)
    assert "\n" not in str(raised.value)


def test_unreachable_postgres_raises_config_error_without_the_password():
    with pytest.raises(ConfigError) as raised:
        open_store("postgresql://u:secret@127.0.0.1:1/x")
    message = str(raised.value)
    assert "secret" not in message
    assert "127.0.0.1:1/x" in message and "***" in message
    assert raised.value.__suppress_context__ or raised.value.__cause__ is None


def test_sqlite_in_a_missing_directory_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot reach"):
        open_store(f"sqlite:///{tmp_path}/no/such/dir/ledger.db")


@pytest.mark.parametrize("url", ["postgresql:/u:secret@127.0.0.1/x",
                                 "postgres//u:secret@127.0.0.1/x",
                                 "u:secret@127.0.0.1/x"])
def test_a_url_missing_a_slash_does_not_print_the_password(url):
    with pytest.raises(ConfigError) as raised:
        open_store(url)
    assert "secret" not in str(raised.value)


def test_a_bad_host_is_a_config_error():
    with pytest.raises(ConfigError) as raised:
        open_store("postgresql://u:secret@[::1/x")
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize("url, secret", [
    ("postgresql://u:top@secret@127.0.0.1:abc/x", "secret"),
    ("postgresql://u:top:secret@127.0.0.1:abc/x", "top"),
])
def test_a_password_with_reserved_characters_is_hidden(url, secret):
    with pytest.raises(ConfigError) as raised:
        open_store(url)
    assert secret not in str(raised.value)


def snapshot_versions(store: Any, stream_id: uuid.UUID) -> list[int]:
    """Every snapshot row the store holds for a stream (not only the latest)."""
    if isinstance(store, SQLiteStore):
        with store.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT originator_version FROM {SNAPSHOTS_TABLE} "
                      "WHERE originator_id = ? ORDER BY 1", (stream_id.hex,))
            return [int(row[0]) for row in c.fetchall()]
    with store.datastore.get_connection() as conn:
        rows = conn.execute(f"SELECT originator_version AS v FROM {SNAPSHOTS_TABLE} "
                            "WHERE originator_id = %s ORDER BY 1", (stream_id,)).fetchall()
    return [int(row["v"]) for row in rows]
