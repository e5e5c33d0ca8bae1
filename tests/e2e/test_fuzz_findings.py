"""What fuzzing every RPC found, each as a story over real gRPC on both stores: no RPC answers
UNKNOWN (a bug is INTERNAL with a reference that the server logs with its traceback, and no
Python class or message reaches the client); nothing is written for a refused call; a write
that committed is never lost to a failing reply (its retry returns it); and times stored
before their range was enforced still make replies."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest

from domain.cards import commands as cc
from domain.common import TIME_MAX_US, format_time_us, parse_time_us
from domain.coupons.model import Campaign, CouponKind, DefineCouponCampaign
from grpc_api import server as server_module
from grpc_api.generated import pos_pb2 as pb
from ledger.handlers import HANDLERS
from ledger.store import Conflict
from tests.support.alliance import Alliance, ok
from tests.support.rpc import R, Server, batch_status, call, db_state, issue, rid

# On SQLite; the tests marked backends("sqlite", "postgres") are the end-to-end smoke run on
# PostgreSQL (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

DAY_US = 86_400_000_000


def _broken(*_: Any, **__: Any) -> Any:
    raise RuntimeError("secret detail of a bug")


def _assert_internal(error: grpc.RpcError) -> None:
    details = error.details() or ""
    assert error.code() == grpc.StatusCode.INTERNAL, (error.code(), details)
    assert "reference" in details
    assert "RuntimeError" not in details and "secret detail" not in details
    assert "Traceback" not in details


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_a_bug_in_the_writer_is_internal_and_writes_nothing(
        server: Server, alliance: Alliance, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    number = issue(server, alliance, 801, load=100_00)
    monkeypatch.setitem(HANDLERS, cc.Authorize, _broken)
    before = db_state(server.ledger)
    request = pb.AuthorizeRequest(request_id=rid("bug"), card_number=number, amount_minor=1_00,
                                  currency="USD")
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.RpcError) as raised:
        call(server.pos.Authorize, request, alliance.tokens["t1"])
    _assert_internal(raised.value)
    assert db_state(server.ledger) == before
    reference = (raised.value.details() or "").split("reference ")[1].split(")")[0]
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback stays in the log

    # In a Batch, the operation that meets the bug fails alone; its neighbours are decided.
    load = pb.LoadValueRequest(request_id=rid("load"), card_number=number, amount_minor=5_00,
                               currency="USD", payment_ref="p")
    replies, status = batch_status(server, alliance.tokens["gw1"], pb.BatchRequest(operations=[
        pb.PosOperation(terminal_id="T1", authorize=pb.AuthorizeRequest(
            request_id=rid("bug"), card_number=number, amount_minor=1_00, currency="USD")),
        pb.PosOperation(terminal_id="T1", load=load)]))
    assert status is None
    (bad, good) = replies[0].replies
    assert bad.error.startswith("INTERNAL: internal error (reference ")
    assert "RuntimeError" not in bad.error
    assert good.reply.result == R.APPROVED and good.reply.available_minor == 105_00


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_a_reply_that_fails_after_the_commit_is_internal_and_the_retry_returns_it(
        server: Server, alliance: Alliance, monkeypatch: pytest.MonkeyPatch) -> None:
    number = issue(server, alliance, 802, load=100_00)
    request = pb.AuthorizeRequest(request_id=rid("late"), card_number=number,
                                  amount_minor=10_00, currency="USD")
    monkeypatch.setattr(server_module, "authorize_reply", _broken)
    with pytest.raises(grpc.RpcError) as raised:
        call(server.pos.Authorize, request, alliance.tokens["t1"])
    _assert_internal(raised.value)
    monkeypatch.undo()
    again = call(server.pos.Authorize, request, alliance.tokens["t1"])
    assert again.result == R.APPROVED and again.replayed and again.available_minor == 90_00


def test_times_stored_past_year_9999_still_make_replies(server: Server,
                                                        alliance: Alliance) -> None:
    """Input now refuses such times (tests/e2e/test_bad_input.py); a campaign stored before
    that (written here through the engine, which trusts validated commands) must not turn its
    coupons' replies into errors after they are written."""
    beyond_us = TIME_MAX_US + 3 * DAY_US  # 10000-01-02 in UTC
    now_us = server.ledger.clock_us()
    ok(server.ledger.call(alliance.p1_manager, DefineCouponCampaign(Campaign(
        "LEGACY", "P1", "USD", CouponKind.VALUE, 5_00, 0, 0, now_us - DAY_US, beyond_us, (),
        (), False, False, "P1")), request_id=rid("camp")))
    number = issue(server, alliance, 803)
    request = pb.IssueCouponRequest(request_id=rid("cp"), card_number=number,
                                    campaign_id="LEGACY")
    reply = call(server.programs.IssueCoupon, request, alliance.tokens["s1_manager"])
    assert reply.result == R.APPROVED and reply.coupon.valid_to == "10000-01-02T00:00:00Z"
    again = call(server.programs.IssueCoupon, request, alliance.tokens["s1_manager"])
    assert again.replayed and again.coupon.coupon_id == reply.coupon.coupon_id
    listed = call(server.programs.ListCoupons, pb.ListCouponsRequest(card_number=number),
                  alliance.tokens["s1_manager"])
    assert [c.valid_to for c in listed.coupons] == ["10000-01-02T00:00:00Z"]


@pytest.mark.parametrize("value_us", [1, 10**15, TIME_MAX_US, TIME_MAX_US + 1, 2**62 - 1,
                                      10**18 + 12_345])
def test_format_time_is_total_and_agrees_with_parse(value_us: int) -> None:
    text = format_time_us(value_us)
    assert text.endswith("Z")
    if value_us <= TIME_MAX_US:
        assert parse_time_us(text, "t", 0) == value_us


def test_a_bug_while_redoing_after_a_conflict_answers_every_caller(
        server: Server, alliance: Alliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit conflicts (another process wrote first), and the redo meets a bug: the redone
    requests are decided one by one, the one with the bug is INTERNAL, none hangs."""
    number = issue(server, alliance, 804, load=100_00)
    ledger = server.ledger
    real_append = ledger.store.append
    conflicted = []

    def conflict_once(*args: Any, **kwargs: Any) -> Any:
        if not conflicted:
            conflicted.append(True)
            raise Conflict("another process wrote first (simulated)")
        return real_append(*args, **kwargs)

    real_process = ledger._process
    broken = []

    def process_with_a_bug(batch: Any, *args: Any) -> Any:
        if not broken:  # the first redo (all the failed requests together) meets the bug
            broken.append(True)
            raise RuntimeError("secret detail of a bug")
        return real_process(batch, *args)

    monkeypatch.setattr(ledger.store, "append", conflict_once)
    monkeypatch.setattr(ledger, "_process", process_with_a_bug)
    reply = call(server.pos.Authorize, pb.AuthorizeRequest(
        request_id=rid("redo"), card_number=number, amount_minor=1_00, currency="USD"),
        alliance.tokens["t1"])
    assert conflicted and broken
    assert reply.result == R.APPROVED and reply.available_minor == 99_00
