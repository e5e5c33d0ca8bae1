"""Card state, `decide` (command + state -> events or a decline) and `evolve` (the only place
state changes). Pure: the clock comes in as `now_us`, generated numbers come in as arguments.

`evolve` mutates the state it is given and returns it: the batching writer folds thousands of
events a second and a copy per event would cost more than the decision. Callers that need the
old state keep a copy (`CardState.copy`).
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Callable
from typing import Any

import msgspec

from domain import postings
from domain.cards import events as ev
from domain.cards import retention
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
from domain.cards.records import History, PurchaseRecord
from domain.common import CardStatus, Meta, Result
from domain.coupons.model import Coupon, CouponStatus
from domain.points.purse import Lot, Purse


class HoldStatus(enum.IntEnum):
    PENDING = 1
    CAPTURED = 2
    VOIDED = 3
    EXPIRED = 4
    REVERSED = 5


class Hold(msgspec.Struct, array_like=True):
    authorization_id: str
    amount_minor: int  # held while PENDING; kept after capture for the record
    status: int
    expires_at_us: int
    store_id: str
    acquirer_partner_id: str
    captured_minor: int = 0
    refunded_minor: int = 0
    at_us: int = 0  # when authorized: the refund window counts from here


class CardState(msgspec.Struct, array_like=True):
    card_number: str
    card_class: str
    currency: str
    issuing_partner_id: str
    issuing_store_id: str
    customer_ref: str
    status: int
    balance_minor: int = 0  # loads - captures + refunds
    held_minor: int = 0  # sum of PENDING holds
    replaced_by: str = ""
    version: int = 0  # number of events in the stream
    holds: dict[str, Hold] = {}
    status_before_block: int = 0  # what UnblockCard restores: a never-activated card stays so
    # The earliest expiry among PENDING holds (NO_EXPIRY when none): expiry checks on the hot
    # path are O(1). `expiries` is a heap of (expires at, version authorized, authorization id)
    # of pending holds; entries of holds that left PENDING are popped when they reach the top.
    next_expiry_us: int = 0
    lots: dict[str, Lot] = {}  # the points purse, by lot id
    purchases: dict[str, PurchaseRecord] = {}
    points_written_off: int = 0  # clawed back after they were spent: the program's loss
    tier: str = ""  # "" = no tier
    tier_since_us: int = 0  # when the card reached its tier (reviews judge it only after)
    coupons: dict[str, Coupon] = {}
    stamps: dict[str, int] = {}  # stamp card key -> stamps held
    points_debt: int = 0  # points owed after returns (POINTS_DEBT policy); paid by new points
    previous_numbers: tuple[str, ...] = ()  # the numbers this card replaced, oldest first
    version_base: int = 0  # events of the cards it replaced: coupon ids stay unique
    history: History = msgspec.field(default_factory=History)
    expiries: list[tuple[int, int, str]] = []
    # Settled authorizations (not PENDING) in the order they settled: the oldest go first
    # (domain.cards.retention), found without walking the pending holds.
    settled: dict[str, None] = {}
    refs: dict[str, int] = {}  # "L<lot id>"/"C<coupon id>" -> kept purchases that name it
    # Points exchange (domain/exchange): the ids of quotes used, until they expire (then a
    # quote is refused as expired anyway: bounded by the exchanges of the last hour at most),
    # and per "<from>><to>" the UTC day and the points taken that day (the daily limit).
    used_quotes: dict[str, int] = {}
    exchanged: dict[str, tuple[int, int]] = {}

    def coupon_id(self, index: int) -> str:
        """The id of the `index`-th (0..9) coupon the next event issues: "K" + the event's
        position in the card's whole history (across replacements) + the index."""
        assert 0 <= index <= 9
        return f"K{self.version_base + self.version + 1}{index}"

    @property
    def available_minor(self) -> int:
        return self.balance_minor - self.held_minor

    @property
    def purse(self) -> Purse:
        """The card's own program's purse: what purchases redeem and earn into."""
        return Purse(tuple(lot for lot in self.lots.values() if not lot.program))

    def purse_of(self, program: str) -> Purse:
        """The purse of one program ("" = the card's own): an exchange's source, or the
        points a purchase redeems at a partner (PurchaseRequest.redeem_program)."""
        return Purse(tuple(lot for lot in self.lots.values() if lot.program == program))

    def copy(self) -> CardState:
        return _copy(self)


NO_EXPIRY = 2**62


class Context(msgspec.Struct, frozen=True):
    """What a decision needs besides the state: who, when, and the card class's limits."""

    meta: Meta
    now_us: int
    max_balance_minor: int
    hold_ttl_us: int
    # The accounting entity of the store where the operation happens: its partner, or the
    # store itself if registered as its own entity (domain.settlement.agreements).
    acquirer_partner_id: str
    issuer_entity: str = ""  # the card's issuing entity ("": its issuing partner)


class Decision(msgspec.Struct, frozen=True):
    result: Result
    events: tuple[ev.CardEvent, ...] = ()
    authorization_id: str = ""
    approved_amount_minor: int = 0
    replacement_events: tuple[ev.CardEvent, ...] = ()  # ReplaceCard: the new card's stream


def decline(result: Result) -> Decision:
    assert result not in (Result.APPROVED, Result.PARTIALLY_APPROVED)
    return Decision(result)


# ------------------------------------------------------------------------------ expiry


def expired_holds(state: CardState, now_us: int, meta: Meta) -> tuple[ev.CardEvent, ...]:
    """Release events for every pending hold whose time is up. The writer records them before
    deciding anything else on the card, so an expired hold never counts against a spend."""
    if now_us < state.next_expiry_us:
        return ()
    # Earliest first (then in the order authorized): a statement that shows a lapse before it
    # is recorded shows it at the version it will be recorded at.
    return tuple(ev.AuthorizationReleased(
        meta, hold.authorization_id, hold.amount_minor, ev.RELEASE_EXPIRED,
        postings.move(postings.held(state.card_number), postings.available(state.card_number),
                      hold.amount_minor)) for hold in lapsed(state, now_us))


def lapsed(state: CardState, now_us: int) -> list[Hold]:
    """Pending holds whose time is up, earliest first: from the expiry heap, not a scan."""
    found: dict[str, Hold] = {}
    for expires_at_us, _, authorization_id in sorted(
            entry for entry in state.expiries if entry[0] <= now_us):
        hold = state.holds.get(authorization_id)
        if (hold is not None and hold.status == HoldStatus.PENDING
                and hold.expires_at_us == expires_at_us):
            found.setdefault(authorization_id, hold)
    return list(found.values())


def held_at(state: CardState, now_us: int) -> int:
    """Held value as of `now_us`, counting expired holds as released (for reads)."""
    if now_us < state.next_expiry_us:
        return state.held_minor
    return state.held_minor - sum(h.amount_minor for h in lapsed(state, now_us))


# ------------------------------------------------------------------------------ lifecycle


def decide_issue(cmd: IssueCard, card_number: str, issuing_partner_id: str,
                 issuing_store_id: str, exists: bool, meta: Meta) -> Decision:
    if exists:
        return decline(Result.DECLINED_CARD_EXISTS)
    return Decision(Result.APPROVED, (ev.CardIssued(
        meta, card_number, cmd.card_class, cmd.currency, issuing_partner_id, issuing_store_id,
        cmd.customer_ref),))


_TRANSITIONS: dict[type[CardAction], tuple[frozenset[int], type[ev.CardEvent]]] = {
    ActivateCard: (frozenset({CardStatus.ISSUED}), ev.CardActivated),
    BlockCard: (frozenset({CardStatus.ISSUED, CardStatus.ACTIVE}), ev.CardBlocked),
    UnblockCard: (frozenset({CardStatus.BLOCKED}), ev.CardUnblocked),
    CloseCard: (frozenset({CardStatus.ISSUED, CardStatus.ACTIVE, CardStatus.BLOCKED}),
                ev.CardClosed),
}


def decide_action(state: CardState, cmd: CardAction, ctx: Context) -> Decision:
    allowed_from, event_class = _TRANSITIONS[type(cmd)]
    if state.status not in allowed_from:
        return decline(Result.DECLINED_INVALID_STATE)
    if isinstance(cmd, CloseCard) and (state.balance_minor != 0 or state.held_minor != 0):
        return decline(Result.DECLINED_INVALID_STATE)
    return Decision(Result.APPROVED, (event_class(ctx.meta, cmd.reason),))


def _moves(hold: Hold) -> bool:
    """Does this authorization follow the card to its replacement? Pending holds (to be
    captured or voided there) and captures with something left to refund."""
    return hold.status == HoldStatus.PENDING or (
        hold.status == HoldStatus.CAPTURED and hold.refunded_minor < hold.captured_minor)


def decide_replace(state: CardState, new_card_number: str, new_exists: bool, reason: str,
                   ctx: Context) -> Decision:
    if state.status not in (CardStatus.ISSUED, CardStatus.ACTIVE, CardStatus.BLOCKED):
        return decline(Result.DECLINED_INVALID_STATE)
    if new_exists:
        return decline(Result.DECLINED_CARD_EXISTS)
    old, new = state.card_number, new_card_number
    legs: tuple[postings.Leg, ...] = ()
    if state.available_minor:
        legs += postings.move(postings.available(old), postings.available(new),
                              state.available_minor)
    if state.held_minor:
        legs += postings.move(postings.held(old), postings.held(new), state.held_minor)
    holds_moved = tuple(moved(h) for h in state.holds.values() if _moves(h))
    # A lost card is blocked, then replaced: the new card is ready to spend.
    status = CardStatus.ISSUED if state.status == CardStatus.ISSUED else CardStatus.ACTIVE
    carried = ev.CarriedLoyalty(
        tuple(state.lots.values()), tuple(_copy(c) for c in state.coupons.values()),
        tuple(state.stamps.items()), tuple(_copy(p) for p in state.purchases.values()),
        state.tier, state.tier_since_us, state.points_debt, state.points_written_off,
        (*state.previous_numbers, old), state.version_base + state.version + 1,
        _copy(state.history))
    return Decision(
        Result.APPROVED,
        (ev.CardReplaced(ctx.meta, new, reason, legs),),
        replacement_events=(ev.CardIssuedAsReplacement(
            ctx.meta, new, old, state.card_class, state.currency, state.issuing_partner_id,
            state.issuing_store_id, state.customer_ref, status, state.balance_minor, holds_moved,
            carried),))


# A replacement whose two cards live in partitions on different servers is written as two
# legs in two transactions, either first (the store chooses), the request key with the last.
# After a crash between them one leg exists without the other; the retry of the same request
# completes it from what the written leg recorded: it writes only the missing leg, exactly as
# the first attempt decided it, or declines when that can no longer be done exactly.


def replacement_context(meta: Meta) -> Context:
    """The context a replacement was decided in, rebuilt from its events' envelope:
    `decide_replace` reads only the meta (no limits, no clock of its own)."""
    return Context(meta, meta.recorded_at_us, 0, 0, "")


def complete_new_leg(before: CardState, replaced: ev.CardReplaced) -> Decision:
    """Half (a): the old card's leg is written (`replaced`, decided on `before`, the old card's
    state just before that event) and the new card does not exist. The new card's leg
    (`replacement_events`) as that decision made it: deciding again on `before` with the
    recorded envelope, number and reason must give `replaced` itself, which shows `before` is
    the state it was decided on. DECLINED_INVALID_STATE if it does not (events of another
    version of the rules): nothing is written then, rather than a new card that disagrees with
    the value the old card's legs moved."""
    decision = decide_replace(before, replaced.new_card_number, False, replaced.reason,
                              replacement_context(replaced.meta))
    if decision.result != Result.APPROVED or decision.events != (replaced,):
        return decline(Result.DECLINED_INVALID_STATE)
    return Decision(Result.APPROVED, replacement_events=decision.replacement_events)


def complete_old_leg(old: CardState, issued: ev.CardIssuedAsReplacement, reason: str,
                     release_meta: Meta) -> Decision:
    """Half (b): the new card's leg is written (`issued`) and the old card was never marked
    replaced. The old card's leg (`events`, for the old card's stream) as the first attempt
    decided it: the holds that had lapsed at its time released (with `release_meta`, the
    system's envelope at that time), then CardReplaced moving what `issued` shows.

    Only while the old card is as it was then: deciding again on it must give `issued`
    exactly (same version, value, holds, points, coupons, purchases). If anything happened to
    the old card since (a spend, a load, a block, another replacement), completing would move
    value the new card does not show, or leave it shown on both: DECLINED_INVALID_STATE, and
    nothing is written (the two cards need an operator, see the README)."""
    if issued.replaces != old.card_number:
        return decline(Result.DECLINED_INVALID_STATE)
    at_us = issued.meta.recorded_at_us
    released = expired_holds(old, at_us, release_meta)
    before = fold(list(released), old.copy()) if released else old
    assert before is not None
    decision = decide_replace(before, issued.card_number, False, reason,
                              replacement_context(issued.meta))
    if decision.result != Result.APPROVED or decision.replacement_events != (issued,):
        return decline(Result.DECLINED_INVALID_STATE)
    return Decision(Result.APPROVED, released + decision.events)


def _copy(value: Any) -> Any:
    """A deep copy of a mutable struct (events never share state with a card)."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(value), type=type(value))


# ------------------------------------------------------------------------------ stored value


def decide_load(state: CardState, cmd: LoadValue, ctx: Context) -> Decision:
    if state.status not in (CardStatus.ISSUED, CardStatus.ACTIVE):
        return decline(Result.DECLINED_CARD_NOT_ACTIVE)
    if cmd.currency != state.currency:
        return decline(Result.DECLINED_CURRENCY_MISMATCH)
    if state.balance_minor + cmd.amount_minor > ctx.max_balance_minor:
        return decline(Result.DECLINED_LIMIT_EXCEEDED)
    legs = postings.move(postings.funding(state.issuing_partner_id),
                         postings.available(state.card_number), cmd.amount_minor)
    return Decision(Result.APPROVED, (ev.ValueLoaded(ctx.meta, cmd.amount_minor,
                                                     cmd.payment_ref, legs),),
                    approved_amount_minor=cmd.amount_minor)


def decide_authorize(state: CardState, cmd: Authorize, ctx: Context) -> Decision:
    if state.status != CardStatus.ACTIVE:
        return decline(Result.DECLINED_CARD_NOT_ACTIVE)
    if cmd.currency != state.currency:
        return decline(Result.DECLINED_CURRENCY_MISMATCH)
    amount = cmd.amount_minor
    result = Result.APPROVED
    available = state.balance_minor - state.held_minor  # state.available_minor, read once
    if available < amount:
        if not cmd.allow_partial or available <= 0:
            return decline(Result.DECLINED_INSUFFICIENT_FUNDS)
        amount, result = available, Result.PARTIALLY_APPROVED
    card_number = state.card_number
    authorization_id = f"{card_number}.{state.version + 1}"
    legs = postings.move(postings.available(card_number), postings.held(card_number), amount)
    event = ev.ValueAuthorized(ctx.meta, authorization_id, cmd.amount_minor, amount,
                               ctx.now_us + ctx.hold_ttl_us, ctx.acquirer_partner_id, cmd.stan,
                               legs)
    return Decision(result, (event,), authorization_id, amount)


def _clearing(state: CardState, ctx: Context, hold: Hold) -> str:
    """The account of what the card's issuing entity owes the entity where it was spent."""
    return postings.clearing(ctx.issuer_entity or state.issuing_partner_id,
                             hold.acquirer_partner_id)


def _pending_hold(state: CardState, authorization_id: str) -> Hold | Result:
    hold = state.holds.get(authorization_id)
    if hold is None:
        return Result.DECLINED_AUTHORIZATION_NOT_FOUND
    if hold.status != HoldStatus.PENDING:
        return Result.DECLINED_AUTHORIZATION_NOT_PENDING
    return hold


def decide_capture(state: CardState, cmd: Capture, ctx: Context) -> Decision:
    hold = _pending_hold(state, cmd.authorization_id)
    if isinstance(hold, Result):
        return decline(hold)
    amount = cmd.amount_minor or hold.amount_minor
    if amount > hold.amount_minor:
        return decline(Result.DECLINED_AMOUNT_EXCEEDS_AUTHORIZATION)
    card_held = postings.held(state.card_number)
    legs = postings.move(card_held, _clearing(state, ctx, hold), amount)
    released = hold.amount_minor - amount
    if released:
        legs += postings.move(card_held, postings.available(state.card_number), released)
    event = ev.AuthorizationCaptured(ctx.meta, hold.authorization_id, amount, released, legs)
    return Decision(Result.APPROVED, (event,), hold.authorization_id, amount)


def release(state: CardState, hold: Hold, reason: str, meta: Meta) -> ev.AuthorizationReleased:
    legs = postings.move(postings.held(state.card_number), postings.available(state.card_number),
                         hold.amount_minor)
    return ev.AuthorizationReleased(meta, hold.authorization_id, hold.amount_minor, reason, legs)


def decide_void(state: CardState, cmd: Void, ctx: Context) -> Decision:
    hold = _pending_hold(state, cmd.authorization_id)
    if isinstance(hold, Result):
        return decline(hold)
    event = release(state, hold, ev.RELEASE_VOIDED, ctx.meta)
    return Decision(Result.APPROVED, (event,), hold.authorization_id, hold.amount_minor)


def refund_window_closed(hold: Hold, now_us: int) -> bool:
    """Is the authorization too old for a refund or a capture reversal? (It leaves the card's
    state at its next event; until then the same rule holds, so the answer never depends on
    whether the card happened to change.)"""
    return hold.at_us <= now_us - retention.REFUND_WINDOW_US


def moved(hold: Hold) -> ev.HoldMoved:
    """A hold as events carry it (to a replacement card, or back into its card)."""
    return ev.HoldMoved(hold.authorization_id, hold.amount_minor, hold.expires_at_us,
                        hold.store_id, hold.acquirer_partner_id, hold.status,
                        hold.captured_minor, hold.refunded_minor, hold.at_us)


def hold_of(m: ev.HoldMoved, at_us: int) -> Hold:
    return Hold(m.authorization_id, m.amount_minor, m.status, m.expires_at_us, m.store_id,
                m.acquirer_partner_id, m.captured_minor, m.refunded_minor,
                m.authorized_at_us or at_us)


def decide_refund(state: CardState, cmd: Refund, ctx: Context,
                  late: Hold | None = None) -> Decision:
    """`late`: the authorization as found in the card's stream when the card no longer keeps it
    in memory (ledger/handlers/late.py); the refund event carries it back."""
    hold = state.holds.get(cmd.authorization_id) or late
    if hold is None:
        return decline(Result.DECLINED_AUTHORIZATION_NOT_FOUND)
    if hold.status != HoldStatus.CAPTURED:
        return decline(Result.DECLINED_AUTHORIZATION_NOT_PENDING)
    if refund_window_closed(hold, ctx.now_us):
        return decline(Result.DECLINED_REFUND_WINDOW_CLOSED)
    if state.status not in (CardStatus.ACTIVE, CardStatus.BLOCKED):
        return decline(Result.DECLINED_CARD_NOT_ACTIVE)
    if hold.refunded_minor + cmd.amount_minor > hold.captured_minor:
        return decline(Result.DECLINED_REFUND_EXCEEDS_CAPTURED)
    legs = postings.move(_clearing(state, ctx, hold),
                         postings.available(state.card_number), cmd.amount_minor)
    event = ev.ValueRefunded(ctx.meta, hold.authorization_id, cmd.amount_minor, legs,
                             moved(hold) if hold.authorization_id not in state.holds else None)
    return Decision(Result.APPROVED, (event,), hold.authorization_id, cmd.amount_minor)


# ------------------------------------------------------------------------------ reversal


def decide_reverse_authorize(state: CardState, authorization_id: str, ctx: Context) -> Decision:
    hold = _pending_hold(state, authorization_id)
    if isinstance(hold, Result):
        return decline(hold)
    event = release(state, hold, ev.RELEASE_REVERSED, ctx.meta)
    return Decision(Result.APPROVED, (event,), authorization_id, hold.amount_minor)


def decide_reverse_capture(state: CardState, authorization_id: str, ctx: Context,
                           late: Hold | None = None) -> Decision:
    hold = state.holds.get(authorization_id) or late
    if hold is None:
        return decline(Result.DECLINED_AUTHORIZATION_NOT_FOUND)
    if hold.status != HoldStatus.CAPTURED or hold.refunded_minor:
        return decline(Result.DECLINED_AUTHORIZATION_NOT_PENDING)
    if refund_window_closed(hold, ctx.now_us):
        return decline(Result.DECLINED_REFUND_WINDOW_CLOSED)
    if state.status not in (CardStatus.ACTIVE, CardStatus.BLOCKED):
        return decline(Result.DECLINED_CARD_NOT_ACTIVE)  # value never lands on a dead card
    legs = postings.move(_clearing(state, ctx, hold),
                         postings.held(state.card_number), hold.captured_minor)
    event = ev.CaptureReversed(ctx.meta, authorization_id, hold.captured_minor, legs,
                               moved(hold) if authorization_id not in state.holds else None)
    return Decision(Result.APPROVED, (event,), authorization_id, hold.captured_minor)


def decide_reverse_load(state: CardState, original_request_id: str, amount_minor: int,
                        ctx: Context) -> Decision:
    if state.available_minor < amount_minor:
        return decline(Result.DECLINED_INSUFFICIENT_FUNDS)
    legs = postings.move(postings.available(state.card_number),
                         postings.funding(state.issuing_partner_id), amount_minor)
    event = ev.LoadReversed(ctx.meta, original_request_id, amount_minor, legs)
    return Decision(Result.APPROVED, (event,), approved_amount_minor=amount_minor)


# ------------------------------------------------------------------------------ evolve


def _issued(state: CardState | None, e: ev.CardIssued) -> CardState:
    assert state is None
    return CardState(e.card_number, e.card_class, e.currency, e.issuing_partner_id,
                     e.issuing_store_id, e.customer_ref, CardStatus.ISSUED, holds={},
                     next_expiry_us=NO_EXPIRY)


def _issued_as_replacement(state: CardState | None, e: ev.CardIssuedAsReplacement) -> CardState:
    assert state is None
    # Holds moved by events written before they carried their time count from the move.
    holds = {m.authorization_id: Hold(m.authorization_id, m.amount_minor, m.status,
                                      m.expires_at_us, m.store_id, m.acquirer_partner_id,
                                      m.captured_minor, m.refunded_minor,
                                      m.authorized_at_us or e.meta.recorded_at_us)
             for m in e.holds}
    pending = [h for h in holds.values() if h.status == HoldStatus.PENDING]
    new = CardState(e.card_number, e.card_class, e.currency, e.issuing_partner_id,
                    e.issuing_store_id, e.customer_ref, e.status, e.balance_minor,
                    sum(h.amount_minor for h in pending), holds=holds,
                    expiries=[(h.expires_at_us, i, h.authorization_id)
                              for i, h in enumerate(pending)])
    heapq.heapify(new.expiries)
    new.settled = {h.authorization_id: None for h in holds.values()
                   if h.status != HoldStatus.PENDING}
    new.next_expiry_us = new.expiries[0][0] if new.expiries else NO_EXPIRY
    carried = e.carried
    if carried is not None:
        new.lots = {lot.lot_id: lot for lot in carried.lots}
        new.coupons = {c.coupon_id: _copy(c) for c in carried.coupons}
        new.stamps = dict(carried.stamps)
        new.purchases = {p.purchase_id: _copy(p) for p in carried.purchases}
        new.tier, new.tier_since_us = carried.tier, carried.tier_since_us
        new.points_debt = carried.points_debt
        new.points_written_off = carried.points_written_off
        new.previous_numbers = carried.previous_numbers
        new.version_base = carried.version_base
        new.history = (_copy(carried.history) if carried.history is not None
                       else retention.history_of(new.purchases))
        new.refs = retention.carried_refs(new.purchases)
    return new


def _status(status: CardStatus) -> Callable[[CardState, ev.CardEvent], CardState]:
    def apply(state: CardState, _: ev.CardEvent) -> CardState:
        state.status = status
        return state
    return apply


def _blocked(state: CardState, _: ev.CardBlocked) -> CardState:
    state.status_before_block = state.status
    state.status = CardStatus.BLOCKED
    return state


def _unblocked(state: CardState, _: ev.CardUnblocked) -> CardState:
    state.status = state.status_before_block or CardStatus.ACTIVE
    return state


def _replaced(state: CardState, e: ev.CardReplaced) -> CardState:
    state.status = CardStatus.REPLACED
    state.replaced_by = e.new_card_number
    state.balance_minor = 0
    state.held_minor = 0
    for authorization_id in [a for a, h in state.holds.items() if _moves(h)]:
        del state.holds[authorization_id]  # moved: the new card holds it now
    state.next_expiry_us, state.expiries = NO_EXPIRY, []
    state.settled = {a: None for a in state.settled if a in state.holds}
    # moved too (CardIssuedAsReplacement.carried): the new card holds them now
    state.lots, state.coupons, state.stamps, state.purchases = {}, {}, {}, {}
    state.tier, state.points_debt = "", 0
    return state


def _loaded(state: CardState, e: ev.ValueLoaded) -> CardState:
    state.balance_minor += e.amount_minor
    return state


def _load_reversed(state: CardState, e: ev.LoadReversed) -> CardState:
    state.balance_minor -= e.amount_minor
    return state


def _authorized(state: CardState, e: ev.ValueAuthorized) -> CardState:
    state.holds[e.authorization_id] = Hold(e.authorization_id, e.amount_minor,
                                           HoldStatus.PENDING, e.expires_at_us,
                                           e.meta.store_id, e.acquirer_partner_id,
                                           at_us=e.meta.recorded_at_us)
    state.held_minor += e.amount_minor
    _pending(state, e.expires_at_us, e.authorization_id)
    return state


def _pending(state: CardState, expires_at_us: int, authorization_id: str) -> None:
    heapq.heappush(state.expiries, (expires_at_us, state.version + 1, authorization_id))
    state.next_expiry_us = state.expiries[0][0]


def _left_pending(state: CardState) -> None:
    """Keep next_expiry_us exact when a hold stops being PENDING (called after its status
    changed): pop the heap's entries of holds no longer pending."""
    heap, holds = state.expiries, state.holds
    while heap:
        expires_at_us, _, authorization_id = heap[0]
        hold = holds.get(authorization_id)
        if (hold is not None and hold.status == HoldStatus.PENDING
                and hold.expires_at_us == expires_at_us):
            break
        heapq.heappop(heap)
    state.next_expiry_us = heap[0][0] if heap else NO_EXPIRY


def _captured(state: CardState, e: ev.AuthorizationCaptured) -> CardState:
    hold = state.holds[e.authorization_id]
    state.held_minor -= hold.amount_minor
    state.balance_minor -= e.amount_minor
    hold.status = HoldStatus.CAPTURED
    hold.captured_minor = e.amount_minor
    state.settled[e.authorization_id] = None
    _left_pending(state)
    return state


_RELEASE_STATUS = {ev.RELEASE_VOIDED: HoldStatus.VOIDED, ev.RELEASE_EXPIRED: HoldStatus.EXPIRED,
                   ev.RELEASE_REVERSED: HoldStatus.REVERSED}


def _released(state: CardState, e: ev.AuthorizationReleased) -> CardState:
    hold = state.holds[e.authorization_id]
    state.held_minor -= hold.amount_minor
    hold.status = _RELEASE_STATUS[e.reason]
    state.settled[e.authorization_id] = None
    _left_pending(state)
    return state


def _taken_back(state: CardState, authorization_id: str, carried: ev.HoldMoved | None,
                at_us: int) -> Hold | None:
    """The card's hold, or the one an event carries back into it (the card had let it go)."""
    hold = state.holds.get(authorization_id)
    if hold is None and carried is not None:
        hold = state.holds[authorization_id] = hold_of(carried, at_us)
        state.settled[authorization_id] = None
    return hold


def _capture_reversed(state: CardState, e: ev.CaptureReversed) -> CardState:
    hold = _taken_back(state, e.authorization_id, e.hold, e.meta.recorded_at_us)
    assert hold is not None, "a capture reversed on a card that never knew it"
    hold.status = HoldStatus.PENDING
    state.settled.pop(e.authorization_id, None)
    hold.amount_minor = e.amount_minor
    hold.captured_minor = 0
    state.balance_minor += e.amount_minor
    state.held_minor += e.amount_minor
    _pending(state, hold.expires_at_us, hold.authorization_id)
    return state


def _refunded(state: CardState, e: ev.ValueRefunded) -> CardState:
    hold = _taken_back(state, e.authorization_id, e.hold, e.meta.recorded_at_us)
    assert hold is not None, "a refund on a card that never knew the authorization"
    hold.refunded_minor += e.amount_minor
    state.balance_minor += e.amount_minor
    return state


def _take(state: CardState, lot_id: str, points: int) -> None:
    lot = state.lots[lot_id]
    remaining = lot.remaining - points
    assert 0 <= remaining <= lot.amount, "a points lot went below zero or above its amount"
    state.lots[lot_id] = msgspec.structs.replace(lot, remaining=remaining)


def _purchased(state: CardState, e: ev.PurchaseMade) -> CardState:
    state.balance_minor -= e.sv_charged_minor
    for lot_id, points in e.redeemed:
        _take(state, lot_id, points)
    if e.lot is not None:
        state.lots[e.lot.lot_id] = e.lot
    state.purchases[e.purchase_id] = PurchaseRecord(
        e.purchase_id, e.meta.store_id, e.acquirer_partner_id, e.lines, e.sv_charged_minor,
        e.points_redeemed, e.redeemed, (e.lot.amount if e.lot else 0) + e.debt_settled,
        e.lot.lot_id if e.lot else "", [0] * len(e.lines), recorded_at_us=e.meta.recorded_at_us,
        qualifying_minor=e.qualifying_minor,
        coupons_used=tuple((u.coupon_id, u.amount_minor, u.used_up) for u in e.coupons_used),
        local_date=e.local_date,
        stamped=tuple((p.key, line, n) for p in e.stamps for line, n in p.stamped),
        stamps_taken={}, points_owner=e.points_owner,
        points_value_micros=e.points_value_micros,
        points_redeemed_value_minor=e.points_redeemed_value_minor,
        redeemed_owner=e.redeemed_owner)
    retention.purchase_made(state, e)
    for progress in e.stamps:
        state.stamps[progress.key] = progress.after
    state.points_debt -= e.debt_settled
    assert state.points_debt >= 0, "more debt settled than owed"
    for use in e.coupons_used:
        coupon = state.coupons[use.coupon_id]
        coupon.remaining_minor = max(0, coupon.remaining_minor - use.amount_minor)
        assert coupon.status == CouponStatus.ACTIVE, "a coupon was used twice"
        if use.used_up:
            coupon.status = CouponStatus.USED
    for issued in e.coupons_issued:
        state.coupons[issued.coupon_id] = msgspec.structs.replace(issued)
    if e.tier_after != state.tier:
        state.tier, state.tier_since_us = e.tier_after, e.meta.recorded_at_us
    return state


def _returned(state: CardState, e: ev.PurchaseReturned) -> CardState:
    record = state.purchases[e.purchase_id]
    for index, quantity in e.lines:
        record.returned[index] += quantity
    state.balance_minor += e.sv_refunded_minor
    record.sv_refunded_minor += e.sv_refunded_minor
    for lot_id, points in e.points_restored:
        _take(state, lot_id, -points)
        record.points_restored += points
    for lot_id, points in e.points_clawed:
        _take(state, lot_id, points)
        record.points_clawed += points
    record.points_clawed += e.points_written_off + e.points_debt_added
    record.qualifying_returned += e.qualifying_minor_returned
    state.points_written_off += e.points_written_off
    state.points_debt += e.points_debt_added
    for key, line, taken in e.stamps_taken:
        state.stamps[key] -= taken
        assert state.stamps[key] >= 0, "a stamp card went below zero"
        slot = f"{key}#{line}"
        record.stamps_taken[slot] = record.stamps_taken.get(slot, 0) + taken
    for use in e.coupons_restored:
        coupon = state.coupons[use.coupon_id]
        coupon.status = CouponStatus.ACTIVE
        if coupon.terms.kind == 1:  # CouponKind.VALUE: the value it gave comes back
            coupon.remaining_minor += use.amount_minor
    retention.purchase_returned(state, record, e)
    return state


def _coupon_issued(state: CardState, e: ev.CouponIssued) -> CardState:
    state.coupons[e.coupon.coupon_id] = msgspec.structs.replace(e.coupon)
    return state


def _coupon_expired(state: CardState, e: ev.CouponExpired) -> CardState:
    coupon = state.coupons[e.coupon_id]
    coupon.status = CouponStatus.EXPIRED
    coupon.remaining_minor = 0
    return state


def _tier_changed(state: CardState, e: ev.TierChanged) -> CardState:
    state.tier, state.tier_since_us = e.tier, e.period_end_us
    return state


def _points_expired(state: CardState, e: ev.PointsExpired) -> CardState:
    _take(state, e.lot_id, e.amount)
    retention.lot_spent(state, e.lot_id)
    return state


QUOTE_IDS_KEPT_AFTER_EXPIRY_US = 300 * 1_000_000  # a bound on the clock skew between servers


def _exchanged(state: CardState, e: ev.PointsExchanged) -> CardState:
    for lot_id, points in e.taken:
        _take(state, lot_id, points)
        retention.lot_spent(state, lot_id)
    state.lots[e.lot.lot_id] = e.lot
    # Kept a while past the quote's expiry: another process whose clock is behind still sees
    # the quote as unexpired and must find it used.
    forget_before = e.meta.recorded_at_us - QUOTE_IDS_KEPT_AFTER_EXPIRY_US
    used = {quote: until for quote, until in state.used_quotes.items() if until > forget_before}
    used[e.quote_id] = e.quote_expires_at_us
    state.used_quotes = used
    pair = f"{e.from_program}>{e.to_program}"
    day, taken = state.exchanged.get(pair, (e.utc_day, 0))
    state.exchanged[pair] = (e.utc_day, (taken if day == e.utc_day else 0) + e.points_taken)
    return state


_EVOLVE: dict[type, Callable] = {  # type: ignore[type-arg]
    ev.CardIssued: _issued,
    ev.CardIssuedAsReplacement: _issued_as_replacement,
    ev.CardActivated: _status(CardStatus.ACTIVE),
    ev.CardBlocked: _blocked,
    ev.CardUnblocked: _unblocked,
    ev.CardClosed: _status(CardStatus.CLOSED),
    ev.CardReplaced: _replaced,
    ev.ValueLoaded: _loaded,
    ev.LoadReversed: _load_reversed,
    ev.ValueAuthorized: _authorized,
    ev.AuthorizationCaptured: _captured,
    ev.AuthorizationReleased: _released,
    ev.CaptureReversed: _capture_reversed,
    ev.ValueRefunded: _refunded,
    ev.PurchaseMade: _purchased,
    ev.PurchaseReturned: _returned,
    ev.PointsExpired: _points_expired,
    ev.TierChanged: _tier_changed,
    ev.CouponIssued: _coupon_issued,
    ev.CouponExpired: _coupon_expired,
    ev.PointsExchanged: _exchanged,
}
assert set(_EVOLVE) == set(ev.CARD_EVENTS)


# Events that settle no authorization and add no purchase or coupon: the bounded records
# cannot grow, so the trim (which also lets records older than their window go) waits for the
# next event that can (the hot path's Authorize and LoadValue skip it; a late refund or return
# checks the window itself).
_KEEPS_RECORDS = frozenset({ev.ValueAuthorized, ev.ValueLoaded, ev.LoadReversed,
                            ev.CardActivated, ev.CardBlocked, ev.CardUnblocked})


def evolve(state: CardState | None, event: ev.CardEvent) -> CardState:
    """Apply one event. Asserts the invariants the decisions guarantee."""
    legs = getattr(event, "legs", ())
    assert postings.is_balanced(legs), f"unbalanced posting in {type(event).__name__}"
    kind = type(event)
    new = _EVOLVE[kind](state, event)
    new.version += 1
    if kind not in _KEEPS_RECORDS:
        retention.trim(new, event.meta.recorded_at_us)
    assert new.held_minor >= 0, "held value went negative"
    assert new.balance_minor >= new.held_minor, "available value went negative"
    return new


def fold(events: list[ev.CardEvent], state: CardState | None = None) -> CardState | None:
    for event in events:
        state = evolve(state, event)
    return state
