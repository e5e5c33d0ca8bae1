"""Handlers as plain functions of a handler context (ledger/handlers/context.py): no Ledger, no
writer thread, no database. A State over a store that holds nothing (every card and key the
tests need is in the state's caches, put there by the handlers themselves), the registry built
by the registry handlers, then tables of (who, command, expected result or refusal)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from domain.cards import commands as cc
from domain.cards import retention
from domain.common import InvalidInput, Principal, Result, Role
from domain.purchases import commands as pc
from domain.rules.model import Line
from ledger.codec import Outcome, encode
from ledger.handlers import HANDLERS
from ledger.handlers.context import Ctx, Services
from ledger.pricing import RuleBook
from ledger.refusals import Denied, StillWriting
from ledger.state import State
from ledger.store import KeyRow, Tail
from ledger.work import Request, Work, key_space_of
from tests.support.alliance import PRINCIPALS, SETUP, TEST_COUPON_KEY, card_number

NOW_US = 1_780_000_000_000_000
USD = "USD"
ADMIN = Principal(Role.ADMIN)


class NothingStored:
    """The store behind the state: empty, and only the reads a handler may make of it (an
    unexpected call fails with AttributeError instead of reaching a database)."""

    def load_tails(self, stream_ids: Any, snapshot_topic: str | None) -> list[tuple[int, Tail]]:
        return [(position, Tail(0, None, [])) for position in range(len(stream_ids))]

    def find_keys(self, pairs: Any) -> dict[Any, Any]:
        return {}

    def stream(self, stream_id: Any, *, gt: int | None = None) -> list[Any]:
        return []  # a late refund's read of a card's story (ledger/handlers/late.py)

    def lanes(self) -> list[int]:
        return [0]  # one log


class Desk:
    """Calls handlers the way the writer does once a request is authenticated: the principal
    given, the key space of the contract, one unit of work per call."""

    def __init__(self) -> None:
        self.state = State(NothingStored())  # type: ignore[arg-type]
        numbers = (card_number(900_000 + n) for n in itertools.count())
        self.services = Services(RuleBook(), TEST_COUPON_KEY, lambda: next(numbers))
        self.work = Work()
        self.ids = itertools.count(1)

    def __call__(self, who: str | Principal, command: Any, request_id: str = "") -> Outcome:
        principal = PRINCIPALS[who] if isinstance(who, str) else who
        request = Request(f"cred-{who}", command, lambda _: None,
                          key_space_of(f"cred-{who}", principal), request_id)
        self.work = Work()
        outcome = HANDLERS[type(command)](Ctx(request, principal, self.work, NOW_US,
                                              self.state, self.services))
        assert isinstance(outcome, Outcome), outcome
        return outcome

    def keyed(self, who: str, command: Any, request_id: str) -> Outcome:
        """As above, and the request key recorded as the writer records it (for Reverse)."""
        outcome = self(who, command, request_id)
        principal = PRINCIPALS[who]
        self.state.key_cache.put(KeyRow(key_space_of(f"cred-{who}", principal), request_id,
                                        b"digest", encode(outcome)))
        return outcome

    def card(self, load: int = 0, *, activate: bool = True) -> str:
        number = self("s1_manager", cc.IssueCard("", "STANDARD", USD, "", "")).card_number
        if activate:
            assert self("s1_manager", cc.ActivateCard(number, "")).result == Result.APPROVED
        if load:
            assert self("s1_manager", cc.LoadValue(number, load, USD, "psp")).result == 1
        return number

    def hold(self, number: str, amount: int, who: str = "t1") -> str:
        reply = self(who, cc.Authorize(number, amount, USD, False, ""))
        assert reply.result == Result.APPROVED, reply
        return reply.authorization_id


@pytest.fixture
def desk() -> Iterator[Desk]:
    built = Desk()
    for command in SETUP:
        assert built(ADMIN, command).result == Result.APPROVED
    yield built


def test_the_registry_handlers_build_the_alliance_in_the_state(desk: Desk) -> None:
    assert set(desk.state.registry.stores) == {"S1", "S2", "A1"}
    assert desk.state.registry.terminals["T3"].store_id == "S2"
    # the last one (RegisterTerminal TA1): one registry event at the registry's new version
    assert desk.work.registry_touched and len(desk.work.stored) == 1
    assert desk.work.stored[0].originator_version == desk.state.registry.version == len(SETUP)


# ------------------------------------------------------------------------------ issue


ISSUE = [
    # who, issuing store, expected result or refusal
    ("s1_manager", "", Result.APPROVED),  # the manager's own store
    ("p1_manager", "S2", Result.APPROVED),
    ("admin", "A1", Result.APPROVED),
    ("p1_manager", "", InvalidInput),  # no store of its own: it must name one
    ("s1_manager", "S9", InvalidInput),  # unknown store
    ("p2_manager", "S1", Denied),  # another partner's store
    ("gw1", "", Result.APPROVED),  # a gateway: cards its store's tills sell
    ("gw1", "S2", Denied),
    ("t1", "S1", Denied),
    ("auditor", "S1", Denied),
]


@pytest.mark.parametrize(("who", "store", "expected"), ISSUE)
def test_issue(desk: Desk, who: str, store: str, expected: Any) -> None:
    command = cc.IssueCard("", "STANDARD", USD, "cust", store)
    principal = ADMIN if who == "admin" else who
    if not isinstance(expected, Result):
        with pytest.raises(expected):
            desk(principal, command)
        assert not desk.work.stored  # refused before anything was recorded
        return
    reply = desk(principal, command)
    assert reply.result == expected
    assert reply.card is not None and reply.card.status == 1  # ISSUED
    assert reply.card.issuing_store_id == (store or "S1")
    assert len(desk.work.stored) == 1


def test_issue_with_a_number_in_use_is_declined_and_writes_nothing(desk: Desk) -> None:
    number = desk.card()
    reply = desk("s1_manager", cc.IssueCard(number, "STANDARD", USD, "", ""))
    assert reply.result == Result.DECLINED_CARD_EXISTS
    assert not desk.work.stored


# ------------------------------------------------------------------------------ load


LOADS = [
    # who, card active, amount, expected result or refusal, balance after
    ("s1_manager", True, 500, Result.APPROVED, 500),
    ("t1", True, 500, Result.APPROVED, 500),  # a terminal of the issuing partner
    ("t_air", True, 500, Denied, 0),  # a terminal of another partner
    ("auditor", True, 500, Denied, 0),
    ("s1_manager", False, 500, Result.APPROVED, 500),  # issued, not yet active: loadable
    ("s1_manager", True, 10**12, Result.DECLINED_LIMIT_EXCEEDED, 0),  # above the class max
]


@pytest.mark.parametrize(("who", "active", "amount", "expected", "balance"), LOADS)
def test_load(desk: Desk, who: str, active: bool, amount: int, expected: Any,
              balance: int) -> None:
    number = desk.card(activate=active)
    command = cc.LoadValue(number, amount, USD, "psp")
    if not isinstance(expected, Result):
        with pytest.raises(expected):
            desk(who, command)
    else:
        reply = desk(who, command)
        assert reply.result == expected
        assert reply.approved_amount_minor == (amount if expected == Result.APPROVED else 0)
    assert desk.state.card(number).balance_minor == balance  # type: ignore[union-attr]


def test_load_on_an_unknown_card_is_declined(desk: Desk) -> None:
    reply = desk("s1_manager", cc.LoadValue(card_number(1), 500, USD, "psp"))
    assert reply.result == Result.DECLINED_CARD_NOT_FOUND and not desk.work.stored


# ------------------------------------------------------------------------------ authorize


AUTHORIZE = [
    # who, amount, allow_partial, expected, approved, held after (the card holds 1000)
    ("t1", 400, False, Result.APPROVED, 400, 400),
    ("t1", 1_000, False, Result.APPROVED, 1_000, 1_000),
    ("t1", 1_500, False, Result.DECLINED_INSUFFICIENT_FUNDS, 0, 0),
    ("t1", 1_500, True, Result.PARTIALLY_APPROVED, 1_000, 1_000),
    ("t_air", 400, False, Result.APPROVED, 400, 400),  # any terminal may spend on any card
    ("gw1", 400, False, Result.APPROVED, 400, 400),
    ("s1_manager", 400, False, Denied, 0, 0),  # not a POS caller
    ("auditor", 400, False, Denied, 0, 0),
]


@pytest.mark.parametrize(("who", "amount", "partial", "expected", "approved", "held"),
                         AUTHORIZE)
def test_authorize(desk: Desk, who: str, amount: int, partial: bool, expected: Any,
                   approved: int, held: int) -> None:
    number = desk.card(load=1_000)
    command = cc.Authorize(number, amount, USD, partial, "")
    if not isinstance(expected, Result):
        with pytest.raises(expected):
            desk(who, command)
    else:
        reply = desk(who, command)
        assert (reply.result, reply.approved_amount_minor) == (expected, approved)
        assert bool(reply.authorization_id) == (approved > 0)
    card = desk.state.card(number)
    assert card is not None
    assert (card.balance_minor, card.held_minor) == (1_000, held)


@pytest.mark.parametrize(("currency", "active", "expected"), [
    ("EUR", True, Result.DECLINED_CURRENCY_MISMATCH),
    (USD, False, Result.DECLINED_CARD_NOT_ACTIVE),
])
def test_authorize_declines(desk: Desk, currency: str, active: bool, expected: Result) -> None:
    number = desk.card(activate=active)
    reply = desk("t1", cc.Authorize(number, 100, currency, False, ""))
    assert reply.result == expected and not desk.work.stored


# ------------------------------------------------------------------------------ follow-ups


FOLLOW_UPS = [
    # who, command for the hold of 600 made by t1 at S1, expected, (balance, held) after
    ("t1", lambda a: cc.Capture(a, 0), Result.APPROVED, (400, 0)),
    ("t1", lambda a: cc.Capture(a, 250), Result.APPROVED, (750, 0)),  # the rest is released
    ("t1", lambda a: cc.Capture(a, 700), Result.DECLINED_AMOUNT_EXCEEDS_AUTHORIZATION,
     (1_000, 600)),
    ("t2", lambda a: cc.Capture(a, 0), Result.APPROVED, (400, 0)),  # same store
    ("gw1", lambda a: cc.Void(a), Result.APPROVED, (1_000, 0)),
    ("t3", lambda a: cc.Capture(a, 0), Denied, (1_000, 600)),  # another store
    ("t_air", lambda a: cc.Void(a), Denied, (1_000, 600)),
    ("t1", lambda a: cc.Refund(a, 10), Result.DECLINED_AUTHORIZATION_NOT_PENDING,
     (1_000, 600)),  # nothing captured yet
    ("t1", lambda a: cc.Capture(a[:-1] + ("0" if a[-1] != "0" else "1"), 0),
     Result.DECLINED_AUTHORIZATION_NOT_FOUND, (1_000, 600)),
]


@pytest.mark.parametrize(("who", "make", "expected", "after"), FOLLOW_UPS)
def test_follow_ups(desk: Desk, who: str, make: Any, expected: Any,
                    after: tuple[int, int]) -> None:
    number = desk.card(load=1_000)
    command = make(desk.hold(number, 600))
    if not isinstance(expected, Result):
        with pytest.raises(expected):
            desk(who, command)
    else:
        assert desk(who, command).result == expected
    card = desk.state.card(number)
    assert card is not None and (card.balance_minor, card.held_minor) == after


def test_a_refund_never_exceeds_what_was_captured(desk: Desk) -> None:
    number = desk.card(load=1_000)
    hold = desk.hold(number, 600)
    assert desk("t1", cc.Capture(hold, 300)).result == Result.APPROVED
    assert desk("t1", cc.Refund(hold, 200)).result == Result.APPROVED
    assert desk("t1", cc.Refund(hold, 101)).result == Result.DECLINED_REFUND_EXCEEDS_CAPTURED
    assert desk("t1", cc.Refund(hold, 100)).result == Result.APPROVED
    assert desk.state.card(number).balance_minor == 1_000  # type: ignore[union-attr]


def test_an_authorization_the_card_let_go_is_not_pending_not_unknown(
        desk: Desk) -> None:
    number = desk.card(load=100_000)
    first = desk.hold(number, 1)
    assert desk.keyed("t1", cc.Capture(first, 0), "cap-first").result == Result.APPROVED
    for _ in range(retention.AUTHORIZATIONS_IN_MEMORY):
        assert desk("t1", cc.Capture(desk.hold(number, 1), 0)).result == Result.APPROVED
    assert first not in desk.state.card(number).holds  # type: ignore[union-attr]
    # (a Refund or a capture Reverse of it reads the card's stream: tests/integration)
    assert desk("t1", cc.Capture(first, 0)).result == Result.DECLINED_AUTHORIZATION_NOT_PENDING
    assert desk("t1", cc.Void(first)).result == Result.DECLINED_AUTHORIZATION_NOT_PENDING
    never = f"{number}.{10**6}"  # beyond the card's history: unknown
    assert desk("t1", cc.Refund(never, 1)).result == Result.DECLINED_AUTHORIZATION_NOT_FOUND
    # The desk's store holds none of the card's events, as when they are decided but not yet
    # durable: a refund read from the stream could miss one, so it is refused for a retry.
    with pytest.raises(StillWriting):
        desk("t1", cc.Refund(first, 1))


def test_a_return_of_a_purchase_the_card_let_go_is_declined_as_too_old(desk: Desk) -> None:
    number = desk.card(load=100_000)

    def buy() -> str:
        outcome = desk("t1", pc.Purchase(number, USD, (Line("sku", "cat", 1, 10),), 10, False,
                                         0, "", "receipt"))
        assert outcome.result == Result.APPROVED and outcome.purchase is not None
        return outcome.purchase.purchase_id

    first = buy()
    for _ in range(retention.PURCHASES_KEPT_MAX):
        buy()
    back = pc.Return(first, (pc.ReturnLine(0, 1),), "changed mind")
    assert desk("t1", back).result == Result.DECLINED_RETURN_WINDOW_CLOSED
    kept = pc.Return(buy(), (pc.ReturnLine(0, 1),), "changed mind")
    assert desk("t1", kept).result == Result.APPROVED
    unknown = pc.Return(f"{number}.{10**6}", (pc.ReturnLine(0, 1),), "changed mind")
    assert desk("t1", unknown).result == Result.DECLINED_PURCHASE_NOT_FOUND


# ------------------------------------------------------------------------------ reverse


def test_reverse_an_authorization_releases_the_hold_and_marks_the_original(desk: Desk) -> None:
    number = desk.card(load=1_000)
    original = desk.keyed("t1", cc.Authorize(number, 300, USD, False, ""), "auth-1")
    assert original.result == Result.APPROVED
    reply = desk("t1", cc.Reverse("auth-1"), "rev-1")
    assert reply.result == Result.APPROVED
    assert desk.state.card(number).held_minor == 0  # type: ignore[union-attr]
    assert [(k.key_space, k.request_id) for k in desk.work.keys] == [("t:T1#reversed", "auth-1")]


def test_reverse_a_load_takes_the_value_back(desk: Desk) -> None:
    number = desk.card()
    desk.keyed("t1", cc.LoadValue(number, 700, USD, "psp"), "load-1")
    assert desk("t1", cc.Reverse("load-1"), "rev-1").result == Result.APPROVED
    assert desk.state.card(number).balance_minor == 0  # type: ignore[union-attr]


def test_reverse_before_the_original_leaves_a_tombstone(desk: Desk) -> None:
    reply = desk("t1", cc.Reverse("auth-late"), "rev-1")
    assert reply.result == Result.APPROVED and not desk.work.stored
    rows = {(k.key_space, k.request_id): k for k in desk.work.keys}
    assert set(rows) == {("t:T1", "auth-late"), ("t:T1#reversed", "auth-late")}
    tombstone = rows[("t:T1", "auth-late")]
    assert tombstone.payload_hash == b""  # matches no payload: the original is declined


def test_reverse_of_another_key_space_finds_nothing_to_undo(desk: Desk) -> None:
    number = desk.card(load=1_000)
    desk.keyed("t1", cc.Authorize(number, 300, USD, False, ""), "auth-1")
    assert desk("t2", cc.Reverse("auth-1"), "rev-1").result == Result.APPROVED  # a tombstone
    assert desk.state.card(number).held_minor == 300  # type: ignore[union-attr]


@pytest.mark.parametrize(("who", "expected"), [
    ("t1", Result.APPROVED), ("gw1", Result.APPROVED), ("admin", Result.APPROVED),
    ("s1_manager", Denied), ("p1_manager", Denied), ("auditor", Denied)])
def test_who_may_reverse(desk: Desk, who: str, expected: Any) -> None:
    principal = ADMIN if who == "admin" else who
    if not isinstance(expected, Result):
        with pytest.raises(expected):
            desk(principal, cc.Reverse("x-1"), "rev-1")
        assert not desk.work.keys
    else:
        assert desk(principal, cc.Reverse("x-1"), "rev-1").result == expected


def test_a_reverse_naming_its_own_request_id_is_invalid(desk: Desk) -> None:
    with pytest.raises(InvalidInput):
        desk("t1", cc.Reverse("rev-1"), "rev-1")
