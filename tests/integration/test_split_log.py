"""The split layout (ledger/partitioned.py, issue 14): the log in one lane per card partition,
partitions 0..7 in the ledger's database and 8..15 on the second PostgreSQL server (the
`split` backend: tests/conftest.py). What a lane holds, where a request's key goes, what one
server's transaction makes atomic and what a failure between two servers leaves, the turn
across lanes, a reversal's tombstone, the settlement marks and the read models' positions."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from domain.cards import commands as cc
from domain.common import Result
from domain.registry.events import SettlementPeriodMarked
from domain.settlement.periods import CloseSettlementPeriod
from ledger import limits
from ledger.codec import REGISTRY_ID, card_stream_id, decode_event
from ledger.engine import Ledger
from ledger.store import Conflict, KeyRow, Unavailable
from projections.settlement import lanes_behind, period_statements, periods, settlement_runner
from tests.integration.test_multi_writer import catch_up, fold_from_store
from tests.support.alliance import card_number, new_card, ok, rid

pytestmark = [pytest.mark.postgres, pytest.mark.backends("split")]
USD = "USD"
HALF = limits.PARTITIONS // 2


def lane_of_card(store: Any, number: str) -> int:
    return int(store.lane_of(card_stream_id(number)))


def cards_on_both_servers(engine: Ledger, alliance: Any, load: int) -> tuple[str, str]:
    """Two loaded cards: one whose partition is in the first database, one on the second
    server."""
    near = far = ""
    while not (near and far):
        number = new_card(engine, alliance, load)
        if lane_of_card(engine.store, number) - 1 < HALF:
            near = near or number
        else:
            far = far or number
    return near, far


def rows_in(store: Any, lane: int) -> list[tuple[uuid.UUID, int]]:
    return [(r.originator_id, r.originator_version) for r in store.read_lane(lane, 1, 10_000)]


def call(engine: Ledger, who: str, command: Any, request_id: str | None = None) -> Any:
    return engine.call(who, command, request_id=request_id or rid("split"), timeout_s=30)


def test_each_card_is_in_its_partitions_schema_on_its_server(ledger, alliance, store):
    near, far = cards_on_both_servers(ledger, alliance, 1_000)
    assert store.split and store.lanes() == list(range(limits.PARTITIONS + 1))
    for number in (near, far):
        lane = lane_of_card(store, number)
        stream = card_stream_id(number)
        assert [v for s, v in rows_in(store, lane) if s == stream] == [1, 2, 3]
        part = store.lane_store(lane)
        with psycopg.connect(**part.connect_params) as conn:  # that server, that schema
            assert conn.execute(f"SELECT count(*) FROM ledger_p{lane - 1:02d}.ledger_events "
                                "WHERE originator_id = %s", (stream,)).fetchone() == (3,)
    far_server = store.lane_store(lane_of_card(store, far)).connect_params
    near_server = store.lane_store(lane_of_card(store, near)).connect_params
    assert far_server["port"] != near_server["port"]  # the second PostgreSQL server
    # the registry is lane 0, in the ledger's own database; no card row is there
    assert {s for s, _ in rows_in(store, 0)} == {REGISTRY_ID}
    # each lane numbers its own rows from 1
    assert store.read_lane(lane_of_card(store, far), 1, 1)[0].id == 1


def test_a_requests_key_is_kept_with_its_cards_rows_and_a_retry_replays(ledger, alliance,
                                                                        store):
    near, far = cards_on_both_servers(ledger, alliance, 1_000)
    for number in (near, far):
        first = ok(call(ledger, alliance.t1, cc.Authorize(number, 100, USD, False, ""),
                        f"auth-{number}"))
        part = store.lane_store(lane_of_card(store, number))
        with psycopg.connect(**part.connect_params) as conn:
            assert conn.execute(f"SELECT count(*) FROM {part.tables.keys} WHERE request_id = %s",
                                (f"auth-{number}",)).fetchone() == (1,)
        again = ok(call(ledger, alliance.t1, cc.Authorize(number, 100, USD, False, ""),
                        f"auth-{number}"))
        assert again.replayed and again.authorization_id == first.authorization_id
        assert fold_from_store(store, number) == (1_000, 100)


def test_one_servers_lanes_commit_together_or_not_at_all(store):
    a = card_stream_id(card_number(1))
    b = next(card_stream_id(card_number(seed)) for seed in range(2, 500)
             if store.lane_of(card_stream_id(card_number(seed))) != store.lane_of(a)
             and store.server_rank(store.lane_of(card_stream_id(card_number(seed))))
             == store.server_rank(store.lane_of(a)))
    store.append([StoredEvent(a, 1, "t", b"{}")], [])
    with pytest.raises(Conflict):  # b's row is fine, a's version is taken: neither is written
        store.append([StoredEvent(b, 1, "t", b"{}"), StoredEvent(a, 1, "t", b"{}")], [])
    assert store.stream(b) == [] and len(store.stream(a)) == 1


def test_a_failure_between_servers_is_decided_again_and_nothing_applies_twice(
        ledger, alliance, store, monkeypatch):
    """The second server's transaction fails after the first committed: the writer re-decides
    the group; the requests committed on the first server replay from their keys, the others
    are decided again: every card ends exactly as its requests say."""
    near, far = cards_on_both_servers(ledger, alliance, 1_000)
    failed = fail_between_servers(store, monkeypatch,
                                  Unavailable("the second server went away mid-commit"))
    replies = submit_both(ledger, alliance, [(near, "pair-near"), (far, "pair-far")])
    assert failed, "the group spanned both servers"
    # the far card's request was refused as the database being down, or decided again
    retried = {request_id: ok(call(ledger, alliance.t1, cc.Authorize(number, 100, USD, False,
                                                                     ""), request_id))
               for number, request_id in ((near, "pair-near"), (far, "pair-far"))}
    for request_id, reply in retried.items():
        first = replies[request_id]
        if hasattr(first, "result"):
            assert reply.replayed and reply.authorization_id == first.authorization_id
    assert fold_from_store(store, near) == (1_000, 100)  # each applied exactly once
    assert fold_from_store(store, far) == (1_000, 100)


def fail_between_servers(store: Any, monkeypatch: pytest.MonkeyPatch,
                         error: Exception) -> list[int]:
    """The store's first append whose rows span both servers commits on the first server of
    its order only, then raises `error`; the list returned gets an item when it happened."""
    real = store._append
    happened: list[int] = []

    def first_server_only(events: Any, keys: Any, snapshots: Any,
                          key_lanes: Any = None) -> Any:
        ranks = {store.server_rank(store.lane_of(e.originator_id)) for e in events}
        if happened or len(ranks) < 2:
            return real(events, keys, snapshots, key_lanes)
        happened.append(1)
        order = store._order
        monkeypatch.setattr(store, "_order", lambda lanes, key_lanes_: order(lanes,
                                                                          key_lanes_)[:1])
        try:
            real(events, keys, snapshots, key_lanes)
        finally:
            monkeypatch.setattr(store, "_order", order)
        raise error

    monkeypatch.setattr(store, "_append", first_server_only)
    return happened


def submit_both(engine: Ledger, alliance: Any, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Submit authorizations together (one writer batch) and wait for every reply."""
    import threading

    from ledger.work import Request

    done = threading.Event()
    replies: dict[str, Any] = {}
    lock = threading.Lock()

    def answered(request_id: str) -> Any:
        def callback(reply: Any) -> None:
            with lock:
                replies[request_id] = reply
                if len(replies) == len(pairs):
                    done.set()
        return callback

    engine.submit_all([Request(alliance.t1, cc.Authorize(number, 100, USD, False, ""),
                               answered(request_id), request_id=request_id)
                       for number, request_id in pairs])
    assert done.wait(30)
    return replies


def test_a_reversal_before_its_original_declines_it_in_whichever_lane_it_lands(
        ledger, alliance, store):
    near, far = cards_on_both_servers(ledger, alliance, 1_000)
    for number in (near, far):
        original = f"late-{number}"
        assert ok(call(ledger, alliance.t1, cc.Reverse(original))).result == Result.APPROVED
        late = ok(call(ledger, alliance.t1, cc.Authorize(number, 100, USD, False, ""),
                       original))
        assert late.result == Result.DECLINED_REQUEST_REVERSED
        assert fold_from_store(store, number) == (1_000, 0)


def test_two_engines_on_one_card_each_request_once_none_overspent(ledger, other, alliance,
                                                                  store):
    from tests.integration.test_multi_writer import from_both

    _, far = cards_on_both_servers(ledger, alliance, 10_000)  # on the second server
    catch_up(other, alliance)
    replies = from_both(ledger, other, alliance, cc.Authorize(far, 100, USD, False, ""), 30)
    approved = [r for r in replies if r.result == Result.APPROVED]
    assert len(approved) == 100 and len({r.authorization_id for r in approved}) == 100
    assert fold_from_store(store, far) == (10_000, 10_000)


def test_a_close_is_marked_in_every_card_lane_and_a_lost_mark_is_written_at_start(
        ledger, alliance, store, store_url, clock):
    near, far = cards_on_both_servers(ledger, alliance, 1_000)
    hold = ok(call(ledger, alliance.t_air, cc.Authorize(near, 300, USD, False, "")))
    ok(call(ledger, alliance.t_air, cc.Capture(hold.authorization_id, 0)))
    closed = ok(call(ledger, alliance.admin, CloseSettlementPeriod("first")))
    assert closed.period_id == 1
    for lane in store.lanes()[1:]:
        marks = store.stream(store.marks_stream(lane))
        assert [decode_event(m.state) for m in marks] == [
            SettlementPeriodMarked(decode_event(marks[0].state).meta, 1, lane)]
    runner = settlement_runner(store)
    assert [p.period_id for p in periods(runner)] == [1, 2] and lanes_behind(runner, 1) == []
    # a process died between the close and the marks: the period waits for them
    ok(call(ledger, alliance.admin, CloseSettlementPeriod("second")))
    far_lane = lane_of_card(store, far)
    part = store.lane_store(far_lane)
    with psycopg.connect(**part.connect_params, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {part.tables.events} WHERE originator_id = %s AND "
                     "originator_version = 2", (store.marks_stream(far_lane),))
    runner = settlement_runner(store)
    runner.rebuild()
    assert lanes_behind(runner, 2) == [far_lane]
    with pytest.raises(Exception, match="marks have not reached card partitions"):
        period_statements(runner, 2)
    restarted = Ledger(store, clock_us=clock).start()  # marks what is missing
    restarted.stop()
    runner.catch_up()
    assert lanes_behind(runner, 2) == []
    statements, _ = period_statements(runner, 1)
    assert statements.statement(USD, "P1") is not None  # the lounge's spend, period 1


def test_read_models_keep_a_position_per_lane(ledger, alliance, store):
    _, far = cards_on_both_servers(ledger, alliance, 1_000)
    runner = settlement_runner(store)
    runner.catch_up()
    positions = runner.positions()
    assert set(positions) == set(store.lanes())
    assert positions == store.heads()
    ok(call(ledger, alliance.t1, cc.Authorize(far, 100, USD, False, "")))
    runner.catch_up()
    after = runner.positions()
    lane = lane_of_card(store, far)
    assert after[lane] > positions[lane]
    assert {k: v for k, v in after.items() if k != lane} == {
        k: v for k, v in positions.items() if k != lane}
    with store.session(commit=False) as session:
        rows = dict(session.query("SELECT log_partition, position FROM projection_positions "
                                  "WHERE name = 'settlement'"))
    assert rows == after


def test_the_old_log_order_reads_refuse_on_a_split_store(store):
    from ledger.store import StoreError

    with pytest.raises(StoreError, match="no single order"):
        store.read_log(1, 10)
    with pytest.raises(StoreError, match="no single order"):
        store.changes_after(0, 10)
    assert store.max_notification_id() == sum(store.heads().values())


def test_keys_found_in_any_lane(store):
    lanes = [1, limits.PARTITIONS]  # one on each server
    store.append([], [KeyRow("t:T1", "k-near", b"h", b"o")], (), [(lanes[0],)])
    store.append([], [KeyRow("t:T1", "k-far", b"h", b"o")], (), [(lanes[1],)])
    found = store.find_keys([("t:T1", "k-near"), ("t:T1", "k-far"), ("t:T1", "none")])
    assert set(found) == {("t:T1", "k-near"), ("t:T1", "k-far")}
    with pytest.raises(Conflict):
        store.append([], [KeyRow("t:T1", "k-far", b"h", b"o")], (), [(lanes[1],)])


def test_another_process_learns_which_lanes_were_written(store, store_url):
    """A commit's NOTIFY names the lanes it wrote, so the other processes' writers read only
    those lanes, not all 17."""
    import time

    from ledger.store import open_store

    other = open_store(store_url)
    try:
        deadline = time.monotonic() + 30  # bounds a hang only
        while other.foreign_lanes() is None:  # None until its watches listen
            assert time.monotonic() < deadline
            time.sleep(0.02)
        a = card_stream_id(card_number(7))
        b = next(card_stream_id(card_number(seed)) for seed in range(8, 500)
                 if store.server_rank(store.lane_of(card_stream_id(card_number(seed))))
                 != store.server_rank(store.lane_of(a)))
        store.append([StoredEvent(a, 1, "t", b"{}"), StoredEvent(b, 1, "t", b"{}")], [])
        seen: set[int] = set()
        while seen != {store.lane_of(a), store.lane_of(b)}:
            assert time.monotonic() < deadline, seen
            lanes = other.foreign_lanes()
            assert lanes is not None
            seen |= lanes
            time.sleep(0.02)
    finally:
        other.close()


def test_a_replacement_left_half_written_by_a_dead_process_is_completed_at_the_next_start(
        ledger, alliance, store, clock, monkeypatch):
    """ReplaceCard between partitions on two servers: the process dies after the old card's
    server committed and before the new card's did (here: the commit raises, which the writer
    answers as a bug, with no redo, as a killed process would leave it). The saga row kept
    before the first commit makes the next process to start send the request again, and the
    replacement completes: the value moved once, the request replays after that."""

    old, _ = cards_on_both_servers(ledger, alliance, 2_500)
    old_server = store.server_rank(lane_of_card(store, old))
    new = next(card_number(seed) for seed in range(10_000, 20_000)
               if store.server_rank(lane_of_card(store, card_number(seed))) != old_server)
    real = store._append
    died = fail_between_servers(store, monkeypatch, RuntimeError(
        "the process died between its two servers' commits"))
    command = cc.ReplaceCard(old, new, "lost")
    lost = call(ledger, alliance.s1_manager, command, "replace-1")
    assert died and not hasattr(lost, "result")  # no answer the client could rely on
    monkeypatch.setattr(store, "_append", real)
    assert len(store.pending_sagas()) == 1
    assert store.stream(card_stream_id(new)) == []  # half: the old card's leg only
    restarted = Ledger(store, clock_us=clock).start()  # completes what was left
    try:
        assert store.pending_sagas() == []
        assert fold_from_store(store, new) == (2_500, 0)
        assert fold_from_store(store, old) == (0, 0)
        again = ok(call(restarted, alliance.s1_manager, command, "replace-1"))
        assert again.replayed and again.result == Result.APPROVED
    finally:
        restarted.stop()
