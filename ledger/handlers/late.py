"""Authorizations a card no longer keeps in memory (domain/cards/retention.py keeps the latest
few settled ones), found again in the card's own stream when a refund or a capture reversal
names one: the authorization id "<card>.<version>" says where its story starts.

The read is bounded: the authorization must be among the card's last
`retention.REFUND_LOOKBACK_EVENTS` events (and a year old at most: the decision checks that),
so a late refund costs one indexed read of at most that many events, on the writer's thread.
The store holds only what is committed. Events of the card decided in this same attempt are
taken from the attempt itself; if earlier batches of the card are still on their way to the disk,
the writer waits for its committer once (a late refund is rare, the wait one commit). Only if the
story is still incomplete after that (a commit failed: the batch will be decided again) is the
answer StillWriting (OVERLOADED, retry), never a decision on a story that may miss a refund made a
moment ago.
"""

from __future__ import annotations

from domain.cards import decide as cards
from domain.cards import events as ev
from domain.cards import retention
from domain.common import Result
from ledger import limits
from ledger.codec import card_stream_id, decode_event
from ledger.handlers.context import Ctx
from ledger.refusals import StillWriting


def late_hold(ctx: Ctx, authorization_id: str,
              ) -> tuple[cards.CardState, cards.Hold] | Result:
    """(the card that holds the authorization now, the authorization as of now), or why not:
    NOT_FOUND (no such authorization) or REFUND_WINDOW_CLOSED (too far back)."""
    number, _, version_text = authorization_id.rpartition(".")
    if not ctx.let_go(number, authorization_id):
        return Result.DECLINED_AUTHORIZATION_NOT_FOUND
    version = int(version_text)
    state = ctx.card(number)
    if state is None:
        return Result.DECLINED_AUTHORIZATION_NOT_FOUND
    hold: cards.Hold | None = None
    start = version - 1
    for _ in range(limits.REPLACEMENT_HOPS_MAX):
        if state.version - start > retention.REFUND_LOOKBACK_EVENTS:
            return Result.DECLINED_REFUND_WINDOW_CLOSED
        hold, moved_to = _follow(authorization_id, hold, story(ctx, state, start))
        if hold is None:
            return Result.DECLINED_AUTHORIZATION_NOT_FOUND
        if not moved_to:
            return state, hold
        replacement = ctx.card(moved_to)
        if replacement is None:
            return Result.DECLINED_AUTHORIZATION_NOT_FOUND
        state, start = replacement, 0
    return Result.DECLINED_AUTHORIZATION_NOT_FOUND


def story(ctx: Ctx, state: cards.CardState, start: int) -> list[object]:
    """The card's events after version `start` up to its state in memory: what is durable,
    then what this attempt decided."""
    stream_id = card_stream_id(state.card_number)
    for attempt in range(2):
        stored = ctx.state.store.stream(stream_id, gt=start)
        last = stored[-1].originator_version if stored else start
        own = [s for s in ctx.work.stored
               if s.originator_id == stream_id and s.originator_version > last]
        if (own[-1].originator_version if own else last) == state.version and (
                not own or own[0].originator_version == last + 1):
            return [decode_event(s.state) for s in [*stored, *own]]
        if attempt == 0 and last < state.version:
            ctx.state.written()  # earlier batches still at the committer: wait for them
    raise StillWriting(f"card {state.card_number}'s latest changes are still being written")


def _follow(authorization_id: str, hold: cards.Hold | None,
            events: list[object]) -> tuple[cards.Hold | None, str]:
    """The authorization through one card's events: (as of the last, the replacement card it
    moved to or "")."""
    for event in events:
        if isinstance(event, ev.ValueAuthorized) and event.authorization_id == authorization_id:
            hold = cards.Hold(authorization_id, event.amount_minor, cards.HoldStatus.PENDING,
                              event.expires_at_us, event.meta.store_id,
                              event.acquirer_partner_id, at_us=event.meta.recorded_at_us)
        elif isinstance(event, ev.CardIssuedAsReplacement):
            for m in event.holds:
                if m.authorization_id == authorization_id:
                    hold = cards.hold_of(m, event.meta.recorded_at_us)
        elif hold is None:
            return None, ""  # the story must start with the authorization itself
        elif getattr(event, "authorization_id", None) == authorization_id:
            _apply(hold, event)
        elif isinstance(event, ev.CardReplaced) and _refundable(hold):
            return hold, event.new_card_number  # a refund lands on the card that took over
    return hold, ""


def _apply(hold: cards.Hold, event: object) -> None:
    if isinstance(event, ev.AuthorizationCaptured):
        hold.status, hold.captured_minor = cards.HoldStatus.CAPTURED, event.amount_minor
    elif isinstance(event, ev.AuthorizationReleased):
        hold.status = {ev.RELEASE_VOIDED: cards.HoldStatus.VOIDED,
                       ev.RELEASE_EXPIRED: cards.HoldStatus.EXPIRED,
                       ev.RELEASE_REVERSED: cards.HoldStatus.REVERSED}[event.reason]
    elif isinstance(event, ev.CaptureReversed):
        hold.status, hold.amount_minor = cards.HoldStatus.PENDING, event.amount_minor
        hold.captured_minor = 0
    elif isinstance(event, ev.ValueRefunded):
        hold.refunded_minor += event.amount_minor


def _refundable(hold: cards.Hold) -> bool:
    return hold.status == cards.HoldStatus.PENDING or (
        hold.status == cards.HoldStatus.CAPTURED and hold.refunded_minor < hold.captured_minor)
