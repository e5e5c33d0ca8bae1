"""Every RPC of the POS contract over real gRPC, on both backends: a card's whole story,
replays and mismatches, the registry, Batch, health and reflection."""

from __future__ import annotations

import datetime
import queue
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.server import ServerThread
from ledger.engine import Ledger
from tests.support.alliance import Alliance, FakeClock, card_number
from tests.support.rpc import (
    R,
    Server,
    all_movements,
    authorize,
    balance,
    batch_status,
    call,
    db_state,
    get_card,
    issue,
    metadata,
    rid,
    status_of,
)

# On SQLite; the tests marked backends("sqlite", "postgres") are the end-to-end smoke run on
# PostgreSQL (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

CONTRACT = Path("/work/shared/spec/pos_contract.proto")
S = pb.CardStatus


def _auth(server: Server, token: str, number: str, amount: int, request_id: str,
          currency: str = "USD", allow_partial: bool = False, stan: str = "") -> pb.AuthorizeReply:
    return call(server.pos.Authorize, pb.AuthorizeRequest(
        request_id=request_id, card_number=number, amount_minor=amount, currency=currency,
        allow_partial=allow_partial, stan=stan), token)


def _capture(server: Server, token: str, authorization_id: str, amount: int,
             request_id: str | None = None) -> pb.AuthorizeReply:
    return call(server.pos.Capture, pb.CaptureRequest(
        request_id=request_id or rid("cap"), authorization_id=authorization_id,
        amount_minor=amount), token)


def _void(server: Server, token: str, authorization_id: str) -> pb.AuthorizeReply:
    return call(server.pos.Void, pb.VoidRequest(request_id=rid("void"),
                                                authorization_id=authorization_id), token)


def _refund(server: Server, token: str, authorization_id: str, amount: int) -> pb.AuthorizeReply:
    return call(server.pos.Refund, pb.RefundRequest(
        request_id=rid("ref"), authorization_id=authorization_id, amount_minor=amount), token)


def _reverse(server: Server, token: str, original: str) -> pb.AuthorizeReply:
    return call(server.pos.Reverse, pb.ReverseRequest(request_id=rid("rev"),
                                                      original_request_id=original), token)


def _load(server: Server, token: str, number: str, amount: int, request_id: str,
          currency: str = "USD", payment_ref: str = "pay-1") -> pb.ValueReply:
    return call(server.cards.LoadValue, pb.LoadValueRequest(
        request_id=request_id, card_number=number, amount_minor=amount, currency=currency,
        payment_ref=payment_ref), token)


def _action(server: Server, token: str, rpc: str, number: str,
            request_id: str | None = None, reason: str = "") -> pb.CardReply:
    method = getattr(server.cards, rpc)
    return call(method, pb.CardActionRequest(request_id=request_id or rid(rpc),
                                             card_number=number, reason=reason), token)


def _assert_balance(server: Server, alliance: Alliance, number: str, balance_minor: int,
                    held_minor: int, status: int = S.ACTIVE) -> None:
    reply = balance(server, alliance, number)
    assert reply.result == R.APPROVED
    assert (reply.balance_minor, reply.held_minor, reply.available_minor, reply.status) == (
        balance_minor, held_minor, balance_minor - held_minor, status)
    assert reply.currency == "USD"
    assert reply.points == 0


# ------------------------------------------------------------------------------ a card's story


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_a_card_story_over_grpc(server: Server, alliance: Alliance) -> None:
    t1, manager = alliance.tokens["t1"], alliance.tokens["s1_manager"]
    a, b = card_number(1), card_number(2)

    # IssueCard, replay, mismatch, existing number
    issue_request = pb.IssueCardRequest(request_id="issue-1", card_number=a,
                                        card_class="STANDARD", currency="USD",
                                        customer_ref="cust-1")
    issued = call(server.cards.IssueCard, issue_request, manager)
    assert issued.result == R.APPROVED and not issued.replayed
    card = issued.card
    assert (card.card_number, card.card_class, card.status, card.currency, card.version) == (
        a, "STANDARD", S.ISSUED, "USD", 1)
    assert (card.issuing_partner_id, card.issuing_store_id) == ("P1", "S1")
    assert (card.balance_minor, card.held_minor, card.available_minor, card.points) == (0, 0, 0, 0)
    again = call(server.cards.IssueCard, issue_request, manager)
    assert again.replayed and again.result == R.APPROVED and again.card == card
    issue_request.customer_ref = "cust-2"
    mismatch = call(server.cards.IssueCard, issue_request, manager)
    assert mismatch.result == R.DUPLICATE_REQUEST_MISMATCH and not mismatch.replayed
    taken = call(server.cards.IssueCard, pb.IssueCardRequest(
        request_id="issue-2", card_number=a, card_class="STANDARD", currency="USD"), manager)
    assert taken.result == R.DECLINED_CARD_EXISTS

    # not active yet: no spending
    assert _auth(server, t1, a, 100, "auth-0").result == R.DECLINED_CARD_NOT_ACTIVE

    # ActivateCard
    activated = _action(server, manager, "ActivateCard", a, reason="welcome")
    assert activated.result == R.APPROVED and activated.card.status == S.ACTIVE
    assert _action(server, manager, "ActivateCard", a).result == R.DECLINED_INVALID_STATE

    # LoadValue, replay, mismatch, currency
    loaded = _load(server, t1, a, 10_000, "load-1")
    assert (loaded.result, loaded.balance_minor, loaded.available_minor, loaded.replayed) == (
        R.APPROVED, 10_000, 10_000, False)
    replayed = _load(server, t1, a, 10_000, "load-1")
    assert (replayed.result, replayed.balance_minor, replayed.replayed) == (
        R.APPROVED, 10_000, True)
    assert _load(server, t1, a, 9_000, "load-1").result == R.DUPLICATE_REQUEST_MISMATCH
    assert _load(server, t1, a, 500, "load-eur", "EUR").result == R.DECLINED_CURRENCY_MISMATCH
    _assert_balance(server, alliance, a, 10_000, 0)

    # Authorize, replay, mismatch
    a1 = _auth(server, t1, a, 2_500, "auth-1", stan="000123")
    assert (a1.result, a1.approved_amount_minor, a1.available_minor, a1.replayed) == (
        R.APPROVED, 2_500, 7_500, False)
    assert a1.authorization_id
    a1_again = _auth(server, t1, a, 2_500, "auth-1", stan="000123")
    assert a1_again.replayed and a1_again.authorization_id == a1.authorization_id
    assert a1_again.approved_amount_minor == 2_500
    assert _auth(server, t1, a, 2_600, "auth-1").result == R.DUPLICATE_REQUEST_MISMATCH
    _assert_balance(server, alliance, a, 10_000, 2_500)

    # Capture (partial: the rest is released), replay, second capture
    c1 = _capture(server, t1, a1.authorization_id, 2_000, "cap-1")
    assert (c1.result, c1.approved_amount_minor, c1.available_minor) == (
        R.APPROVED, 2_000, 8_000)
    assert c1.authorization_id == a1.authorization_id
    assert _capture(server, t1, a1.authorization_id, 2_000, "cap-1").replayed
    assert _capture(server, t1, a1.authorization_id, 0).result == \
        R.DECLINED_AUTHORIZATION_NOT_PENDING
    _assert_balance(server, alliance, a, 8_000, 0)

    # Refund, up to the captured amount
    refunded = _refund(server, t1, a1.authorization_id, 500)
    assert (refunded.result, refunded.available_minor) == (R.APPROVED, 8_500)
    assert _refund(server, t1, a1.authorization_id, 1_600).result == \
        R.DECLINED_REFUND_EXCEEDS_CAPTURED
    assert _refund(server, t1, a1.authorization_id, 1_500).result == R.APPROVED
    _assert_balance(server, alliance, a, 10_000, 0)

    # Void
    a2 = authorize(server, t1, a, 1_000)
    assert a2.available_minor == 9_000
    voided = _void(server, t1, a2.authorization_id)
    assert (voided.result, voided.available_minor) == (R.APPROVED, 10_000)
    assert _void(server, t1, a2.authorization_id).result == R.DECLINED_AUTHORIZATION_NOT_PENDING
    assert _capture(server, t1, a2.authorization_id, 0).result == \
        R.DECLINED_AUTHORIZATION_NOT_PENDING

    # Reverse an Authorize
    a3 = _auth(server, t1, a, 700, "auth-3")
    assert a3.available_minor == 9_300
    reversed_auth = _reverse(server, t1, "auth-3")
    assert (reversed_auth.result, reversed_auth.available_minor) == (R.APPROVED, 10_000)
    assert _reverse(server, t1, "auth-3").result == R.APPROVED  # again: nothing to undo
    assert _capture(server, t1, a3.authorization_id, 0).result == \
        R.DECLINED_AUTHORIZATION_NOT_PENDING
    _assert_balance(server, alliance, a, 10_000, 0)

    # Reverse a Capture: the value is held again
    a4 = _auth(server, t1, a, 300, "auth-4")
    _capture(server, t1, a4.authorization_id, 0, "cap-4")
    _assert_balance(server, alliance, a, 9_700, 0)
    assert _reverse(server, t1, "cap-4").result == R.APPROVED
    _assert_balance(server, alliance, a, 10_000, 300)
    assert _void(server, t1, a4.authorization_id).result == R.APPROVED

    # Reverse before the original arrives
    assert _reverse(server, t1, "auth-late").result == R.APPROVED
    late = _auth(server, t1, a, 100, "auth-late")
    assert late.result == R.DECLINED_REQUEST_REVERSED and not late.authorization_id
    _assert_balance(server, alliance, a, 10_000, 0)

    # Reverse a LoadValue
    assert _load(server, t1, a, 1_000, "load-2").balance_minor == 11_000
    assert _reverse(server, t1, "load-2").result == R.APPROVED
    _assert_balance(server, alliance, a, 10_000, 0)

    # declines
    assert _auth(server, t1, a, 20_000, rid()).result == R.DECLINED_INSUFFICIENT_FUNDS
    partial = _auth(server, t1, a, 20_000, rid(), allow_partial=True)
    assert (partial.result, partial.approved_amount_minor, partial.available_minor) == (
        R.PARTIALLY_APPROVED, 10_000, 0)
    assert _void(server, t1, partial.authorization_id).result == R.APPROVED
    assert _auth(server, t1, a, 100, rid(), currency="EUR").result == \
        R.DECLINED_CURRENCY_MISMATCH
    assert _auth(server, t1, card_number(999), 100, rid()).result == R.DECLINED_CARD_NOT_FOUND
    assert _capture(server, t1, f"{card_number(999)}.5", 0).result == \
        R.DECLINED_AUTHORIZATION_NOT_FOUND
    assert _capture(server, t1, f"{a}.999", 0).result == R.DECLINED_AUTHORIZATION_NOT_FOUND
    a5 = authorize(server, t1, a, 1_000)
    assert _capture(server, t1, a5.authorization_id, 1_001).result == \
        R.DECLINED_AMOUNT_EXCEEDS_AUTHORIZATION
    _assert_balance(server, alliance, a, 10_000, 1_000)

    # Block / Unblock
    blocked = _action(server, manager, "BlockCard", a, reason="lost")
    assert blocked.result == R.APPROVED and blocked.card.status == S.BLOCKED
    assert _auth(server, t1, a, 100, rid()).result == R.DECLINED_CARD_NOT_ACTIVE
    assert _load(server, t1, a, 100, rid()).result == R.DECLINED_CARD_NOT_ACTIVE
    assert _action(server, manager, "BlockCard", a).result == R.DECLINED_INVALID_STATE
    _assert_balance(server, alliance, a, 10_000, 1_000, S.BLOCKED)
    assert _action(server, manager, "UnblockCard", a).card.status == S.ACTIVE
    assert _action(server, manager, "UnblockCard", a).result == R.DECLINED_INVALID_STATE

    # ReplaceCard: not onto a number in use; balance and the open hold move to the new card
    other = issue(server, alliance, 50, activate=False)
    assert call(server.cards.ReplaceCard, pb.ReplaceCardRequest(
        request_id=rid(), card_number=a, new_card_number=other),
        manager).result == R.DECLINED_CARD_EXISTS
    replace_request = pb.ReplaceCardRequest(request_id="replace-1", card_number=a,
                                            new_card_number=b, reason="damaged")
    replaced = call(server.cards.ReplaceCard, replace_request, manager)
    assert replaced.result == R.APPROVED
    assert (replaced.card.card_number, replaced.card.status, replaced.card.balance_minor,
            replaced.card.held_minor) == (b, S.ACTIVE, 10_000, 1_000)
    assert (replaced.card.issuing_partner_id, replaced.card.issuing_store_id) == ("P1", "S1")
    assert call(server.cards.ReplaceCard, replace_request, manager).replayed
    old = get_card(server, alliance, a).card
    assert (old.status, old.replaced_by, old.balance_minor, old.held_minor) == (
        S.REPLACED, b, 0, 0)
    assert _auth(server, t1, a, 100, rid()).result == R.DECLINED_CARD_NOT_ACTIVE
    assert _action(server, manager, "ActivateCard", a).result == R.DECLINED_INVALID_STATE
    moved = _capture(server, t1, a5.authorization_id, 0)  # the old id still works
    assert (moved.result, moved.approved_amount_minor) == (R.APPROVED, 1_000)
    _assert_balance(server, alliance, b, 9_000, 0)

    # CloseCard: only with a zero balance
    assert _action(server, manager, "CloseCard", b).result == R.DECLINED_INVALID_STATE
    drain = authorize(server, t1, b, 9_000)
    assert _capture(server, t1, drain.authorization_id, 0).available_minor == 0
    closed = _action(server, manager, "CloseCard", b, reason="customer left")
    assert closed.result == R.APPROVED and closed.card.status == S.CLOSED
    assert _auth(server, t1, b, 1, rid()).result == R.DECLINED_CARD_NOT_ACTIVE
    assert _action(server, manager, "CloseCard", b).result == R.DECLINED_INVALID_STATE

    # GetCard
    auditor = alliance.tokens["auditor"]
    got = call(server.cards.GetCard, pb.GetCardRequest(card_number=a), auditor)
    assert got.result == R.APPROVED and got.card.status == S.REPLACED
    assert call(server.cards.GetCard, pb.GetCardRequest(card_number=card_number(999)),
                auditor).result == R.DECLINED_CARD_NOT_FOUND
    assert call(server.pos.GetBalance, pb.GetBalanceRequest(card_number=card_number(999)),
                t1).result == R.DECLINED_CARD_NOT_FOUND

    # ListMovements: the whole history, then paged
    movements = all_movements(server, auditor, a)
    assert [m.version for m in movements] == list(range(1, got.card.version + 1))
    assert [m.kind for m in movements] == [
        "ISSUED", "ACTIVATED", "LOADED", "AUTHORIZED", "CAPTURED", "REFUNDED", "REFUNDED",
        "AUTHORIZED", "VOIDED", "AUTHORIZED", "REVERSED", "AUTHORIZED", "CAPTURED",
        "CAPTURE_REVERSED", "VOIDED", "LOADED", "LOAD_REVERSED", "AUTHORIZED", "VOIDED",
        "AUTHORIZED", "BLOCKED", "UNBLOCKED", "REPLACED"]
    first_auth = movements[3]
    assert (first_auth.amount_minor, first_auth.balance_minor, first_auth.held_minor,
            first_auth.store_id, first_auth.terminal_id, first_auth.request_id) == (
        2_500, 10_000, 2_500, "S1", "T1", "auth-1")
    assert (movements[4].amount_minor, movements[4].balance_minor,
            movements[4].held_minor) == (2_000, 8_000, 0)
    assert (movements[-1].balance_minor, movements[-1].held_minor) == (0, 0)
    for m in movements:
        assert m.recorded_at.endswith("Z")
        parsed = datetime.datetime.fromisoformat(m.recorded_at.replace("Z", "+00:00"))
        assert parsed.utcoffset() == datetime.timedelta(0)
    for limit in (1, 2, 3, 7):
        pages: list[pb.Movement] = []
        after = 0
        while True:
            page = call(server.cards.ListMovements, pb.ListMovementsRequest(
                card_number=a, after_version=after, limit=limit), auditor).movements
            assert len(page) <= limit
            if not page:
                break
            pages.extend(page)
            after = page[-1].version
        assert pages == movements
    default_page = call(server.cards.ListMovements, pb.ListMovementsRequest(card_number=a),
                        auditor).movements
    assert list(default_page) == movements
    tail = call(server.cards.ListMovements, pb.ListMovementsRequest(
        card_number=a, after_version=20), auditor).movements
    assert [m.version for m in tail] == [21, 22, 23]
    assert not call(server.cards.ListMovements, pb.ListMovementsRequest(
        card_number=a, after_version=got.card.version), auditor).movements
    assert not call(server.cards.ListMovements, pb.ListMovementsRequest(
        card_number=card_number(999)), auditor).movements
    new_card = [m.kind for m in all_movements(server, auditor, b)]
    assert new_card == ["ISSUED_AS_REPLACEMENT", "CAPTURED", "AUTHORIZED", "CAPTURED",
                        "CLOSED"]


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_list_movements_pages_beyond_the_default_and_the_cap(server: Server,
                                                             alliance: Alliance) -> None:
    number = issue(server, alliance, 3, load=1_000_000)
    for _ in range(130):
        authorize(server, alliance.tokens["t1"], number, 1)
    total = 2 + 1 + 130  # issued, activated, loaded, authorizations
    auditor = alliance.tokens["auditor"]
    default = call(server.cards.ListMovements, pb.ListMovementsRequest(card_number=number),
                   auditor).movements
    assert [m.version for m in default] == list(range(1, 101))  # the server default: 100
    capped = call(server.cards.ListMovements,
                  pb.ListMovementsRequest(card_number=number, limit=4_000_000_000),
                  auditor).movements
    assert [m.version for m in capped] == list(range(1, total + 1))
    rest = call(server.cards.ListMovements,
                pb.ListMovementsRequest(card_number=number, after_version=100), auditor)
    assert [m.version for m in rest.movements] == list(range(101, total + 1))


def _check_after_version(server: Server, alliance: Alliance, after_version: int) -> None:
    number = issue(server, alliance, 4)
    request = pb.ListMovementsRequest(card_number=number, after_version=after_version, limit=10)
    try:
        reply = call(server.cards.ListMovements, request, alliance.tokens["auditor"])
    except grpc.RpcError as error:
        # Malformed would be fine too, as long as it names the field; an internal error is not.
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        assert "after_version" in (error.details() or "")
    else:
        assert not reply.movements


@pytest.mark.parametrize("after_version", [3, 50, 2**31, 2**32 + 7])
def test_list_movements_after_the_last_version_is_an_empty_page(
        server: Server, alliance: Alliance, after_version: int) -> None:
    _check_after_version(server, alliance, after_version)


@pytest.mark.parametrize("after_version", [2**63 - 1, 2**63, 2**64 - 1])
def test_list_movements_after_a_huge_version_is_an_empty_page(
        server: Server, alliance: Alliance, after_version: int) -> None:
    _check_after_version(server, alliance, after_version)


def test_holds_expire_after_the_class_ttl(server: Server, alliance: Alliance,
                                          clock: FakeClock) -> None:
    admin, t1 = alliance.admin_token, alliance.tokens["t1"]
    defined = call(server.admin.DefineCardClass, pb.DefineCardClassRequest(
        request_id=rid(), card_class="SHORT", max_balance_major=1_000,
        hold_ttl_seconds=3_600), admin)
    assert defined.result == R.APPROVED
    number = issue(server, alliance, 5, card_class="SHORT", load=5_000)
    held = authorize(server, t1, number, 1_200)
    _assert_balance(server, alliance, number, 5_000, 1_200)
    clock.advance(3_601)
    _assert_balance(server, alliance, number, 5_000, 0)
    assert _capture(server, t1, held.authorization_id, 0).result == \
        R.DECLINED_AUTHORIZATION_NOT_PENDING
    kinds = [m.kind for m in all_movements(server, admin, number)]
    assert kinds[-1] == "EXPIRED"


def test_a_reverse_naming_its_own_request_id_fails_alone(server: Server,
                                                         alliance: Alliance) -> None:
    """Either INVALID_ARGUMENT naming original_request_id or an APPROVED no-op is fine; an
    UNAVAILABLE that no retry can cure, and that takes its neighbours down with it, is not.
    (Regression: the request's key and its tombstone once collided in one transaction.)"""
    t1 = alliance.tokens["t1"]
    number = issue(server, alliance, 11, load=10_000)
    request = pb.ReverseRequest(request_id="self-1", original_request_id="self-1")
    for _ in range(2):  # a retry does not help
        failed = status_of(server.pos.Reverse, request, t1)
        if failed is not None:
            assert failed.code == grpc.StatusCode.INVALID_ARGUMENT, failed
            assert "original_request_id" in failed.details
    ops = [pb.PosOperation(authorize=pb.AuthorizeRequest(
        request_id=rid(), card_number=number, amount_minor=100, currency="USD")),
        pb.PosOperation(reverse=pb.ReverseRequest(request_id="self-2",
                                                  original_request_id="self-2")),
        pb.PosOperation(authorize=pb.AuthorizeRequest(
            request_id=rid(), card_number=number, amount_minor=100, currency="USD"))]
    replies, status = batch_status(server, t1, pb.BatchRequest(operations=ops))
    assert status is None
    first, middle, last = replies[0].replies
    assert first.reply.result == R.APPROVED and last.reply.result == R.APPROVED
    assert not middle.error.startswith("UNAVAILABLE"), middle.error


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_state_and_replays_survive_a_restart(server: Server, alliance: Alliance,
                                             clock: FakeClock) -> None:
    """A new ledger on the same database (snapshot at 100 events plus newer events, request
    keys read back from the database) answers exactly as the old one did."""
    t1, admin = alliance.tokens["t1"], alliance.admin_token
    number = issue(server, alliance, 12, load=100_000)
    holds = [_auth(server, t1, number, 10, f"r-{i}") for i in range(130)]
    for held in holds[:40]:
        assert _capture(server, t1, held.authorization_id, 0).result == R.APPROVED
    for held in holds[40:60]:
        assert _void(server, t1, held.authorization_id).result == R.APPROVED
    assert _reverse(server, t1, "r-129").result == R.APPROVED  # a known original
    assert _reverse(server, t1, "late-1").result == R.APPROVED  # before its original
    card_before = get_card(server, alliance, number).card
    assert (card_before.balance_minor, card_before.held_minor) == (99_600, 690)
    server.ledger.stop()

    fresh = Ledger(server.ledger.store, clock_us=clock).start()
    thread = ServerThread(fresh).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{thread.port}")
    try:
        cards, pos = pb_grpc.CardServiceStub(channel), pb_grpc.PosServiceStub(channel)
        assert call(cards.GetCard, pb.GetCardRequest(card_number=number),
                    admin).card == card_before
        replay = call(pos.Authorize, pb.AuthorizeRequest(
            request_id="r-5", card_number=number, amount_minor=10, currency="USD"), t1)
        assert replay.replayed and replay.authorization_id == holds[5].authorization_id
        mismatch = call(pos.Authorize, pb.AuthorizeRequest(
            request_id="r-6", card_number=number, amount_minor=11, currency="USD"), t1)
        assert mismatch.result == R.DUPLICATE_REQUEST_MISMATCH
        captured = call(pos.Capture, pb.CaptureRequest(
            request_id=rid(), authorization_id=holds[100].authorization_id), t1)
        assert (captured.result, captured.approved_amount_minor) == (R.APPROVED, 10)
        assert call(pos.Capture, pb.CaptureRequest(
            request_id=rid(), authorization_id=holds[0].authorization_id),
            t1).result == R.DECLINED_AUTHORIZATION_NOT_PENDING
        late = call(pos.Authorize, pb.AuthorizeRequest(
            request_id="late-1", card_number=number, amount_minor=10, currency="USD"), t1)
        assert late.result == R.DECLINED_REQUEST_REVERSED
        again = call(pos.Reverse, pb.ReverseRequest(request_id=rid(),
                                                    original_request_id="r-129"), t1)
        assert again.result == R.APPROVED  # reversed before: nothing more to undo
        after = call(pos.GetBalance, pb.GetBalanceRequest(card_number=number), admin)
        assert (after.balance_minor, after.held_minor) == (99_590, 680)
    finally:
        channel.close()
        thread.stop(grace_s=1.0, quiet_s=0)
        fresh.stop()


# ------------------------------------------------------------------------------ the registry


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_admin_service_story(server: Server, alliance: Alliance) -> None:
    admin = alliance.admin_token
    partner = pb.RegisterPartnerRequest(request_id="partner-3", partner_id="P3", name="Coffee",
                                        currency="EUR")
    assert call(server.admin.RegisterPartner, partner, admin) == pb.AdminReply(
        result=R.APPROVED)
    assert call(server.admin.RegisterPartner, partner, admin) == pb.AdminReply(
        result=R.APPROVED, replayed=True)
    partner.name = "Tea"
    assert call(server.admin.RegisterPartner, partner,
                admin).result == R.DUPLICATE_REQUEST_MISMATCH
    partner.request_id = "partner-3b"
    assert call(server.admin.RegisterPartner, partner, admin).result == R.DECLINED_INVALID_STATE

    store = pb.RegisterStoreRequest(request_id=rid(), partner_id="P3", store_id="S3",
                                    name="Berlin", timezone="Europe/Berlin")
    assert call(server.admin.RegisterStore, store, admin).result == R.APPROVED
    assert call(server.admin.RegisterStore, store, admin).replayed
    store.request_id = rid()
    assert call(server.admin.RegisterStore, store, admin).result == R.DECLINED_INVALID_STATE
    terminal = pb.RegisterTerminalRequest(request_id=rid(), store_id="S3", terminal_id="T30")
    assert call(server.admin.RegisterTerminal, terminal, admin).result == R.APPROVED
    assert call(server.admin.RegisterTerminal, terminal, admin).replayed
    terminal.request_id = rid()
    assert call(server.admin.RegisterTerminal, terminal, admin).result == \
        R.DECLINED_INVALID_STATE

    create = pb.CreateCredentialRequest(
        request_id="cred-t30", label="till 30",
        principal=pb.Principal(role=pb.TERMINAL, partner_id="P3", store_id="S3",
                               terminal_id="T30"))
    created = call(server.admin.CreateCredential, create, admin)
    assert created.result == R.APPROVED and not created.replayed
    assert created.credential_id and created.token
    again = call(server.admin.CreateCredential, create, admin)
    assert again.replayed and again.credential_id == created.credential_id
    assert again.token == ""  # shown once
    create.label = "other"
    assert call(server.admin.CreateCredential, create,
                admin).result == R.DUPLICATE_REQUEST_MISMATCH

    number = issue(server, alliance, 6, load=1_000)
    seen = call(server.pos.GetBalance, pb.GetBalanceRequest(card_number=number), created.token)
    assert (seen.result, seen.available_minor) == (R.APPROVED, 1_000)
    spent = authorize(server, created.token, number, 400)
    assert spent.available_minor == 600

    revoke = pb.RevokeCredentialRequest(request_id="revoke-t30",
                                        credential_id=created.credential_id)
    assert call(server.admin.RevokeCredential, revoke, admin) == pb.AdminReply(
        result=R.APPROVED)
    assert call(server.admin.RevokeCredential, revoke, admin).replayed
    revoke.request_id = rid()
    assert call(server.admin.RevokeCredential, revoke, admin).result == \
        R.DECLINED_INVALID_STATE
    denied = status_of(server.pos.GetBalance, pb.GetBalanceRequest(card_number=number),
                       created.token)
    assert denied is not None and denied.code == grpc.StatusCode.UNAUTHENTICATED


def test_card_class_limits_loads(server: Server, alliance: Alliance) -> None:
    admin = alliance.admin_token
    assert call(server.admin.DefineCardClass, pb.DefineCardClassRequest(
        request_id=rid(), card_class="SMALL", max_balance_major=100,
        hold_ttl_seconds=3_600), admin).result == R.APPROVED
    number = issue(server, alliance, 7, card_class="SMALL")
    assert _load(server, admin, number, 10_000, rid()).result == R.APPROVED  # 100.00 USD
    assert _load(server, admin, number, 1, rid()).result == R.DECLINED_LIMIT_EXCEEDED
    _assert_balance(server, alliance, number, 10_000, 0)


def test_issue_card_generates_a_luhn_valid_number(server: Server, alliance: Alliance) -> None:
    request = pb.IssueCardRequest(request_id="gen-1", card_class="VIP", currency="USD")
    issued = call(server.cards.IssueCard, request, alliance.tokens["s1_manager"])
    number = issued.card.card_number
    assert issued.result == R.APPROVED and number.isdigit() and 12 <= len(number) <= 19
    digits = [int(d) for d in reversed(number)]
    assert (sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])) % 10 == 0
    again = call(server.cards.IssueCard, request, alliance.tokens["s1_manager"])
    assert again.replayed and again.card.card_number == number


# ------------------------------------------------------------------------------ Batch


class BatchStream:
    """One Batch call fed message by message: send() returns that message's reply."""

    def __init__(self, server: Server, token: str) -> None:
        self._outbox: queue.Queue[pb.BatchRequest | None] = queue.Queue()
        self._replies: Iterator[pb.BatchReply] = server.pos.Batch(
            iter(self._outbox.get, None), metadata=metadata(token), timeout=300)

    def send(self, message: pb.BatchRequest) -> pb.BatchReply:
        self._outbox.put(message)
        return next(self._replies)

    def close(self) -> list[pb.BatchReply]:
        self._outbox.put(None)
        return list(self._replies)


def _authorize_op(terminal: str, request_id: str, number: str, amount: int) -> pb.PosOperation:
    return pb.PosOperation(terminal_id=terminal, authorize=pb.AuthorizeRequest(
        request_id=request_id, card_number=number, amount_minor=amount, currency="USD"))


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_batch_of_1000_operations_by_a_gateway(server: Server, alliance: Alliance) -> None:
    gateway = alliance.tokens["gw1"]
    cards = [issue(server, alliance, 100 + i, load=1_000_000) for i in range(10)]
    ops = [_authorize_op("T1" if i % 2 == 0 else "T2", f"b-{i}", cards[i % 10], i + 1)
           for i in range(1000)]
    ops[123].authorize.amount_minor = 0  # malformed
    ops[456].terminal_id = "T3"  # a terminal of another store
    ops[457].terminal_id = "TA1"  # a terminal of another partner
    ops[789].terminal_id = ""  # a gateway must name the terminal
    ops[901].authorize.card_number = cards[0][:-1] + str((int(cards[0][-1]) + 1) % 10)  # Luhn
    ops[902] = pb.PosOperation(terminal_id="T2")  # no operation at all
    ops[950] = pb.PosOperation(terminal_id="T1", load=pb.LoadValueRequest(
        request_id="b-950", card_number=cards[0], amount_minor=5, currency="USD",
        payment_ref="cash"))
    errors = {123: "amount_minor", 456: "T3", 457: "TA1", 789: "terminal_id",
              901: "card_number", 902: ""}
    before = db_state(server.ledger)

    stream = BatchStream(server, gateway)
    first = stream.send(pb.BatchRequest(operations=ops))
    assert len(first.replies) == 1000
    held = dict.fromkeys(cards, 0)
    authorizations: list[tuple[int, str]] = []
    for i, reply in enumerate(first.replies):
        if i in errors:
            assert reply.error and errors[i] in reply.error, (i, reply)
            assert not reply.HasField("reply"), (i, reply)
            continue
        assert not reply.error, (i, reply.error)
        if i == 950:
            assert (reply.reply.result, reply.reply.approved_amount_minor) == (R.APPROVED, 5)
            continue
        assert (reply.reply.result, reply.reply.approved_amount_minor) == (R.APPROVED, i + 1), i
        assert reply.reply.authorization_id.startswith(cards[i % 10] + "."), i
        assert not reply.reply.replayed
        held[cards[i % 10]] += i + 1
        authorizations.append((i, reply.reply.authorization_id))
    assert errors.keys() == {i for i, r in enumerate(first.replies) if r.error}
    assert len({a for _, a in authorizations}) == len(authorizations) == 993
    for i in (122, 124, 455, 458, 788, 790, 900, 903):
        assert first.replies[i].reply.result == R.APPROVED, i
    for number in cards:
        loaded = 1_000_005 if number == cards[0] else 1_000_000
        _assert_balance(server, alliance, number, loaded, held[number])
    after = db_state(server.ledger)
    assert after.request_keys - before.request_keys == 994  # one per applied operation

    # the same stream: capture the first half, void the rest (one reply message per message)
    follow = [pb.PosOperation(terminal_id="T1" if i % 2 == 0 else "T2",
                              capture=pb.CaptureRequest(request_id=f"c-{i}",
                                                        authorization_id=auth))
              if n < 500 else
              pb.PosOperation(terminal_id="T2", void=pb.VoidRequest(request_id=f"v-{i}",
                                                                   authorization_id=auth))
              for n, (i, auth) in enumerate(authorizations)]
    second = stream.send(pb.BatchRequest(operations=follow))
    assert len(second.replies) == len(follow)
    assert all(not r.error and r.reply.result == R.APPROVED for r in second.replies)
    captured = dict.fromkeys(cards, 0)
    for i, _ in authorizations[:500]:
        captured[cards[i % 10]] += i + 1
    for number in cards:
        loaded = 1_000_005 if number == cards[0] else 1_000_000
        _assert_balance(server, alliance, number, loaded - captured[number], 0)

    # the first message again: every applied operation replays, the errors stay errors
    third = stream.send(pb.BatchRequest(operations=ops))
    assert len(third.replies) == 1000
    for i, (old, new) in enumerate(zip(first.replies, third.replies, strict=True)):
        if i in errors:
            assert new.error, i
            continue
        assert new.reply.replayed and new.reply.authorization_id == old.reply.authorization_id
        assert new.reply.approved_amount_minor == old.reply.approved_amount_minor
    assert stream.close() == []

    # nothing was recorded for the rejected operations: their request ids are still free
    fixed = [_authorize_op("T1", "b-123", cards[3], 124), _authorize_op("T1", "b-456", cards[6],
                                                                           457)]
    replies, status = batch_status(server, gateway, pb.BatchRequest(operations=fixed))
    assert status is None
    assert [(r.reply.result, r.reply.replayed) for r in replies[0].replies] == [
        (R.APPROVED, False), (R.APPROVED, False)]


def test_batch_by_a_terminal_uses_its_own_terminal(server: Server, alliance: Alliance) -> None:
    number = issue(server, alliance, 8, load=1_000)
    t1 = alliance.tokens["t1"]
    ops = [_authorize_op("", "tb-1", number, 100), _authorize_op("T1", "tb-2", number, 100),
           _authorize_op("T2", "tb-3", number, 100)]
    replies, status = batch_status(server, t1, pb.BatchRequest(operations=ops))
    assert status is None
    first, second, third = replies[0].replies
    assert first.reply.result == R.APPROVED and second.reply.result == R.APPROVED
    assert third.error  # a terminal may not act for another terminal
    # a TERMINAL's Batch shares the key space of its unary calls
    assert _auth(server, t1, number, 100, "tb-1").replayed


def test_batch_repeats_inside_one_message_and_records_the_terminal(server: Server,
                                                                  alliance: Alliance) -> None:
    number = issue(server, alliance, 10, load=10_000)
    ops = [_authorize_op("T1", "dup-1", number, 100), _authorize_op("T1", "dup-1", number, 100),
           _authorize_op("T1", "dup-1", number, 200), _authorize_op("T2", "dup-1", number, 300)]
    replies, status = batch_status(server, alliance.tokens["gw1"],
                                   pb.BatchRequest(operations=ops))
    assert status is None
    first, same, different, other_terminal = (r.reply for r in replies[0].replies)
    assert (first.result, first.replayed) == (R.APPROVED, False)
    assert (same.result, same.replayed, same.authorization_id) == (
        R.APPROVED, True, first.authorization_id)
    assert different.result == R.DUPLICATE_REQUEST_MISMATCH
    assert (other_terminal.result, other_terminal.replayed) == (R.APPROVED, False)
    _assert_balance(server, alliance, number, 10_000, 400)
    authorized = [m for m in all_movements(server, alliance.admin_token, number)
                  if m.kind == "AUTHORIZED"]
    assert [(m.store_id, m.terminal_id, m.request_id, m.amount_minor) for m in authorized] == [
        ("S1", "T1", "dup-1", 100), ("S1", "T2", "dup-1", 300)]


@pytest.mark.parametrize("count", [0, 1001])
def test_batch_size_outside_1_to_1000_is_invalid(server: Server, alliance: Alliance,
                                                 count: int) -> None:
    number = issue(server, alliance, 9, load=100_000)
    ops = [_authorize_op("T1", f"n-{i}", number, 1) for i in range(count)]
    before = db_state(server.ledger)
    replies, status = batch_status(server, alliance.tokens["gw1"],
                                   pb.BatchRequest(operations=ops))
    assert replies == []
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "operations" in status.details
    assert db_state(server.ledger) == before


# ------------------------------------------------------------------------------ health, reflection


def test_health_check_serving(server: Server) -> None:
    stub = health_pb2_grpc.HealthStub(server.channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _reflect(server: Server, request: reflection_pb2.ServerReflectionRequest
             ) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    (reply,) = list(stub.ServerReflectionInfo(iter([request]), timeout=30))
    return reply


def test_reflection_lists_the_services(server: Server) -> None:
    reply = _reflect(server, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in reply.list_services_response.service}
    assert {"loyalty.v1.PosService", "loyalty.v1.CardService", "loyalty.v1.AdminService",
            "grpc.health.v1.Health"} <= names


def _served_file(server: Server) -> descriptor_pb2.FileDescriptorProto:
    reply = _reflect(server, reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="loyalty.v1.PosService"))
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in reply.file_descriptor_response.file_descriptor_proto]
    (served,) = [f for f in files if f.package == "loyalty.v1"]
    return served


def _contract_file(tmp: Path) -> descriptor_pb2.FileDescriptorProto:
    out = tmp / "contract.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{CONTRACT.parent}",
                    f"--descriptor_set_out={out}", CONTRACT.name], check=True)
    (contract,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    return contract


@pytest.mark.skipif(not CONTRACT.exists(), reason=f"no contract at {CONTRACT}")
def test_served_descriptor_keeps_the_contract(server: Server, tmp_path: Path) -> None:
    """Every service, RPC, message, field (name, number, type) and enum value of the contract
    is served unchanged (additions are allowed)."""
    served, contract = _served_file(server), _contract_file(tmp_path)
    assert served.package == contract.package
    services = {s.name: {m.name: m for m in s.method} for s in served.service}
    for service in contract.service:
        for method in service.method:
            got = services[service.name][method.name]
            assert (got.input_type, got.output_type, got.client_streaming,
                    got.server_streaming) == (method.input_type, method.output_type,
                                              method.client_streaming, method.server_streaming)
    messages = {m.name: {f.number: f for f in m.field} for m in served.message_type}
    for message in contract.message_type:
        for field in message.field:
            got_field = messages[message.name][field.number]
            assert (got_field.name, got_field.type, got_field.label, got_field.type_name,
                    got_field.oneof_index) == (field.name, field.type, field.label,
                                               field.type_name, field.oneof_index), \
                f"{message.name}.{field.name}"
    enums = {e.name: {v.name: v.number for v in e.value} for e in served.enum_type}
    for enum in contract.enum_type:
        for value in enum.value:
            assert enums[enum.name][value.name] == value.number
