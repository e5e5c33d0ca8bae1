"""Review of the split layout (issue 14): failures found in review, each pinned by a test
(the `split` backend: partitions 8..15 on the second PostgreSQL server)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from domain.cards import commands as cc
from domain.common import Result
from domain.settlement.periods import CloseSettlementPeriod
from ledger.store import Unavailable
from tests.integration.test_split_log import HALF, call, cards_on_both_servers
from tests.support.alliance import ok

pytestmark = [pytest.mark.postgres, pytest.mark.backends("split")]
USD = "USD"


def test_a_close_whose_marks_cannot_be_read_is_still_answered_and_the_writer_goes_on(
        ledger, alliance, store, monkeypatch):
    """The close commits, then the writer marks every card lane; a lane's server away at that
    moment must leave the lane unmarked (repaired at the next start), not kill the committer
    with the close committed and unanswered."""
    near, far = cards_on_both_servers(ledger, alliance, 1_000)
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
