"""Points exchange decisions against a card's state. Pure: the rate, the programs, the clock
and the caller's partner come in; a quote, or an event, or a named decline come out.

A card holds a purse per program (CardState.lots; a lot's `program` is "" for the card's own
program). An exchange takes points from the source purse earliest-expiry-first and adds one
new lot to the destination purse, under the destination program's expiry policy and point
value, in one event on the card's stream.

"Already used" is kept in the card's state (CardState.used_quotes: the quote's MAC until the
quote expires), not in the request-key table: a request key is per caller and request id, so
the same quote sent again under a new request id would not meet it; the card's stream is
where every execution of a quote for this card is ordered (a second process executing the
same quote conflicts on the card's version and decides again on the state that holds it).
An id leaves the state 5 minutes after its quote expired (a bound on the clock skew between
server processes), after which the quote is refused as expired anyway: the set holds at most
the quotes executed within the longest quote lifetime plus those 5 minutes.
"""

from __future__ import annotations

import msgspec

from domain import postings
from domain.cards import events as ev
from domain.cards.decide import CardState
from domain.common import CardStatus, Meta, Result
from domain.exchange.commands import QuoteExchange
from domain.exchange.quote import Quote
from domain.exchange.rates import ExchangeRate, pair_key
from domain.points import purse
from domain.points.program import DAY_US, Program

MICROS = 1_000_000


class Declined(msgspec.Struct, frozen=True):
    result: Result
    reason: str  # in words, for the till


def lot_program(program: str, own_program: str | None) -> str:
    """How a lot names `program`: "" for the card's own program."""
    return "" if program == own_program else program


def spendable(state: CardState, program: str, own_program: str | None, now_us: int) -> int:
    """Spendable points of one program on the card (the own program's less any points debt,
    as a purchase counts them)."""
    key = lot_program(program, own_program)
    free = purse.spendable(state.purse_of(key), now_us)
    if not key:
        free -= state.points_debt
    return max(0, free)


def taken_today(state: CardState, pair: str, utc_day: int) -> int:
    day, taken = state.exchanged.get(pair, (utc_day, 0))
    return taken if day == utc_day else 0


def _limits(state: CardState, rate: ExchangeRate, taken: int, now_us: int,
            own_program: str | None) -> Declined | None:
    """The checks a quote makes and an execution makes again (the card may have changed)."""
    if not rate.min_points <= taken <= rate.max_points:
        return Declined(Result.DECLINED_EXCHANGE_LIMIT,
                        f"{taken} points: an exchange takes {rate.min_points}.."
                        f"{rate.max_points}")
    if rate.daily_limit_points:
        today = taken_today(state, rate.pair, now_us // DAY_US)
        if today + taken > rate.daily_limit_points:
            return Declined(Result.DECLINED_EXCHANGE_LIMIT,
                            f"{taken} points with {today} exchanged today passes the daily "
                            f"limit of {rate.daily_limit_points}")
    available = spendable(state, rate.from_program, own_program, now_us)
    if taken > available:
        return Declined(Result.DECLINED_INSUFFICIENT_POINTS,
                        f"{taken} points asked, {available} spendable in "
                        f"{rate.from_program}")
    return None


def decide_quote(state: CardState, cmd: QuoteExchange, rate: ExchangeRate | None,
                 own_program: str | None, partner_id: str, now_us: int,
                 nonce: bytes = b"") -> Quote | Declined:
    if state.status != CardStatus.ACTIVE:
        return Declined(Result.DECLINED_CARD_NOT_ACTIVE, "the card may not exchange points")
    if rate is None:
        return Declined(Result.DECLINED_NO_EXCHANGE_RATE,
                        f"no rate in force from {cmd.from_program} to {cmd.to_program}")
    taken = cmd.points_taken or rate.taken_for(cmd.points_wanted)
    if taken == 0:
        return Declined(Result.DECLINED_EXCHANGE_LIMIT,
                        f"no exchange gives {cmd.points_wanted} points")
    given = rate.given(taken)
    if given <= 0:
        return Declined(Result.DECLINED_EXCHANGE_LIMIT,
                        f"{taken} points give nothing after the fee and the rate")
    declined = _limits(state, rate, taken, now_us, own_program)
    if declined is not None:
        return declined
    return Quote(state.card_number, rate.from_program, rate.to_program, rate.version, taken,
                 rate.fee(taken), given, now_us, now_us + rate.ttl_us, partner_id, nonce)


def decide_execute(state: CardState, quote: Quote, quote_id: str, card_number: str,
                   caller_partner_id: str, rate: ExchangeRate, source: Program | None,
                   destination: Program, own_program: str | None, now_us: int,
                   meta: Meta) -> ev.PointsExchanged | Declined:
    """Apply a quote whose MAC was checked, at its own terms (the rate version it pinned),
    whatever rate is in force now."""
    if quote.card_number != card_number:
        return Declined(Result.DECLINED_QUOTE_FOREIGN, "the quote is for another card")
    if quote.partner_id != caller_partner_id:
        return Declined(Result.DECLINED_QUOTE_FOREIGN,
                        "the quote was made for another partner's credentials")
    if quote_id in state.used_quotes:
        return Declined(Result.DECLINED_QUOTE_USED, "the quote was already executed")
    if now_us >= quote.expires_at_us:
        return Declined(Result.DECLINED_QUOTE_EXPIRED, "the quote has expired")
    if state.status != CardStatus.ACTIVE:
        return Declined(Result.DECLINED_CARD_NOT_ACTIVE, "the card may not exchange points")
    if source is not None and source.currency != destination.currency:
        return Declined(Result.DECLINED_NO_EXCHANGE_RATE,
                        "the programs are now valued in different currencies")
    declined = _limits(state, rate, quote.points_taken, now_us, own_program)
    if declined is not None:
        return declined
    source_key = lot_program(quote.from_program, own_program)
    takes = purse.redeem(state.purse_of(source_key), quote.points_taken, now_us).takes
    values = {lot_id: state.lots[lot_id].value_micros_per_point for lot_id, _ in takes}
    taken_micros = sum(points * values[lot_id] for lot_id, points in takes)
    lot = purse.earn(purse.Lot(
        f"{state.card_number}.{state.version + 1}", quote.points_given, quote.points_given,
        now_us, now_us, purse.expires_at_us(now_us, destination.expiry),
        f"exchange:{meta.request_id}", f"{pair_key(quote.from_program, quote.to_program)}"
        f"@{quote.rate_version}", destination.point_value_micros,
        lot_program(quote.to_program, own_program))).lot
    legs = exchange_legs(quote.from_program, quote.to_program, taken_micros, quote.fee_points,
                         quote.points_taken, quote.points_given * destination.point_value_micros)
    return ev.PointsExchanged(
        meta, quote_id, quote.expires_at_us, quote.from_program, quote.to_program,
        f"{pair_key(quote.from_program, quote.to_program)}@{quote.rate_version}",
        quote.points_taken, quote.fee_points, quote.points_given, takes, lot, now_us // DAY_US,
        legs)


def exchange_legs(from_program: str, to_program: str, taken_micros: int, fee_points: int,
                  points_taken: int, given_micros: int) -> tuple[postings.Leg, ...]:
    """The liability moved, in minor units (domain/postings.py has the accounts): what left
    the source purse at its lots' values, the fee's share of it, what arrived at the
    destination's point value, and the rest (the rate's and the rounding's difference), so
    the legs balance exactly. Each value is rounded down from millionths of a minor unit once;
    the difference takes what rounding leaves."""
    assert 0 <= fee_points < points_taken, "the fee is part of what is taken"
    taken = taken_micros // MICROS
    fee = taken_micros * fee_points // points_taken // MICROS
    given = given_micros // MICROS
    rest = taken - fee - given
    legs = (
        postings.Leg(postings.points_outstanding(from_program), -taken),
        postings.Leg(postings.exchange_fee(from_program), fee),
        postings.Leg(postings.exchange_difference(from_program, to_program), rest),
        postings.Leg(postings.exchange_clearing(from_program, to_program), given),
        postings.Leg(postings.points_funding(to_program), -given),
        postings.Leg(postings.points_outstanding(to_program), given),
    )
    return tuple(leg for leg in legs if leg.amount_minor)
