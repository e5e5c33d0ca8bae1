"""Points exchange between programs: rates are published through the registry handler
(PublishExchangeRate); here a quote (signed, nothing written) and its execution (one event on
the card's stream, idempotent by request key like every write)."""

from __future__ import annotations

import secrets
from typing import Any

from domain import access
from domain.cards import events as ev
from domain.cards.decide import CardState
from domain.common import Result, shown
from domain.exchange import decide as exchange
from domain.exchange.commands import ExecuteExchange, QuoteExchange
from domain.exchange.quote import Quote, open_quote, quote_key, sign
from domain.exchange.rates import in_force, pair_key
from ledger.codec import ExchangeView, Outcome
from ledger.handlers.context import Ctx, view
from ledger.refusals import Unconfigured, check

QUOTE_NONCE_BYTES = 8
NO_KEY = "points exchange is not configured on this server (LEDGER_COUPON_KEY signs quotes)"


def _key(ctx: Ctx) -> bytes:
    key = ctx.services.coupon_key
    if key is None:
        raise Unconfigured(NO_KEY)
    return quote_key(key)


def _own_program(ctx: Ctx, state: CardState) -> str | None:
    program = ctx.registry.program_of(state.issuing_partner_id)
    return program.owner if program is not None else None


def _terms(quote: Quote, quote_id: str = "", reason: str = "") -> ExchangeView:
    return ExchangeView(quote_id, quote.from_program, quote.to_program, quote.rate_version,
                        quote.points_taken, quote.fee_points, quote.points_given,
                        quote.expires_at_us, decline_reason=reason)


def quote(ctx: Ctx) -> Outcome:
    command: QuoteExchange = ctx.command
    state = ctx.card(command.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "QuoteExchange")
    check(access.quote_exchange(ctx.principal, state.issuing_partner_id))
    key = _key(ctx)
    rate = in_force(ctx.registry.exchange_rates.get(
        pair_key(command.from_program, command.to_program), ()), ctx.now_us)
    found = exchange.decide_quote(state, command, rate, _own_program(ctx, state),
                                  ctx.principal.partner_id, ctx.now_us,
                                  secrets.token_bytes(QUOTE_NONCE_BYTES))
    card = view(state, ctx.now_us)
    if isinstance(found, exchange.Declined):
        return Outcome(int(found.result), "QuoteExchange", state.card_number, card=card,
                       exchange=ExchangeView(from_program=command.from_program,
                                             to_program=command.to_program,
                                             decline_reason=found.reason))
    return Outcome(int(Result.APPROVED), "QuoteExchange", state.card_number, card=card,
                   exchange=_terms(found, sign(key, found)))


def execute(ctx: Ctx) -> Outcome:
    command: ExecuteExchange = ctx.command
    check(access.execute_exchange(ctx.principal))
    key = _key(ctx)
    found_card = ctx.card(command.card_number)
    if found_card is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "ExecuteExchange")
    state: CardState = found_card

    def declined(result: Result, reason: str, terms: Quote | None = None) -> Outcome:
        shown_terms = (_terms(terms, command.quote_id, reason) if terms is not None
                       else ExchangeView(quote_id=command.quote_id, decline_reason=reason))
        return Outcome(int(result), "ExecuteExchange", state.card_number,
                       card=view(state, ctx.now_us), exchange=shown_terms)

    opened = open_quote(key, command.quote_id)
    if opened is None:
        return declined(Result.DECLINED_QUOTE_FOREIGN, "the quote was not made by this ledger")
    terms, quote_id = opened
    versions = ctx.registry.exchange_rates.get(pair_key(terms.from_program, terms.to_program),
                                               [])
    destination = ctx.registry.programs.get(terms.to_program)
    if not 1 <= terms.rate_version <= len(versions) or destination is None:
        return declined(Result.DECLINED_QUOTE_FOREIGN,
                        f"no rate {shown(terms.from_program)}>{shown(terms.to_program)}"
                        f"@{terms.rate_version} here", terms)
    def decide(card: CardState) -> Any:
        return exchange.decide_execute(
            card, terms, quote_id, command.card_number, ctx.principal.partner_id,
            versions[terms.rate_version - 1], ctx.registry.programs.get(terms.from_program),
            destination, _own_program(ctx, card), ctx.now_us, ctx.meta())

    found = decide(state)
    if isinstance(found, exchange.Declined):
        return declined(found.result, found.reason, terms)  # nothing written
    if ctx.now_us >= state.next_expiry_us:
        # Lapsed holds are recorded before anything else on a card (a statement shows them
        # at the version they will have); the points are the same, the lot id is not.
        state = ctx.expire_holds(state)
        found = decide(state)
        assert isinstance(found, ev.PointsExchanged), "a lapse changed an exchange"
    state = ctx.emit(state, (found,))
    result = _terms(terms, command.quote_id)
    result.lot_id, result.lot_expires_at_us = found.lot.lot_id, found.lot.expires_at_us
    return Outcome(int(Result.APPROVED), "ExecuteExchange", state.card_number,
                   card=view(state, ctx.now_us), exchange=result)


HANDLERS = {QuoteExchange: quote, ExecuteExchange: execute}
