"""Cards and stored value: issue, lifecycle, replacement, loads, authorizations and their
follow-ups, reads."""

from __future__ import annotations

import hashlib
from typing import Any

from domain import access
from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.cards import events as ev
from domain.common import (
    APPROVALS,
    CardStatus,
    InvalidInput,
    Meta,
    Principal,
    Result,
    Role,
    luhn_complete,
    shown,
)
from ledger import limits
from ledger.codec import Outcome, card_stream_id
from ledger.handlers.context import Ctx, system_meta, view
from ledger.handlers.late import late_hold, story
from ledger.refusals import check
from ledger.state import State
from ledger.work import Request, Work, key_space_of


def prepare_issues(batch: list[Request], work: Work, state: State, rule_book: Any,
                   now_us: int) -> None:
    """Is each card number of the batch's issues taken? One query for all of them (the
    store's `existing_streams`), instead of loading every card (two queries) before its
    decision. A number found free is remembered as "no card" in the cache; a card that
    exists is loaded (the decline needs only that it exists, but later requests may read
    it). Nothing is decided here: the handler still asks the cache, and a number another
    process issues meanwhile fails the commit on (stream, version 1) and is decided again,
    in this process's turn (DECLINED_CARD_EXISTS then). A generated number (an issue
    without one) is still checked on its own, in the handler.

    A card that exists may be a retry of this very request (a rerun of an import): its key
    is looked up now, with the other such keys in one query, so the retry replays instead
    of conflicting with the stored key at commit."""
    issues = [r for r in batch if type(r.command) is cc.IssueCard]
    if not issues:
        return
    numbers: dict[str, Request] = {}
    for request in issues:
        if request.command.card_number:
            numbers.setdefault(request.command.card_number, request)
    ids = {card_stream_id(n): n for n in numbers if card_stream_id(n) not in state.cards}
    if not ids:
        return
    existing = state.store.existing_streams(list(ids))
    for stream_id in ids:
        if stream_id not in existing:
            state.remember_card(stream_id, None)
    if not existing:
        return
    taken = [ids[i] for i in existing]
    pairs: dict[str, tuple[str, str]] = {}
    for number in taken:
        request = numbers[number]
        credential = state.registry.credentials.get(request.credential_id)
        if credential is not None and request.request_id:
            pairs[number] = (key_space_of(request.credential_id, credential.principal,
                                          request.terminal_id), request.request_id)
    unknown = [p for p in pairs.values() if state.key_cache.get(p) is None]
    if unknown:
        state.learn_keys(state.store.find_keys(unknown))
    state.prefetch([n for n in taken
                    if n not in pairs or state.key_cache.get(pairs[n]) is None])


def issue(ctx: Ctx) -> Outcome:
    command: cc.IssueCard = ctx.command
    store_id = command.issuing_store_id or ctx.principal.store_id
    if not store_id:
        raise InvalidInput("issuing_store_id", "is required when the caller has no store")
    store = ctx.registry.stores.get(store_id)
    if store is None:
        raise InvalidInput("issuing_store_id", f"unknown store {shown(store_id)}")
    check(access.issue_card(ctx.principal, store_id, store.partner_id))
    number = command.card_number or ctx.new_card_number()
    decision = cards.decide_issue(command, number, store.partner_id, store_id,
                                  ctx.card(number) is not None, ctx.meta())
    if decision.result not in APPROVALS:
        return Outcome(int(decision.result), "IssueCard", number)
    state = ctx.emit(None, decision.events)
    return ctx.card_outcome(decision, state)


def card_action(ctx: Ctx) -> Outcome:
    command: cc.CardAction = ctx.command
    state = ctx.card(command.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), type(command).__struct_config__.tag)
    verb = type(command).__name__.removesuffix("Card").lower()
    check(access.manage_card(ctx.principal, state.issuing_partner_id, verb))
    return ctx.apply(state, lambda s, c: cards.decide_action(s, command, c))


def replace(ctx: Ctx) -> Outcome:
    """ReplaceCard, and its completion: when the two cards' partitions are on different
    servers the old card's leg and the new card's leg commit in two transactions, either
    first, the request key with the last, so a crash between them leaves half a replacement
    and no key. The retry of that request (same key space and request id) writes only the
    missing leg, exactly as the first attempt decided it, and answers what it would have
    answered (domain.cards.decide: complete_new_leg, complete_old_leg)."""
    command: cc.ReplaceCard = ctx.command
    state = ctx.card(command.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "ReplaceCard")
    check(access.manage_card(ctx.principal, state.issuing_partner_id, "replace"))
    if state.status == CardStatus.REPLACED and ctx.card(state.replaced_by) is None:
        return _complete_new_leg(ctx, state)  # half (a): the new card was never written
    new_number, issued = _new_card(ctx, state)
    if issued is not None:
        return _complete_old_leg(ctx, state, issued)  # half (b): the old card's leg is missing
    state = ctx.expire_holds(state)
    decision = cards.decide_replace(state, new_number, ctx.card(new_number) is not None,
                                    command.reason, ctx.card_context(state))
    if decision.result not in APPROVALS:
        return ctx.card_outcome(decision, state)
    ctx.emit(state, decision.events)
    new_state = ctx.emit(None, decision.replacement_events)
    return ctx.card_outcome(decision, new_state)


def replacement_numbers(old: str, key_space: str, request_id: str) -> list[str]:
    """The numbers a replacement without one takes, in order (the first one free): derived
    from the request, not drawn at random, so that its retry looks where the first attempt
    wrote. After half (b) (the new card written, the old card not) nothing on the old card
    names the new one; the retry finds it here. Same shape as the generated numbers of
    IssueCard ("7", 14 digits, Luhn); different requests get unrelated numbers."""
    numbers = []
    for attempt in range(limits.REPLACEMENT_NUMBER_TRIES):
        seed = f"{old}\x00{key_space}\x00{request_id}\x00{attempt}".encode()
        value = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % 10**14
        numbers.append(luhn_complete(f"7{value:014d}"))
    return numbers


def _new_card(ctx: Ctx, old: cards.CardState,
              ) -> tuple[str, ev.CardIssuedAsReplacement | None]:
    """The new card's number, and the new card's leg if this request wrote it already and
    nothing else (half (b)); None for a replacement to decide as usual."""
    command: cc.ReplaceCard = ctx.command
    request = ctx.request
    if command.new_card_number:
        numbers = [command.new_card_number]
    elif request.request_id:
        numbers = replacement_numbers(old.card_number, request.key_space, request.request_id)
    else:  # no request id: no retry to find it, nothing to derive the number from
        return ctx.new_card_number(), None
    for number in numbers:
        new = ctx.card(number)
        if new is None:
            return number, None
        issued = _written_half(ctx, old, new)
        if issued is not None:
            return number, issued
    if command.new_card_number:
        return command.new_card_number, None  # taken by another card: DECLINED_CARD_EXISTS
    raise AssertionError("eight replacement numbers in a row were taken")


def _written_half(ctx: Ctx, old: cards.CardState,
                  new: cards.CardState) -> ev.CardIssuedAsReplacement | None:
    """The new card's first event, if it is this request's replacement of `old` and `old`
    does not say so (half (b)). The stream is read only for a card that replaces `old`."""
    if new.previous_numbers[-1:] != (old.card_number,) or old.replaced_by == new.card_number:
        return None
    first = story(ctx, new, 0)[0]
    if (isinstance(first, ev.CardIssuedAsReplacement) and first.replaces == old.card_number
            and _same_request(ctx, first.meta)):
        return first
    return None


def _same_request(ctx: Ctx, meta: Meta) -> bool:
    """Was the event written by this request (its key space and request id)?"""
    request = ctx.request
    principal = Principal(Role(meta.role), terminal_id=meta.terminal_id)
    return bool(request.request_id) and meta.request_id == request.request_id and (
        key_space_of(meta.credential_id, principal, meta.terminal_id) == request.key_space)


def _complete_new_leg(ctx: Ctx, old: cards.CardState) -> Outcome:
    """Half (a): the old card is recorded as replaced by a card that does not exist. Only the
    retry of the request that wrote it completes it; any other request finds the card
    replaced (DECLINED_INVALID_STATE), as after a whole replacement. The old card's story is
    read from its stream (a rare path: one read, folded once)."""
    command: cc.ReplaceCard = ctx.command
    events = story(ctx, old, 0)
    at = max(i for i, e in enumerate(events) if isinstance(e, ev.CardReplaced))
    replaced = events[at]
    assert isinstance(replaced, ev.CardReplaced)
    if not _same_request(ctx, replaced.meta):
        return ctx.card_outcome(cards.decline(Result.DECLINED_INVALID_STATE), old)
    if command.new_card_number not in ("", replaced.new_card_number):
        # Refused, not declined: a decline would be stored under this request id and the
        # retry as first sent could then never complete the replacement.
        raise InvalidInput("new_card_number", f"this request began replacing the card by "
                           f"{replaced.new_card_number}; its retry must name that number or none")
    if command.reason != replaced.reason:
        raise InvalidInput("reason", "differs from the reason this request recorded when it "
                           "began replacing the card")
    before = cards.fold(events[:at])  # type: ignore[arg-type]
    assert before is not None
    decision = cards.complete_new_leg(before, replaced)
    if decision.result not in APPROVALS:
        return ctx.card_outcome(decision, old)
    new_state = ctx.emit(None, decision.replacement_events)
    return _replaced_reply(new_state, replaced.meta.recorded_at_us)


def _complete_old_leg(ctx: Ctx, old: cards.CardState,
                      issued: ev.CardIssuedAsReplacement) -> Outcome:
    """Half (b): the new card exists as the replacement of `old`, which was never marked
    replaced. Completed only if the old card is exactly as the first attempt saw it;
    otherwise DECLINED_INVALID_STATE and nothing written (domain: complete_old_leg)."""
    at_us = issued.meta.recorded_at_us
    decision = cards.complete_old_leg(old, issued, ctx.command.reason, system_meta(at_us))
    if decision.result not in APPROVALS:
        return ctx.card_outcome(decision, old)
    ctx.emit(old, decision.events)
    return _replaced_reply(cards.evolve(None, issued), at_us)


def _replaced_reply(new_state: cards.CardState, at_us: int) -> Outcome:
    """What a whole replacement decided at `at_us` answers: the new card right after its
    issue, seen at that time (later events on the new card are not the replacement's)."""
    return Outcome(int(Result.APPROVED), "ReplaceCard", new_state.card_number,
                   card=view(new_state, at_us))


def load(ctx: Ctx) -> Outcome:
    command: cc.LoadValue = ctx.command
    state = ctx.card(command.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "LoadValue")
    check(access.load_value(ctx.principal, state.issuing_partner_id))
    return ctx.apply(state, lambda s, c: cards.decide_load(s, command, c))


def authorize(ctx: Ctx) -> Outcome:
    command: cc.Authorize = ctx.command
    check(access.authorize(ctx.principal))
    state = ctx.card(command.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "Authorize")
    if ctx.state.positions is None:  # no agreement sets a net debit cap
        return ctx.apply(state, lambda s, c: cards.decide_authorize(s, command, c))

    def decide(s: cards.CardState, c: cards.Context) -> cards.Decision:
        if ctx.over_cap(s, c.acquirer_partner_id, command.amount_minor):
            return cards.decline(Result.DECLINED_NET_DEBIT_CAP)
        return cards.decide_authorize(s, command, c)
    return ctx.apply(state, decide)


_FOLLOW_UPS = {cc.Capture: cards.decide_capture, cc.Void: cards.decide_void,
               cc.Refund: cards.decide_refund}


def follow_up(ctx: Ctx) -> Outcome:
    """Capture, Void or Refund of an authorization, on whichever card holds it now."""
    command: cc.Capture | cc.Void | cc.Refund = ctx.command
    tag = type(command).__struct_config__.tag
    state = ctx.state.hold_card(command.authorization_id)
    if state is None and isinstance(command, cc.Refund):
        found = late_hold(ctx, command.authorization_id)  # settled long ago: in its stream
        if isinstance(found, Result):
            return Outcome(int(found), tag)
        state, late = found
        check(access.follow_up(ctx.principal, late.store_id, tag.lower()))
        return ctx.apply(state, lambda s, c: cards.decide_refund(s, command, c, late))
    if state is None:
        return Outcome(int(_not_held(ctx, command)), tag)
    hold = state.holds[command.authorization_id]
    check(access.follow_up(ctx.principal, hold.store_id, tag.lower()))
    decide = _FOLLOW_UPS[type(command)]
    return ctx.apply(state, lambda s, c: decide(s, command, c))  # type: ignore[operator]


def _not_held(ctx: Ctx, command: cc.Capture | cc.Void | cc.Refund) -> Result:
    """Why no card holds the authorization for a Capture or Void: it never existed, or it was
    settled and the card let it go from memory (domain.cards.retention)."""
    authorization_id = command.authorization_id
    if not ctx.let_go(cc.card_of_authorization(authorization_id), authorization_id):
        return Result.DECLINED_AUTHORIZATION_NOT_FOUND
    return Result.DECLINED_AUTHORIZATION_NOT_PENDING  # only settled ones are let go


def read(ctx: Ctx) -> Outcome:
    command: cc.GetCard | cc.GetBalance = ctx.command
    tag = type(command).__struct_config__.tag
    state = ctx.card(command.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), tag)
    allowed = access.read_card if isinstance(command, cc.GetCard) else access.get_balance
    check(allowed(ctx.principal, state.issuing_partner_id))
    return Outcome(int(Result.APPROVED), tag, state.card_number, card=view(state, ctx.now_us))


HANDLERS = {
    cc.IssueCard: issue, cc.ActivateCard: card_action, cc.BlockCard: card_action,
    cc.UnblockCard: card_action, cc.CloseCard: card_action, cc.ReplaceCard: replace,
    cc.LoadValue: load, cc.Authorize: authorize, cc.Capture: follow_up, cc.Void: follow_up,
    cc.Refund: follow_up, cc.GetCard: read, cc.GetBalance: read,
}

CARDS: dict[type, Any] = {command: lambda c: cc.card_of_authorization(c.authorization_id)
                         for command in (cc.Capture, cc.Void, cc.Refund)}
CARDS[cc.IssueCard] = lambda c: ""  # prepare_issues asks whether they exist, in one query
ROUTE: dict[type, Any] = {cc.IssueCard: lambda c: c.card_number}  # "" when generated

PREPARE = (prepare_issues,)
