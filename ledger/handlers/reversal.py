"""Reverse: undo the request with `original_request_id` in the same key space (a void of an
authorization, a capture held again, a load taken back), or, if it has not arrived yet,
leave a tombstone under its key so that it is declined when it does."""

from __future__ import annotations

from collections.abc import Callable

from domain import access
from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.common import APPROVALS, InvalidInput, Result
from ledger.codec import Outcome, decode_outcome, encode
from ledger.handlers.context import Ctx
from ledger.handlers.late import late_hold
from ledger.refusals import check
from ledger.store import KeyRow
from ledger.work import Request, reversal_marker


def related_keys(request: Request) -> list[tuple[str, str]]:
    """The request keys a Reverse depends on besides its own: the original's and the
    reversal marker (looked up again after a conflict with another process)."""
    original = request.command.original_request_id
    return [(request.key_space, original), (reversal_marker(request.key_space), original)]


def reverse(ctx: Ctx) -> Outcome:
    command: cc.Reverse = ctx.command
    request = ctx.request
    if command.original_request_id == request.request_id:
        raise InvalidInput("original_request_id", "must differ from request_id")
    check(access.reverse(ctx.principal))
    original_pair, marker_pair = related_keys(request)
    known = {pair: row for pair in (original_pair, marker_pair)
             if (row := ctx.state.known_key(ctx.work, pair))}
    if marker_pair not in known:  # reversals are rare: ask the database, other processes
        known.update(ctx.state.store.find_keys([original_pair, marker_pair]))  # may know more
    if marker_pair in known:
        return Outcome(int(Result.APPROVED), "Reverse")  # reversed before: nothing to do
    original = known.get(original_pair)
    approved = Outcome(int(Result.APPROVED), "Reverse")
    marker = KeyRow(*marker_pair, b"", encode(approved))
    if original is None:
        # Reversed before seen: the original's key now declines it when it arrives.
        tombstone = Outcome(int(Result.DECLINED_REQUEST_REVERSED), "Reverse")
        ctx.work.add_key(KeyRow(*original_pair, b"", encode(tombstone)))
        ctx.work.add_key(marker)
        return approved
    outcome = decode_outcome(original.outcome)
    if not original.payload_hash or outcome.result not in APPROVALS:
        ctx.work.add_key(marker)
        return approved  # nothing was applied, so nothing to undo
    undo = _undo(ctx, outcome, command.original_request_id)
    if isinstance(undo, Result):
        return Outcome(int(undo), "Reverse")
    if undo is None:
        return Outcome(int(Result.DECLINED_INVALID_STATE), "Reverse")
    state, decide = undo
    reply = ctx.apply(state, decide)
    if reply.result in APPROVALS:
        ctx.work.add_key(marker)
    return reply


def _undo(ctx: Ctx, original: Outcome, original_request_id: str) -> tuple[
        cards.CardState, Callable[[cards.CardState, cards.Context], cards.Decision]
        ] | Result | None:
    if original.kind == "Capture" and ctx.state.hold_card(original.authorization_id) is None:
        found = late_hold(ctx, original.authorization_id)  # let go from memory: its stream
        if isinstance(found, Result):
            return found
        state, late = found
        return state, lambda s, c: cards.decide_reverse_capture(
            s, original.authorization_id, c, late)
    if original.kind in ("Authorize", "Capture"):
        state = ctx.state.hold_card(original.authorization_id)
        if state is None and ctx.let_go(cc.card_of_authorization(original.authorization_id),
                                        original.authorization_id):
            return Result.DECLINED_AUTHORIZATION_NOT_PENDING  # settled, let go from memory
        if state is None:
            return None
        decide = (cards.decide_reverse_authorize if original.kind == "Authorize"
                  else cards.decide_reverse_capture)
        return state, lambda s, c: decide(s, original.authorization_id, c)
    if original.kind == "LoadValue":
        state = ctx.card(original.card_number)
        if state is None:
            return None
        return state, lambda s, c: cards.decide_reverse_load(
            s, original_request_id, original.approved_amount_minor, c)
    return None


HANDLERS = {cc.Reverse: reverse}
RELATED_KEYS = {cc.Reverse: related_keys}
