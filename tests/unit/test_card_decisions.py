"""Table-driven tests for the pure card decisions in domain/cards/decide.py.

Every row builds its starting state by folding hand-written events (so the tests do not depend
on the decisions they check), runs one decision and compares the Result and the event types.
Every approving row is then applied with `evolve` on a copy of the state to check the ledger
invariants: each event's legs sum to zero, balance - held stays >= 0, version grows by one per
event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from domain.cards import events as ev
from domain.cards.commands import (
    ActivateCard,
    Authorize,
    BlockCard,
    Capture,
    CardAction,
    CloseCard,
    IssueCard,
    LoadValue,
    Refund,
    UnblockCard,
    Void,
)
from domain.cards.decide import (
    CardState,
    Context,
    Decision,
    HoldStatus,
    decide_action,
    decide_authorize,
    decide_capture,
    decide_issue,
    decide_load,
    decide_refund,
    decide_replace,
    decide_reverse_authorize,
    decide_reverse_capture,
    decide_reverse_load,
    decide_void,
    evolve,
    expired_holds,
    fold,
    held_at,
)
from domain.common import APPROVALS, CardStatus, Meta, Result, Role, luhn_complete
from domain.postings import Leg

# ------------------------------------------------------------------------------ fixtures

CARD = luhn_complete("627700000000001")
NEW_CARD = luhn_complete("627700000000002")
ISSUER = "P-ISSUER"
ACQUIRER = "P-ACQ"
ISSUING_STORE = "S-HOME"
STORE = "S-SHOP"
T0 = 1_700_000_000_000_000  # microseconds since the epoch
TTL = 15 * 60 * 1_000_000  # 15 minutes
MAX_BALANCE = 5_000

AVAIL = f"card:{CARD}:available"
HELD = f"card:{CARD}:held"
NEW_AVAIL = f"card:{NEW_CARD}:available"
NEW_HELD = f"card:{NEW_CARD}:held"
FUNDING = f"partner:{ISSUER}:sv_funding"
CLEARING = f"clearing:{ISSUER}:{ACQUIRER}"


def make_meta(request_id: str = "req-1", *, at_us: int = T0, role: Role = Role.TERMINAL,
              partner_id: str = ACQUIRER, store_id: str = STORE, terminal_id: str = "T1",
              credential_id: str = "cred-1") -> Meta:
    return Meta(request_id=request_id, credential_id=credential_id, role=int(role),
                partner_id=partner_id, store_id=store_id, terminal_id=terminal_id,
                recorded_at_us=at_us)


META = make_meta()


def make_ctx(*, now_us: int = T0, max_balance_minor: int = MAX_BALANCE, hold_ttl_us: int = TTL,
             acquirer_partner_id: str = ACQUIRER, meta: Meta = META) -> Context:
    return Context(meta=meta, now_us=now_us, max_balance_minor=max_balance_minor,
                   hold_ttl_us=hold_ttl_us, acquirer_partner_id=acquirer_partner_id)


CTX = make_ctx()


def auth_id(version: int, card: str = CARD) -> str:
    return f"{card}.{version}"


# --- hand-written events (legs written out literally, not through domain.postings) ---------


def issued() -> ev.CardIssued:
    return ev.CardIssued(META, CARD, "STANDARD", "EUR", ISSUER, ISSUING_STORE, "cust-1")


def activated() -> ev.CardActivated:
    return ev.CardActivated(META, "sold")


def blocked() -> ev.CardBlocked:
    return ev.CardBlocked(META, "lost")


def closed() -> ev.CardClosed:
    return ev.CardClosed(META, "customer request")


def loaded(amount: int) -> ev.ValueLoaded:
    return ev.ValueLoaded(META, amount, "pay-1", (Leg(FUNDING, -amount), Leg(AVAIL, amount)))


def authorized(version: int, amount: int, *, requested: int | None = None,
               expires_at_us: int = T0 + TTL) -> ev.ValueAuthorized:
    return ev.ValueAuthorized(
        META, auth_id(version), amount if requested is None else requested, amount,
        expires_at_us, ACQUIRER, "000001", (Leg(AVAIL, -amount), Leg(HELD, amount)))


def captured(version: int, amount: int, released: int = 0) -> ev.AuthorizationCaptured:
    legs: tuple[Leg, ...] = (Leg(HELD, -amount), Leg(CLEARING, amount))
    if released:
        legs += (Leg(HELD, -released), Leg(AVAIL, released))
    return ev.AuthorizationCaptured(META, auth_id(version), amount, released, legs)


def released(version: int, amount: int, reason: str) -> ev.AuthorizationReleased:
    return ev.AuthorizationReleased(META, auth_id(version), amount, reason,
                                    (Leg(HELD, -amount), Leg(AVAIL, amount)))


def refunded(version: int, amount: int) -> ev.ValueRefunded:
    return ev.ValueRefunded(META, auth_id(version), amount,
                            (Leg(CLEARING, -amount), Leg(AVAIL, amount)))


def replaced(available: int, held: int) -> ev.CardReplaced:
    legs: tuple[Leg, ...] = ()
    if available:
        legs += (Leg(AVAIL, -available), Leg(NEW_AVAIL, available))
    if held:
        legs += (Leg(HELD, -held), Leg(NEW_HELD, held))
    return ev.CardReplaced(META, NEW_CARD, "lost", legs)


# --- named histories ----------------------------------------------------------------------
# Versions: issued=1, activated=2, loaded(1000)=3, the first authorization=4 (AUTH4, 300).

AUTH4 = auth_id(4)
UNKNOWN_AUTH = auth_id(99)

H_ISSUED = (issued(),)
H_ISSUED_LOADED = (*H_ISSUED, loaded(1000))
H_ISSUED_BLOCKED = (*H_ISSUED, blocked())
H_ACTIVE = (issued(), activated())
H_FUNDED = (*H_ACTIVE, loaded(1000))  # balance 1000, available 1000
H_BLOCKED = (*H_FUNDED, blocked())
H_BLOCKED_EMPTY = (*H_ACTIVE, blocked())
H_CLOSED = (*H_ACTIVE, closed())
H_REPLACED = (*H_FUNDED, replaced(1000, 0))
H_HELD = (*H_FUNDED, authorized(4, 300))  # balance 1000, held 300, available 700
H_HELD_BLOCKED = (*H_HELD, blocked())
H_CAPTURED = (*H_HELD, captured(4, 300))  # balance 700, held 0
H_CAPTURED_BLOCKED = (*H_CAPTURED, blocked())
H_PART_CAPTURED = (*H_HELD, captured(4, 200, released=100))  # balance 800
H_VOIDED = (*H_HELD, released(4, 300, ev.RELEASE_VOIDED))
H_EXPIRED = (*H_HELD, released(4, 300, ev.RELEASE_EXPIRED))
H_REVERSED = (*H_HELD, released(4, 300, ev.RELEASE_REVERSED))
H_REFUNDED_PART = (*H_CAPTURED, refunded(4, 100))
H_ALL_HELD = (*H_FUNDED, authorized(4, 1000))  # available 0
# load 300, spend all of it, close: a closed card with a captured authorization.
H_SPENT = (*H_ACTIVE, loaded(300), authorized(4, 300), captured(4, 300))
H_SPENT_CLOSED = (*H_SPENT, closed())
H_SPENT_REPLACED = (*H_SPENT, replaced(0, 0))


def state_of(history: tuple[ev.CardEvent, ...]) -> CardState:
    state = fold(list(history))
    assert state is not None
    return state


# ------------------------------------------------------------------------------ checks


def ledger_of(events: tuple[ev.CardEvent, ...] | list[ev.CardEvent]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for event in events:
        for leg in getattr(event, "legs", ()):
            totals[leg.account] += leg.amount_minor
    return totals


def apply_checked(state: CardState, events: tuple[ev.CardEvent, ...]) -> CardState:
    """Apply `events` to a copy of `state`, checking the per-event invariants."""
    current = state.copy()
    for event in events:
        legs = getattr(event, "legs", ())
        assert sum(leg.amount_minor for leg in legs) == 0, f"unbalanced {type(event).__name__}"
        before = current.version
        current = evolve(current, event)
        assert current.version == before + 1
        assert current.held_minor >= 0
        assert current.balance_minor - current.held_minor >= 0
        assert current.available_minor == current.balance_minor - current.held_minor
    return current


def assert_ledger_matches(history: tuple[ev.CardEvent, ...], state: CardState) -> None:
    """The legs of the whole history agree with the state: the card's two accounts add up to
    its balance and the ledger as a whole sums to zero."""
    totals = ledger_of(history)
    avail = f"card:{state.card_number}:available"
    held = f"card:{state.card_number}:held"
    assert totals[avail] == state.available_minor
    assert totals[held] == state.held_minor
    assert totals[avail] + totals[held] == state.balance_minor
    assert sum(totals.values()) == 0


@dataclass(frozen=True)
class Row:
    description: str
    history: tuple[ev.CardEvent, ...]
    decide: Callable[[CardState], Decision]
    result: Result
    event_types: tuple[type[ev.CardEvent], ...]
    approved_amount: int | None = None
    status_after: CardStatus | None = None
    released: int = 0  # capture: the part of the hold let go
    new_status: CardStatus | None = None  # replace: the new card's status


def rows_param(rows: list[Row]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("row", rows, ids=[r.description for r in rows])


def run_row(row: Row) -> tuple[Decision, CardState]:
    state = state_of(row.history)
    snapshot = state.copy()
    decision = row.decide(state)
    assert state == snapshot, "decide must not change the state"
    assert decision.result == row.result, row.description
    assert tuple(type(e) for e in decision.events) == row.event_types
    if row.result not in APPROVALS:
        assert decision.events == ()
        assert decision.replacement_events == ()
        return decision, state
    if row.approved_amount is not None:
        assert decision.approved_amount_minor == row.approved_amount
    after = apply_checked(state, decision.events)
    assert after.version == state.version + len(decision.events)
    assert_ledger_matches(row.history + decision.events, after)
    if row.status_after is not None:
        assert after.status == row.status_after
    return decision, after


# ------------------------------------------------------------------------------ issue


@pytest.mark.parametrize(
    ("description", "exists", "result", "event_types"),
    [
        ("new card number is issued", False, Result.APPROVED, (ev.CardIssued,)),
        ("card number in use declines", True, Result.DECLINED_CARD_EXISTS, ()),
    ],
)
def test_decide_issue(description: str, exists: bool, result: Result,
                      event_types: tuple[type, ...]) -> None:
    cmd = IssueCard("", "VIP", "EUR", "cust-9", "")
    decision = decide_issue(cmd, CARD, ISSUER, ISSUING_STORE, exists, META)
    assert decision.result == result, description
    assert tuple(type(e) for e in decision.events) == event_types
    if result == Result.APPROVED:
        state = apply_checked_from_none(decision.events)
        assert state.card_number == CARD
        assert state.card_class == "VIP"
        assert state.currency == "EUR"
        assert state.issuing_partner_id == ISSUER
        assert state.issuing_store_id == ISSUING_STORE
        assert state.customer_ref == "cust-9"
        assert state.status == CardStatus.ISSUED
        assert (state.balance_minor, state.held_minor, state.version) == (0, 0, 1)


def apply_checked_from_none(events: tuple[ev.CardEvent, ...]) -> CardState:
    state = evolve(None, events[0])
    assert state.version == 1
    return apply_checked(state, events[1:])


# ------------------------------------------------------------------------------ lifecycle

STATUS_HISTORIES = {
    "ISSUED": H_ISSUED,
    "ACTIVE": H_ACTIVE,
    "BLOCKED": H_BLOCKED_EMPTY,
    "CLOSED": H_CLOSED,
    "REPLACED": H_REPLACED,
}
ACTIONS: dict[str, tuple[type[CardAction], type[ev.CardEvent], CardStatus, set[str]]] = {
    # action: (command, event on approval, status after, statuses it is allowed from)
    "activate": (ActivateCard, ev.CardActivated, CardStatus.ACTIVE, {"ISSUED"}),
    "block": (BlockCard, ev.CardBlocked, CardStatus.BLOCKED, {"ISSUED", "ACTIVE"}),
    "unblock": (UnblockCard, ev.CardUnblocked, CardStatus.ACTIVE, {"BLOCKED"}),
    "close": (CloseCard, ev.CardClosed, CardStatus.CLOSED, {"ISSUED", "ACTIVE", "BLOCKED"}),
}


def _action(command: type[CardAction]) -> Callable[[CardState], Decision]:
    return lambda s: decide_action(s, command(CARD, "reason"), CTX)


def _action_rows() -> list[Row]:
    rows = []
    for name, (command, event_type, status_after, allowed) in ACTIONS.items():
        for status_name, history in STATUS_HISTORIES.items():
            ok = status_name in allowed
            rows.append(Row(
                f"{name} from {status_name}", history, _action(command),
                Result.APPROVED if ok else Result.DECLINED_INVALID_STATE,
                (event_type,) if ok else (), status_after=status_after if ok else None))
    rows += [
        Row("close with a balance", H_FUNDED, _action(CloseCard),
            Result.DECLINED_INVALID_STATE, ()),
        Row("close with a pending hold", H_HELD, _action(CloseCard),
            Result.DECLINED_INVALID_STATE, ()),
        Row("close a blocked card with a balance", H_BLOCKED, _action(CloseCard),
            Result.DECLINED_INVALID_STATE, ()),
        Row("close an issued card with a balance", H_ISSUED_LOADED, _action(CloseCard),
            Result.DECLINED_INVALID_STATE, ()),
        Row("close after spending everything", H_SPENT, _action(CloseCard),
            Result.APPROVED, (ev.CardClosed,), status_after=CardStatus.CLOSED),
        Row("block with a balance keeps it", H_FUNDED, _action(BlockCard),
            Result.APPROVED, (ev.CardBlocked,), status_after=CardStatus.BLOCKED),
        Row("unblock a funded card", H_BLOCKED, _action(UnblockCard),
            Result.APPROVED, (ev.CardUnblocked,), status_after=CardStatus.ACTIVE),
    ]
    return rows


@rows_param(_action_rows())
def test_decide_action(row: Row) -> None:
    decision, after = run_row(row)
    if decision.result == Result.APPROVED:
        assert decision.events[0].reason == "reason"  # type: ignore[attr-defined]
        before = state_of(row.history)
        assert (after.balance_minor, after.held_minor) == (before.balance_minor,
                                                           before.held_minor)


def test_unblock_of_never_activated_card_does_not_activate_it() -> None:
    state = state_of(H_ISSUED_BLOCKED)
    decision = decide_action(state, UnblockCard(CARD, "found"), CTX)
    if decision.result in APPROVALS:
        state = apply_checked(state, decision.events)
    assert state.status != CardStatus.ACTIVE


# ------------------------------------------------------------------------------ replace


def _replace(new_exists: bool = False) -> Callable[[CardState], Decision]:
    return lambda s: decide_replace(s, NEW_CARD, new_exists, "lost", CTX)


REPLACE_ROWS = [
    Row("replace an issued card", H_ISSUED, _replace(), Result.APPROVED, (ev.CardReplaced,),
        status_after=CardStatus.REPLACED, new_status=CardStatus.ISSUED),
    Row("replace an active card", H_FUNDED, _replace(), Result.APPROVED, (ev.CardReplaced,),
        status_after=CardStatus.REPLACED, new_status=CardStatus.ACTIVE),
    Row("replace a card with a pending hold", H_HELD, _replace(), Result.APPROVED,
        (ev.CardReplaced,), status_after=CardStatus.REPLACED,
        new_status=CardStatus.ACTIVE),
    Row("replace a blocked (lost) card: the new one is ready to spend", H_HELD_BLOCKED,
        _replace(), Result.APPROVED, (ev.CardReplaced,), status_after=CardStatus.REPLACED,
        new_status=CardStatus.ACTIVE),
    Row("replace a closed card", H_CLOSED, _replace(), Result.DECLINED_INVALID_STATE, ()),
    Row("replace a replaced card", H_REPLACED, _replace(), Result.DECLINED_INVALID_STATE, ()),
    Row("replace onto an existing number", H_FUNDED, _replace(new_exists=True),
        Result.DECLINED_CARD_EXISTS, ()),
    Row("status is checked before the new number", H_CLOSED, _replace(new_exists=True),
        Result.DECLINED_INVALID_STATE, ()),
]


@rows_param(REPLACE_ROWS)
def test_decide_replace(row: Row) -> None:
    decision, old_after = run_row(row)
    if decision.result != Result.APPROVED:
        return
    before = state_of(row.history)
    assert tuple(type(e) for e in decision.replacement_events) == (ev.CardIssuedAsReplacement,)
    new_state = apply_checked_from_none(decision.replacement_events)
    # The new card takes over the whole balance and every pending hold.
    assert new_state.card_number == NEW_CARD
    assert new_state.status == row.new_status
    assert new_state.balance_minor == before.balance_minor
    assert new_state.held_minor == before.held_minor
    assert new_state.available_minor == before.available_minor
    assert (new_state.card_class, new_state.currency, new_state.issuing_partner_id,
            new_state.customer_ref) == (before.card_class, before.currency,
                                        before.issuing_partner_id, before.customer_ref)
    assert decision.replacement_events[0].replaces == CARD  # type: ignore[attr-defined]
    # The old card is empty and points at the new one.
    assert old_after.replaced_by == NEW_CARD
    assert (old_after.balance_minor, old_after.held_minor) == (0, 0)
    assert not any(h.status == HoldStatus.PENDING for h in old_after.holds.values())
    # The legs: the old card's accounts end at zero, the new card's hold what moved.
    totals = ledger_of(row.history + decision.events)
    assert totals[AVAIL] == 0 and totals[HELD] == 0
    assert totals[NEW_AVAIL] == before.available_minor
    assert totals[NEW_HELD] == before.held_minor
    assert sum(totals.values()) == 0
    replaced_event = decision.events[0]
    assert sum(leg.amount_minor for leg in replaced_event.legs) == 0  # type: ignore[attr-defined]
    old_accounts = {AVAIL, HELD}
    old_leg_sum = sum(leg.amount_minor for leg in replaced_event.legs  # type: ignore[attr-defined]
                      if leg.account in old_accounts)
    assert old_leg_sum == -before.balance_minor
    assert sum(ledger_of(row.history)[a] for a in old_accounts) + old_leg_sum == 0


def test_replace_moves_pending_holds_with_everything_a_capture_needs() -> None:
    # balance 1000; AUTH4 300 pending; AUTH5 200 captured; AUTH6 100 voided.
    history = (*H_HELD, authorized(5, 200), captured(5, 200), authorized(7, 100),
               released(7, 100, ev.RELEASE_VOIDED))
    state = state_of(history)
    assert (state.balance_minor, state.held_minor) == (800, 300)
    decision = decide_replace(state, NEW_CARD, False, "stolen", CTX)
    assert decision.result == Result.APPROVED
    moved = decision.replacement_events[0].holds  # type: ignore[attr-defined]
    # The pending hold and the refundable capture move; the voided one stays behind.
    assert [m.authorization_id for m in moved] == [AUTH4, auth_id(5)]
    assert moved[0] == ev.HoldMoved(AUTH4, 300, T0 + TTL, STORE, ACQUIRER, authorized_at_us=T0)
    assert moved[1].status == HoldStatus.CAPTURED and moved[1].captured_minor == 200

    old = apply_checked(state, decision.events)
    assert old.status == CardStatus.REPLACED
    new = apply_checked_from_none(decision.replacement_events)
    assert set(new.holds) == {AUTH4, auth_id(5)}
    assert new.holds[AUTH4].status == HoldStatus.PENDING
    # The moved hold can be captured on the new card, and the clearing goes to the acquirer.
    capture = decide_capture(new, Capture(AUTH4, 0), CTX)
    assert capture.result == Result.APPROVED
    assert capture.approved_amount_minor == 300
    assert Leg(f"clearing:{ISSUER}:{ACQUIRER}", 300) in capture.events[0].legs  # type: ignore[attr-defined]
    new = apply_checked(new, capture.events)
    assert (new.balance_minor, new.held_minor) == (500, 0)
    # ...but no longer on the old card: the hold left it (the engine follows replaced_by).
    assert AUTH4 not in old.holds
    assert decide_capture(old, Capture(AUTH4, 0), CTX).result == (
        Result.DECLINED_AUTHORIZATION_NOT_FOUND)
    # Across both cards, the ledger still balances and the new card holds all the value.
    totals = ledger_of(history + decision.events + capture.events)
    assert totals[AVAIL] == totals[HELD] == 0
    assert totals[NEW_AVAIL] + totals[NEW_HELD] == new.balance_minor == 500
    assert sum(totals.values()) == 0


# ------------------------------------------------------------------------------ load


def _load(amount: int, currency: str = "EUR",
          max_balance: int = MAX_BALANCE) -> Callable[[CardState], Decision]:
    ctx = make_ctx(max_balance_minor=max_balance)
    return lambda s: decide_load(s, LoadValue(CARD, amount, currency, "pay-9"), ctx)


LOAD_ROWS = [
    Row("load an issued card", H_ISSUED, _load(500), Result.APPROVED, (ev.ValueLoaded,), 500),
    Row("load an active card", H_FUNDED, _load(500), Result.APPROVED, (ev.ValueLoaded,), 500),
    Row("load a blocked card", H_BLOCKED, _load(500), Result.DECLINED_CARD_NOT_ACTIVE, ()),
    Row("load a closed card", H_CLOSED, _load(500), Result.DECLINED_CARD_NOT_ACTIVE, ()),
    Row("load a replaced card", H_REPLACED, _load(500), Result.DECLINED_CARD_NOT_ACTIVE, ()),
    Row("load in another currency", H_FUNDED, _load(500, "USD"),
        Result.DECLINED_CURRENCY_MISMATCH, ()),
    Row("status is checked before currency", H_BLOCKED, _load(500, "USD"),
        Result.DECLINED_CARD_NOT_ACTIVE, ()),
    Row("load up to exactly the max balance", H_FUNDED, _load(MAX_BALANCE - 1000),
        Result.APPROVED, (ev.ValueLoaded,), MAX_BALANCE - 1000),
    Row("load one past the max balance", H_FUNDED, _load(MAX_BALANCE - 999),
        Result.DECLINED_LIMIT_EXCEEDED, ()),
    Row("held value counts towards the max balance", H_HELD, _load(1, max_balance=1000),
        Result.DECLINED_LIMIT_EXCEEDED, ()),
    Row("first load above the max balance", H_ACTIVE, _load(MAX_BALANCE + 1),
        Result.DECLINED_LIMIT_EXCEEDED, ()),
    Row("currency is checked before the limit", H_FUNDED, _load(MAX_BALANCE, "JPY"),
        Result.DECLINED_CURRENCY_MISMATCH, ()),
]


@rows_param(LOAD_ROWS)
def test_decide_load(row: Row) -> None:
    decision, after = run_row(row)
    if decision.result == Result.APPROVED:
        before = state_of(row.history)
        assert after.balance_minor == before.balance_minor + decision.approved_amount_minor
        assert after.held_minor == before.held_minor
        amount = decision.approved_amount_minor
        assert decision.events[0].legs == (Leg(FUNDING, -amount), Leg(AVAIL, amount))  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ authorize


def _authorize(amount: int, allow_partial: bool = False,
               currency: str = "EUR") -> Callable[[CardState], Decision]:
    return lambda s: decide_authorize(s, Authorize(CARD, amount, currency, allow_partial, "42"),
                                      CTX)


AUTHORIZE_ROWS = [
    Row("approve within available", H_FUNDED, _authorize(250), Result.APPROVED,
        (ev.ValueAuthorized,), 250),
    Row("approve all of available", H_HELD, _authorize(700), Result.APPROVED,
        (ev.ValueAuthorized,), 700),
    Row("more than available, no partial", H_HELD, _authorize(701),
        Result.DECLINED_INSUFFICIENT_FUNDS, ()),
    Row("more than available, partial allowed", H_HELD, _authorize(701, True),
        Result.PARTIALLY_APPROVED, (ev.ValueAuthorized,), 700),
    Row("within available with partial allowed is a full approval", H_HELD,
        _authorize(100, True), Result.APPROVED, (ev.ValueAuthorized,), 100),
    Row("partial with nothing available", H_ALL_HELD, _authorize(1, True),
        Result.DECLINED_INSUFFICIENT_FUNDS, ()),
    Row("empty card, partial allowed", H_ACTIVE, _authorize(1, True),
        Result.DECLINED_INSUFFICIENT_FUNDS, ()),
    Row("issued, not activated", H_ISSUED_LOADED, _authorize(100),
        Result.DECLINED_CARD_NOT_ACTIVE, ()),
    Row("blocked", H_BLOCKED, _authorize(100), Result.DECLINED_CARD_NOT_ACTIVE, ()),
    Row("closed", H_CLOSED, _authorize(100), Result.DECLINED_CARD_NOT_ACTIVE, ()),
    Row("replaced", H_REPLACED, _authorize(100), Result.DECLINED_CARD_NOT_ACTIVE, ()),
    Row("currency mismatch", H_FUNDED, _authorize(100, currency="GBP"),
        Result.DECLINED_CURRENCY_MISMATCH, ()),
    Row("status is checked before currency", H_BLOCKED, _authorize(100, currency="GBP"),
        Result.DECLINED_CARD_NOT_ACTIVE, ()),
    Row("currency is checked before funds", H_ACTIVE, _authorize(100, currency="GBP"),
        Result.DECLINED_CURRENCY_MISMATCH, ()),
]


@rows_param(AUTHORIZE_ROWS)
def test_decide_authorize(row: Row) -> None:
    decision, after = run_row(row)
    if decision.result not in APPROVALS:
        assert decision.authorization_id == ""
        return
    before = state_of(row.history)
    amount = decision.approved_amount_minor
    event = decision.events[0]
    assert isinstance(event, ev.ValueAuthorized)
    assert decision.authorization_id == event.authorization_id == auth_id(before.version + 1)
    assert event.amount_minor == amount
    if decision.result == Result.APPROVED:
        assert event.requested_minor == amount
    else:
        assert event.requested_minor > amount
    assert event.expires_at_us == T0 + TTL
    assert event.acquirer_partner_id == ACQUIRER
    assert event.stan == "42"
    assert event.legs == (Leg(AVAIL, -amount), Leg(HELD, amount))
    assert after.held_minor == before.held_minor + amount
    assert after.balance_minor == before.balance_minor
    hold = after.holds[decision.authorization_id]
    assert (hold.status, hold.amount_minor, hold.store_id, hold.acquirer_partner_id) == (
        HoldStatus.PENDING, amount, STORE, ACQUIRER)


def test_partial_authorization_records_what_was_asked() -> None:
    state = state_of(H_HELD)
    decision = decide_authorize(state, Authorize(CARD, 5000, "EUR", True, ""), CTX)
    assert decision.result == Result.PARTIALLY_APPROVED
    event = decision.events[0]
    assert isinstance(event, ev.ValueAuthorized)
    assert (event.requested_minor, event.amount_minor) == (5000, 700)
    after = apply_checked(state, decision.events)
    assert after.available_minor == 0


def test_authorization_ids_follow_the_version() -> None:
    state = state_of(H_FUNDED)
    ids = []
    for _ in range(3):
        decision = decide_authorize(state, Authorize(CARD, 10, "EUR", False, ""), CTX)
        ids.append(decision.authorization_id)
        state = apply_checked(state, decision.events)
    assert ids == [auth_id(4), auth_id(5), auth_id(6)]
    assert state.held_minor == 30


# ------------------------------------------------------------------------------ capture


def _capture(authorization_id: str, amount: int) -> Callable[[CardState], Decision]:
    return lambda s: decide_capture(s, Capture(authorization_id, amount), CTX)


CAPTURE_ROWS = [
    Row("amount 0 captures the whole hold", H_HELD, _capture(AUTH4, 0), Result.APPROVED,
        (ev.AuthorizationCaptured,), 300, released=0),
    Row("capture exactly the held amount", H_HELD, _capture(AUTH4, 300), Result.APPROVED,
        (ev.AuthorizationCaptured,), 300, released=0),
    Row("partial capture releases the rest", H_HELD, _capture(AUTH4, 120), Result.APPROVED,
        (ev.AuthorizationCaptured,), 120, released=180),
    Row("capture more than held", H_HELD, _capture(AUTH4, 301),
        Result.DECLINED_AMOUNT_EXCEEDS_AUTHORIZATION, ()),
    Row("unknown authorization", H_HELD, _capture(UNKNOWN_AUTH, 0),
        Result.DECLINED_AUTHORIZATION_NOT_FOUND, ()),
    Row("no authorization at all", H_FUNDED, _capture(AUTH4, 0),
        Result.DECLINED_AUTHORIZATION_NOT_FOUND, ()),
    Row("already captured", H_CAPTURED, _capture(AUTH4, 0),
        Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("already captured, exceeding amount", H_CAPTURED, _capture(AUTH4, 10_000),
        Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("voided", H_VOIDED, _capture(AUTH4, 0), Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("expired", H_EXPIRED, _capture(AUTH4, 0), Result.DECLINED_AUTHORIZATION_NOT_PENDING,
        ()),
    Row("reversed", H_REVERSED, _capture(AUTH4, 0), Result.DECLINED_AUTHORIZATION_NOT_PENDING,
        ()),
    Row("a hold made before the card was blocked can still be captured", H_HELD_BLOCKED,
        _capture(AUTH4, 0), Result.APPROVED, (ev.AuthorizationCaptured,), 300,
        released=0),
]


@rows_param(CAPTURE_ROWS)
def test_decide_capture(row: Row) -> None:
    decision, after = run_row(row)
    if decision.result != Result.APPROVED:
        return
    before = state_of(row.history)
    amount = decision.approved_amount_minor
    released_minor = row.released
    event = decision.events[0]
    assert isinstance(event, ev.AuthorizationCaptured)
    assert decision.authorization_id == AUTH4
    assert (event.amount_minor, event.released_minor) == (amount, released_minor)
    expected_legs: tuple[Leg, ...] = (Leg(HELD, -amount), Leg(CLEARING, amount))
    if released_minor:
        expected_legs += (Leg(HELD, -released_minor), Leg(AVAIL, released_minor))
    assert event.legs == expected_legs
    assert after.balance_minor == before.balance_minor - amount
    assert after.held_minor == before.held_minor - 300
    assert after.available_minor == before.available_minor + released_minor
    assert after.holds[AUTH4].status == HoldStatus.CAPTURED
    assert after.holds[AUTH4].captured_minor == amount


# ------------------------------------------------------------------------------ void


def _void(authorization_id: str) -> Callable[[CardState], Decision]:
    return lambda s: decide_void(s, Void(authorization_id), CTX)


VOID_ROWS = [
    Row("void a pending hold", H_HELD, _void(AUTH4), Result.APPROVED,
        (ev.AuthorizationReleased,), 300),
    Row("void on a blocked card", H_HELD_BLOCKED, _void(AUTH4), Result.APPROVED,
        (ev.AuthorizationReleased,), 300),
    Row("void unknown", H_HELD, _void(UNKNOWN_AUTH), Result.DECLINED_AUTHORIZATION_NOT_FOUND,
        ()),
    Row("void captured", H_CAPTURED, _void(AUTH4), Result.DECLINED_AUTHORIZATION_NOT_PENDING,
        ()),
    Row("void twice", H_VOIDED, _void(AUTH4), Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("void expired", H_EXPIRED, _void(AUTH4), Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("void reversed", H_REVERSED, _void(AUTH4), Result.DECLINED_AUTHORIZATION_NOT_PENDING,
        ()),
]


@rows_param(VOID_ROWS)
def test_decide_void(row: Row) -> None:
    decision, after = run_row(row)
    if decision.result == Result.APPROVED:
        event = decision.events[0]
        assert isinstance(event, ev.AuthorizationReleased)
        assert event.reason == ev.RELEASE_VOIDED
        assert event.legs == (Leg(HELD, -300), Leg(AVAIL, 300))
        assert after.holds[AUTH4].status == HoldStatus.VOIDED
        assert (after.balance_minor, after.held_minor) == (1000, 0)


# ------------------------------------------------------------------------------ refund


def _refund(authorization_id: str, amount: int) -> Callable[[CardState], Decision]:
    return lambda s: decide_refund(s, Refund(authorization_id, amount), CTX)


REFUND_ROWS = [
    Row("refund all of a capture", H_CAPTURED, _refund(AUTH4, 300), Result.APPROVED,
        (ev.ValueRefunded,), 300),
    Row("refund part of a capture", H_CAPTURED, _refund(AUTH4, 1), Result.APPROVED,
        (ev.ValueRefunded,), 1),
    Row("refund more than captured", H_CAPTURED, _refund(AUTH4, 301),
        Result.DECLINED_REFUND_EXCEEDS_CAPTURED, ()),
    Row("refund more than a partial capture", H_PART_CAPTURED, _refund(AUTH4, 201),
        Result.DECLINED_REFUND_EXCEEDS_CAPTURED, ()),
    Row("refund all of a partial capture", H_PART_CAPTURED, _refund(AUTH4, 200),
        Result.APPROVED, (ev.ValueRefunded,), 200),
    Row("refund the rest after an earlier refund", H_REFUNDED_PART, _refund(AUTH4, 200),
        Result.APPROVED, (ev.ValueRefunded,), 200),
    Row("refund past the total after an earlier refund", H_REFUNDED_PART, _refund(AUTH4, 201),
        Result.DECLINED_REFUND_EXCEEDS_CAPTURED, ()),
    Row("refund a pending hold", H_HELD, _refund(AUTH4, 100),
        Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("refund a voided hold", H_VOIDED, _refund(AUTH4, 100),
        Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("refund unknown", H_CAPTURED, _refund(UNKNOWN_AUTH, 100),
        Result.DECLINED_AUTHORIZATION_NOT_FOUND, ()),
    Row("refund on a blocked card", H_CAPTURED_BLOCKED, _refund(AUTH4, 300), Result.APPROVED,
        (ev.ValueRefunded,), 300),
    Row("refund on a closed card", H_SPENT_CLOSED, _refund(AUTH4, 300),
        Result.DECLINED_CARD_NOT_ACTIVE, ()),
]


@rows_param(REFUND_ROWS)
def test_decide_refund(row: Row) -> None:
    decision, after = run_row(row)
    if decision.result == Result.APPROVED:
        before = state_of(row.history)
        amount = decision.approved_amount_minor
        assert decision.events[0].legs == (Leg(CLEARING, -amount), Leg(AVAIL, amount))  # type: ignore[attr-defined]
        assert after.balance_minor == before.balance_minor + amount
        assert after.holds[AUTH4].refunded_minor == before.holds[AUTH4].refunded_minor + amount


@pytest.mark.parametrize(
    ("amounts", "results"),
    [
        ((100, 100, 100, 1), (1, 1, 1, 11)),
        ((150, 151, 150), (1, 11, 1)),
        ((300, 1), (1, 11)),
        ((299, 2, 1, 1), (1, 11, 1, 11)),
    ],
    ids=["three-thirds-then-one", "over-in-the-middle", "all-then-one", "almost-all"],
)
def test_refunds_never_exceed_captured_in_total(amounts: tuple[int, ...],
                                                results: tuple[int, ...]) -> None:
    state = state_of(H_CAPTURED)  # 300 captured
    history = list(H_CAPTURED)
    total = 0
    for amount, expected in zip(amounts, results, strict=True):
        decision = decide_refund(state, Refund(AUTH4, amount), CTX)
        assert decision.result == Result(expected)
        state = apply_checked(state, decision.events)
        history += decision.events
        if decision.result == Result.APPROVED:
            total += amount
        assert state.holds[AUTH4].refunded_minor == total <= 300
    assert state.balance_minor == 700 + total
    assert_ledger_matches(tuple(history), state)
    assert ledger_of(history)[CLEARING] == 300 - total


# ------------------------------------------------------------------------------ reversals


def _reverse_auth(authorization_id: str) -> Callable[[CardState], Decision]:
    return lambda s: decide_reverse_authorize(s, authorization_id, CTX)


def _reverse_capture(authorization_id: str) -> Callable[[CardState], Decision]:
    return lambda s: decide_reverse_capture(s, authorization_id, CTX)


def _reverse_load(amount: int) -> Callable[[CardState], Decision]:
    return lambda s: decide_reverse_load(s, "load-req-1", amount, CTX)


REVERSE_ROWS = [
    Row("reverse a pending authorization", H_HELD, _reverse_auth(AUTH4), Result.APPROVED,
        (ev.AuthorizationReleased,), 300),
    Row("reverse a captured authorization", H_CAPTURED, _reverse_auth(AUTH4),
        Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("reverse a voided authorization", H_VOIDED, _reverse_auth(AUTH4),
        Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("reverse an unknown authorization", H_FUNDED, _reverse_auth(AUTH4),
        Result.DECLINED_AUTHORIZATION_NOT_FOUND, ()),
    Row("reverse a capture", H_CAPTURED, _reverse_capture(AUTH4), Result.APPROVED,
        (ev.CaptureReversed,), 300),
    Row("reverse a partial capture", H_PART_CAPTURED, _reverse_capture(AUTH4),
        Result.APPROVED, (ev.CaptureReversed,), 200),
    Row("reverse a capture that was refunded", H_REFUNDED_PART, _reverse_capture(AUTH4),
        Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("reverse a capture of a pending hold", H_HELD, _reverse_capture(AUTH4),
        Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("reverse a capture of a voided hold", H_VOIDED, _reverse_capture(AUTH4),
        Result.DECLINED_AUTHORIZATION_NOT_PENDING, ()),
    Row("reverse an unknown capture", H_FUNDED, _reverse_capture(AUTH4),
        Result.DECLINED_AUTHORIZATION_NOT_FOUND, ()),
    Row("reverse a load", H_FUNDED, _reverse_load(1000), Result.APPROVED,
        (ev.LoadReversed,), 1000),
    Row("reverse a load when held value is in the way", H_HELD, _reverse_load(1000),
        Result.DECLINED_INSUFFICIENT_FUNDS, ()),
    Row("reverse a load up to available", H_HELD, _reverse_load(700), Result.APPROVED,
        (ev.LoadReversed,), 700),
    Row("reverse a load after spending", H_CAPTURED, _reverse_load(1000),
        Result.DECLINED_INSUFFICIENT_FUNDS, ()),
]


@rows_param(REVERSE_ROWS)
def test_decide_reversals(row: Row) -> None:
    decision, after = run_row(row)
    if decision.result != Result.APPROVED:
        return
    before = state_of(row.history)
    amount = decision.approved_amount_minor
    event = decision.events[0]
    if isinstance(event, ev.AuthorizationReleased):
        assert event.reason == ev.RELEASE_REVERSED
        assert after.holds[AUTH4].status == HoldStatus.REVERSED
        assert (after.balance_minor, after.held_minor) == (before.balance_minor, 0)
    elif isinstance(event, ev.CaptureReversed):
        assert event.legs == (Leg(CLEARING, -amount), Leg(HELD, amount))
        hold = after.holds[AUTH4]
        assert (hold.status, hold.amount_minor, hold.captured_minor) == (
            HoldStatus.PENDING, amount, 0)
        assert after.balance_minor == before.balance_minor + amount
        assert after.held_minor == before.held_minor + amount
        # Held again: it can be captured or voided once more.
        assert decide_void(after, Void(AUTH4), CTX).approved_amount_minor == amount
    else:
        assert isinstance(event, ev.LoadReversed)
        assert event.original_request_id == "load-req-1"
        assert event.legs == (Leg(AVAIL, -amount), Leg(FUNDING, amount))
        assert after.balance_minor == before.balance_minor - amount


@pytest.mark.parametrize("history", [H_SPENT_CLOSED, H_SPENT_REPLACED],
                         ids=["closed", "replaced"])
def test_reverse_capture_never_puts_value_on_a_dead_card(
        history: tuple[ev.CardEvent, ...]) -> None:
    state = state_of(history)
    assert (state.balance_minor, state.held_minor) == (0, 0)
    decision = decide_reverse_capture(state, AUTH4, CTX)
    if decision.result in APPROVALS:
        state = apply_checked(state, decision.events)
    assert (state.balance_minor, state.held_minor) == (0, 0)


# ------------------------------------------------------------------------------ expiry


def test_expired_holds_and_held_at() -> None:
    # AUTH4 300 expires at T0+TTL, AUTH5 200 at T0+2*TTL, AUTH6 100 captured (never expires).
    history = (*H_HELD, authorized(5, 200, expires_at_us=T0 + 2 * TTL),
               authorized(6, 100, expires_at_us=T0 + TTL), captured(6, 100))
    state = state_of(history)
    assert (state.balance_minor, state.held_minor) == (900, 500)

    assert expired_holds(state, T0 + TTL - 1, META) == ()
    assert held_at(state, T0 + TTL - 1) == 500
    assert held_at(state, T0 + TTL) == 200  # expiry is inclusive
    assert held_at(state, T0 + 2 * TTL) == 0

    events = expired_holds(state, T0 + TTL, META)
    assert [(type(e), e.authorization_id, e.amount_minor, e.reason)  # type: ignore[attr-defined]
            for e in events] == [(ev.AuthorizationReleased, AUTH4, 300, ev.RELEASE_EXPIRED)]
    assert events[0].legs == (Leg(HELD, -300), Leg(AVAIL, 300))  # type: ignore[attr-defined]
    after = apply_checked(state, events)
    assert after.holds[AUTH4].status == HoldStatus.EXPIRED
    assert (after.balance_minor, after.held_minor) == (900, 200)
    assert held_at(after, T0 + TTL) == after.held_minor == 200
    assert expired_holds(after, T0 + TTL, META) == ()  # nothing is released twice

    later = expired_holds(after, T0 + 10 * TTL, META)
    assert [e.authorization_id for e in later] == [auth_id(5)]  # type: ignore[attr-defined]
    final = apply_checked(after, later)
    assert final.held_minor == 0 and final.available_minor == final.balance_minor == 900
    assert_ledger_matches(history + events + later, final)


def test_expired_hold_cannot_be_captured_voided_or_reversed_once_released() -> None:
    state = state_of(H_HELD)
    now = T0 + TTL + 1
    ctx = make_ctx(now_us=now)
    events = expired_holds(state, now, META)
    assert len(events) == 1
    state = apply_checked(state, events)
    assert decide_capture(state, Capture(AUTH4, 0), ctx).result == (
        Result.DECLINED_AUTHORIZATION_NOT_PENDING)
    assert decide_void(state, Void(AUTH4), ctx).result == (
        Result.DECLINED_AUTHORIZATION_NOT_PENDING)
    assert decide_reverse_authorize(state, AUTH4, ctx).result == (
        Result.DECLINED_AUTHORIZATION_NOT_PENDING)
    # The value is spendable again.
    again = decide_authorize(state, Authorize(CARD, 1000, "EUR", False, ""), ctx)
    assert again.result == Result.APPROVED
    assert again.events[0].expires_at_us == now + TTL  # type: ignore[attr-defined]


def test_hold_expiry_follows_the_context_ttl() -> None:
    state = state_of(H_FUNDED)
    ctx = make_ctx(now_us=T0 + 5, hold_ttl_us=60_000_000)
    decision = decide_authorize(state, Authorize(CARD, 10, "EUR", False, ""), ctx)
    assert decision.events[0].expires_at_us == T0 + 5 + 60_000_000  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ evolve


def test_copy_is_independent() -> None:
    state = state_of(H_HELD)
    copy = state.copy()
    assert copy == state
    evolve(copy, released(4, 300, ev.RELEASE_VOIDED))
    assert state.holds[AUTH4].status == HoldStatus.PENDING
    assert state.held_minor == 300 and copy.held_minor == 0


def test_evolve_rejects_unbalanced_legs() -> None:
    state = state_of(H_FUNDED)
    bad = ev.ValueLoaded(META, 10, "pay", (Leg(FUNDING, -10), Leg(AVAIL, 11)))
    with pytest.raises(AssertionError):
        evolve(state, bad)


def test_every_history_folds_to_a_consistent_ledger() -> None:
    histories = [H_ISSUED, H_ISSUED_LOADED, H_ACTIVE, H_FUNDED, H_BLOCKED, H_CLOSED,
                 H_REPLACED, H_HELD, H_CAPTURED, H_PART_CAPTURED, H_VOIDED, H_EXPIRED,
                 H_REVERSED, H_REFUNDED_PART, H_ALL_HELD, H_SPENT, H_SPENT_CLOSED]
    for history in histories:
        state = state_of(history)
        assert state.version == len(history)
        assert_ledger_matches(history, state)
