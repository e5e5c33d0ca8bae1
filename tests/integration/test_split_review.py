"""Review of the split layout (issue 14): failures found in review, each pinned by a test
(the `split` backend: partitions 8..15 on the second PostgreSQL server)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from domain.cards import commands as cc
from domain.common import Result
from domain.settlement.periods import CloseSettlementPeriod
from ledger.codec import REGISTRY_ID, card_stream_id
from ledger.store import StoreError, Unavailable
from projections.runner import ProjectionRunner
from tests.integration.test_split_log import HALF, cards_on_both_servers
from tests.support.alliance import card_number, ok

pytestmark = [pytest.mark.postgres, pytest.mark.backends("split")]
USD = "USD"


def test_a_close_whose_marks_cannot_be_read_is_still_answered_and_the_writer_goes_on(
        ledger, alliance, store, monkeypatch):
    """The close commits, then the writer marks every card lane; a lane's server away at that
    moment must leave the lane unmarked (repaired at the next start), not kill the committer
    with the close committed and unanswered."""
    near, _ = cards_on_both_servers(ledger, alliance, 1_000)
    real = store.stream
    far_marks = {store.marks_stream(lane) for lane in store.lanes()[1 + HALF:]}

    def second_server_away(stream_id: Any, **kwargs: Any) -> Any:
        if stream_id in far_marks:
            raise Unavailable("the second server is away")
        return real(stream_id, **kwargs)

    monkeypatch.setattr(store, "stream", second_server_away)
    try:
        closed = ok(ledger.call(alliance.admin, CloseSettlementPeriod("first"),
                                request_id="close-1", timeout_s=5))
    finally:
        monkeypatch.setattr(store, "stream", real)
        committer = [t for t in threading.enumerate() if t.name == "ledger-committer"]
        if not committer:  # the writer's committer died: stop() would wait for it forever
            ledger.stop = lambda *args, **kwargs: None
        assert committer, "the committer thread died on the marks' read"
    assert closed.period_id == 1
    after = ok(ledger.call(alliance.t1, cc.Authorize(near, 100, USD, False, ""),
                           request_id="after-close", timeout_s=10))
    assert after.result == Result.APPROVED


class _Order:
    """A read model that remembers the rows it applied, and commits, once, a registry row
    and then a card row that depends on it while its registry lane is being applied (another
    process writing during a catch-up)."""

    name = "review_order"

    def __init__(self, lane: int, card: Any) -> None:
        self.lane, self.card = lane, card
        self.applied: list[tuple[Any, int]] = []
        self.written: list[Any] = []

    def create(self, session: Any) -> None:
        pass

    def drop(self, session: Any) -> None:
        pass

    def prepare(self, store: Any, rows: Any) -> Any:
        if not self.written and rows and rows[0].originator_id == REGISTRY_ID:
            version = len(store.stream(REGISTRY_ID)) + 1
            store.append([StoredEvent(REGISTRY_ID, version, "review.Agreement", b"{}")], [])
            store.append([StoredEvent(self.card, 2, "review.Flow", b"{}")], [])
            self.written = [(REGISTRY_ID, version), (self.card, 2)]
        return [(row.originator_id, row.originator_version) for row in rows]

    def write(self, session: Any, prepared: Any) -> None:
        self.applied += prepared


def test_a_catch_up_applies_no_card_row_past_its_cut_before_the_registry_rows_it_needs(store):
    """The cut (every card lane's head, then the registry's) exists so that a card row is
    applied after whatever registry row it depends on: a card lane read past its cut may
    reach a row that depends on a registry row the catch-up will not apply."""
    card = card_stream_id(card_number(3))
    store.append([StoredEvent(REGISTRY_ID, 1, "review.Registry", b"{}")], [])
    store.append([StoredEvent(card, 1, "review.Flow", b"{}")], [])
    model = _Order(store.lane_of(card), card)
    runner = ProjectionRunner(store, model)
    runner.catch_up()
    assert model.written  # the other process wrote during the catch-up
    registry_row, card_row = model.written
    if card_row in model.applied:  # the card row depends on the registry row before it
        assert registry_row in model.applied
    runner.catch_up()  # the next catch-up applies both
    assert registry_row in model.applied and card_row in model.applied


def test_position_of_a_lane_whose_server_is_away_is_a_store_error(store):
    """Like every other read of the store: a database error is Unavailable (a StoreError the
    engine answers as DATABASE_DOWN), not the recorders' own exception (taken for a bug)."""
    card = card_stream_id(card_number(5))
    store.append([StoredEvent(card, 1, "review.Flow", b"{}")], [])
    assert store.position_of(card, 1) == 1
    store.lane_store(store.lane_of(card)).datastore.pool.close()  # its server away
    with pytest.raises(StoreError):
        store.position_of(card, 1)
    with pytest.raises(StoreError):  # as the other reads already are
        store.stream(card)


def test_a_mark_left_unwritten_is_written_after_the_next_commit(ledger, alliance, store,
                                                                monkeypatch):
    """Until every lane has its mark, the period's statements wait and the net debit cap
    skips the lane's flows: a lane left unmarked must not stay so until the next start."""
    near, _ = cards_on_both_servers(ledger, alliance, 1_000)
    real = store.stream
    far_marks = {store.marks_stream(lane) for lane in store.lanes()[1 + HALF:]}

    def second_server_away(stream_id: Any, **kwargs: Any) -> Any:
        if stream_id in far_marks:
            raise Unavailable("the second server is away")
        return real(stream_id, **kwargs)

    monkeypatch.setattr(store, "stream", second_server_away)
    ok(ledger.call(alliance.admin, CloseSettlementPeriod("first"), request_id="close-1",
                   timeout_s=10))
    monkeypatch.setattr(store, "stream", real)
    assert all(store.stream(marks) == [] for marks in far_marks)
    ok(ledger.call(alliance.t1, cc.Authorize(near, 100, USD, False, ""),
                   request_id="after-close", timeout_s=10))
    assert all(len(store.stream(marks)) == 1 for marks in far_marks)
