"""Points exchange decisions as tables: the rate's arithmetic, the input checks (each naming
its field), the signed quote, the quote and execution decisions in order of precedence, and
how an exchange changes a card (purses, used quotes, the daily count)."""

from __future__ import annotations

import msgspec
import pytest

from domain.cards import decide as cards
from domain.cards import events as ev
from domain.common import CardStatus, InvalidInput, Meta, Result, Role
from domain.exchange import decide as exchange
from domain.exchange.commands import ExecuteExchange, QuoteExchange
from domain.exchange.quote import Quote, open_quote, quote_key, sign
from domain.exchange.rates import ExchangeRate, PublishExchangeRate, Rounding, divide, in_force
from domain.points import purse
from domain.points.program import DAY_US, Program

CARD = "6000000000000015"
OTHER_CARD = "6000000000000023"
NOW = 1_796_000_000_000_000  # 2026-12-01
KEY = quote_key(b"unit test key")
META = Meta("req-1", "cred", int(Role.TERMINAL), "P1", "S1", "T1", NOW)
RETAIL = Program("P1", "USD", 1_000_000, 0, 0, "UTC", 0)  # 1 point = 1 cent, never expires
AIR = Program("P2", "USD", 1_500_000, 3, 1, "UTC", 0)  # 1 mile = 1.5 cents, end of next year


def rate(**changes: object) -> ExchangeRate:
    base = ExchangeRate("P1", "P2", 1, 0, 1, 2, Rounding.DOWN, 10, 100, 100, 100_000, 0, 0)
    return msgspec.structs.replace(base, **changes)


def lot(lot_id: str, points: int, expires: int = purse.NEVER_US, program: str = "",
        value: int = 1_000_000, vests: int = 0) -> purse.Lot:
    return purse.Lot(lot_id, points, points, 0, vests, expires, "test", "r@1", value, program)


def card(*lots: purse.Lot, status: int = CardStatus.ACTIVE, debt: int = 0) -> cards.CardState:
    state = cards.CardState(CARD, "STANDARD", "USD", "P1", "S1", "", status,
                            lots={x.lot_id: x for x in lots})
    state.points_debt = debt
    return state


# ------------------------------------------------------------------------------ the rate


@pytest.mark.parametrize(("numerator", "denominator", "rounding", "expected"), [
    (7, 2, Rounding.DOWN, 3), (7, 2, Rounding.HALF_UP, 4), (7, 2, Rounding.UP, 4),
    (10, 3, Rounding.DOWN, 3), (10, 3, Rounding.HALF_UP, 3), (10, 3, Rounding.UP, 4),
    (6, 3, Rounding.UP, 2), (6, 3, Rounding.HALF_UP, 2), (5, 3, Rounding.HALF_UP, 2),
])
def test_rounding_is_explicit(numerator, denominator, rounding, expected):
    assert divide(numerator, denominator, rounding) == expected


def test_the_fee_comes_off_first_then_the_rate():
    r = rate()  # fee 10 + 1% (down), then 1 for 2, down
    assert r.fee(1_000) == 20 and r.given(1_000) == 490
    assert r.fee(150) == 11 and r.given(150) == 69  # 139 / 2 = 69.5, down
    assert rate(rounding=Rounding.HALF_UP).given(150) == 70
    assert rate(fee_fixed_points=0, fee_bp=0, numerator=3, denominator=2).given(101) == 151
    assert r.given(10) == 0  # the fee eats it


@pytest.mark.parametrize("wanted", [1, 2, 69, 70, 490, 491, 49_000])
def test_points_wanted_finds_the_fewest_points_taken(wanted):
    r = rate()
    taken = r.taken_for(wanted)
    assert r.given(taken) >= wanted and r.given(taken - 1) < wanted


def test_a_newer_version_supersedes_from_its_valid_from():
    v1, v2 = rate(version=1, valid_from_us=0), rate(version=2, valid_from_us=NOW)
    assert in_force([v1, v2], NOW - 1) is v1 and in_force([v1, v2], NOW) is v2
    assert in_force([rate(valid_from_us=NOW)], NOW - 1) is None


@pytest.mark.parametrize(("changes", "field"), [
    ({"from_program": "bad id!"}, "rate.from_program"),
    ({"to_program": ""}, "rate.to_program"),
    ({"to_program": "P1"}, "rate.to_program"),
    ({"version": 0}, "rate.version"),
    ({"numerator": 0}, "rate.numerator"),
    ({"denominator": 10**10}, "rate.denominator"),
    ({"rounding": 0}, "rate.rounding"),
    ({"fee_fixed_points": -1}, "rate.fee_fixed_points"),
    ({"fee_fixed_points": 100}, "rate.fee_fixed_points"),  # not below min_points
    ({"fee_bp": 5_001}, "rate.fee_bp"),
    ({"min_points": 0}, "rate.min_points"),
    ({"max_points": 99}, "rate.max_points"),
    ({"daily_limit_points": 50}, "rate.daily_limit_points"),
    ({"daily_limit_points": -1}, "rate.daily_limit_points"),
    ({"quote_ttl_s": 3_601}, "rate.quote_ttl_s"),
    ({"valid_from_us": -1}, "rate.valid_from"),
])
def test_bad_rates_name_their_field(changes, field):
    with pytest.raises(InvalidInput) as error:
        PublishExchangeRate(rate(**changes)).validate()
    assert error.value.field == field


def test_versions_are_numbered_without_gaps():
    PublishExchangeRate(rate(version=2)).check_versions([rate()])
    with pytest.raises(InvalidInput, match="must be 2"):
        PublishExchangeRate(rate(version=3)).check_versions([rate()])


@pytest.mark.parametrize(("command", "field"), [
    (QuoteExchange("123", "P1", "P2", 100, 0), "card_number"),
    (QuoteExchange(CARD, "", "P2", 100, 0), "from_program"),
    (QuoteExchange(CARD, "P1", "no spaces", 100, 0), "to_program"),
    (QuoteExchange(CARD, "P1", "P1", 100, 0), "to_program"),
    (QuoteExchange(CARD, "P1", "P2", 0, 0), "points_taken"),
    (QuoteExchange(CARD, "P1", "P2", 100, 5), "points_taken"),
    (QuoteExchange(CARD, "P1", "P2", -1, 0), "points_taken"),
    (QuoteExchange(CARD, "P1", "P2", 0, 10**13), "points_wanted"),
    (ExecuteExchange("6000000000000016", "a" * 10 + "." + "b" * 22), "card_number"),
    (ExecuteExchange(CARD, ""), "quote_id"),
    (ExecuteExchange(CARD, "not a quote"), "quote_id"),
])
def test_bad_commands_name_their_field(command, field):
    with pytest.raises(InvalidInput) as error:
        command.validate()
    assert error.value.field == field


# ------------------------------------------------------------------------------ the token


def test_a_quote_opens_only_with_its_key_and_unchanged():
    quote = Quote(CARD, "P1", "P2", 1, 1_000, 20, 490, NOW, NOW + 60_000_000, "P1", b"n")
    token = sign(KEY, quote)
    ExecuteExchange(CARD, token).validate()
    opened = open_quote(KEY, token)
    assert opened is not None and opened[0] == quote and opened[1] == token.split(".")[1]
    assert open_quote(quote_key(b"another deployment"), token) is None
    terms, mac = token.split(".")
    flipped = terms[:-3] + ("A" if terms[-3] != "A" else "B") + terms[-2:]
    assert open_quote(KEY, f"{flipped}.{mac}") is None
    forged = sign(quote_key(b"x"), msgspec.structs.replace(quote, points_given=10**6))
    assert open_quote(KEY, forged.split(".")[0] + "." + mac) is None


# ------------------------------------------------------------------------------ decisions


def quote_for(state: cards.CardState, r: ExchangeRate | None = None, taken: int = 1_000,
              wanted: int = 0, partner: str = "P1", now: int = NOW) -> Quote | exchange.Declined:
    return exchange.decide_quote(state, QuoteExchange(CARD, "P1", "P2", taken, wanted),
                                 r if r is not None else rate(), "P1", partner, now)


def test_a_quote_states_its_terms_and_expiry():
    found = quote_for(card(lot("a", 5_000)))
    assert found == Quote(CARD, "P1", "P2", 1, 1_000, 20, 490, NOW, NOW + 60_000_000, "P1",
                          b"")
    by_wanted = quote_for(card(lot("a", 5_000)), taken=0, wanted=490)
    assert isinstance(by_wanted, Quote) and by_wanted.points_taken == 999  # fee 19, 980 / 2
    longer = quote_for(card(lot("a", 5_000)), rate(quote_ttl_s=600))
    assert isinstance(longer, Quote) and longer.expires_at_us == NOW + 600_000_000


@pytest.mark.parametrize(("state", "r", "taken", "expected"), [
    (card(lot("a", 5_000), status=CardStatus.BLOCKED), rate(), 1_000,
     Result.DECLINED_CARD_NOT_ACTIVE),
    (card(lot("a", 5_000)), None, 1_000, Result.DECLINED_NO_EXCHANGE_RATE),
    (card(lot("a", 5_000)), rate(), 99, Result.DECLINED_EXCHANGE_LIMIT),
    (card(lot("a", 500_000)), rate(), 100_001, Result.DECLINED_EXCHANGE_LIMIT),
    (card(lot("a", 5_000)), rate(daily_limit_points=999), 1_000,
     Result.DECLINED_EXCHANGE_LIMIT),
    (card(lot("a", 999)), rate(), 1_000, Result.DECLINED_INSUFFICIENT_POINTS),
    (card(lot("a", 1_100), debt=101), rate(), 1_000, Result.DECLINED_INSUFFICIENT_POINTS),
    (card(lot("a", 5_000, vests=NOW + 1)), rate(), 1_000, Result.DECLINED_INSUFFICIENT_POINTS),
    (card(lot("a", 5_000, expires=NOW)), rate(), 1_000, Result.DECLINED_INSUFFICIENT_POINTS),
    (card(lot("a", 5_000, program="P2")), rate(), 1_000, Result.DECLINED_INSUFFICIENT_POINTS),
])
def test_quote_declines(state, r, taken, expected):
    missing_rate = r is None
    found = exchange.decide_quote(state, QuoteExchange(CARD, "P1", "P2", taken, 0),
                                  None if missing_rate else r, "P1", "P1", NOW)
    assert isinstance(found, exchange.Declined) and found.result == expected, found


def execute(state: cards.CardState, quote: Quote, *, card_number: str = CARD,
            partner: str = "P1", now: int = NOW, r: ExchangeRate | None = None,
            quote_id: str = "q1") -> ev.PointsExchanged | exchange.Declined:
    return exchange.decide_execute(state, quote, quote_id, card_number, partner,
                                   r if r is not None else rate(), RETAIL, AIR, "P1", now,
                                   META)


QUOTE = Quote(CARD, "P1", "P2", 1, 1_000, 20, 490, NOW - 1, NOW + 60_000_000, "P1", b"")


def test_an_execution_takes_earliest_expiry_first_and_adds_a_lot_under_the_destination():
    state = card(lot("late", 800, expires=NOW + 90 * DAY_US),
                 lot("soon", 300, expires=NOW + 10 * DAY_US, value=2_000_000),
                 lot("never", 5_000))
    event = execute(state, QUOTE)
    assert isinstance(event, ev.PointsExchanged)
    assert event.taken == (("soon", 300), ("late", 700))
    assert event.lot.program == "P2" and event.lot.amount == 490
    assert event.lot.value_micros_per_point == AIR.point_value_micros
    assert event.lot.expires_at_us == purse.expires_at_us(NOW, AIR.expiry)
    assert event.rate == "P1>P2@1" and event.fee_points == 20 and event.utc_day == NOW // DAY_US
    # 300 points at 2 cents + 700 at 1 cent = 13.00 out; the fee is 2% of it: 0.26;
    # 490 miles at 1.5 cents = 7.35 in; the difference 13.00 - 0.26 - 7.35 = 5.39.
    assert {leg.account: leg.amount_minor for leg in event.legs} == {
        "points:P1:outstanding": -1_300, "exchange_fee:P1": 26,
        "exchange_difference:P1:P2": 539, "exchange:P1:P2": 735, "points:P2:funding": -735,
        "points:P2:outstanding": 735}
    after = cards.evolve(state.copy(), event)
    assert "soon" not in after.lots and after.lots["late"].remaining == 100
    assert purse.spendable(after.purse_of("P2"), NOW) == 490
    assert purse.spendable(after.purse, NOW) == 5_100  # the own purse: what purchases see
    assert after.used_quotes == {"q1": QUOTE.expires_at_us}
    assert after.exchanged == {"P1>P2": (NOW // DAY_US, 1_000)}


def test_into_the_cards_own_program_the_lot_names_no_program():
    back = Quote(CARD, "P2", "P1", 1, 200, 0, 300, NOW, NOW + 1, "P1", b"")
    state = card(lot("m", 500, program="P2", value=1_500_000))
    event = exchange.decide_execute(
        state, back, "q", CARD, "P1",
        ExchangeRate("P2", "P1", 1, 0, 3, 2, 1, 0, 0, 1, 1_000, 0, 0), AIR, RETAIL, "P1", NOW,
        META)
    assert isinstance(event, ev.PointsExchanged) and event.lot.program == ""
    after = cards.evolve(state.copy(), event)
    assert purse.spendable(after.purse, NOW) == 300
    assert purse.spendable(after.purse_of("P2"), NOW) == 300


@pytest.mark.parametrize(("changes", "expected"), [
    ({"card_number": OTHER_CARD}, Result.DECLINED_QUOTE_FOREIGN),
    ({"partner": "P2"}, Result.DECLINED_QUOTE_FOREIGN),
    ({"partner": ""}, Result.DECLINED_QUOTE_FOREIGN),
    ({"now": QUOTE.expires_at_us}, Result.DECLINED_QUOTE_EXPIRED),
    ({"quote_id": "used"}, Result.DECLINED_QUOTE_USED),
    ({"r": rate(daily_limit_points=1_500)}, Result.DECLINED_EXCHANGE_LIMIT),
    ({"r": rate(max_points=999)}, Result.DECLINED_EXCHANGE_LIMIT),
])
def test_execution_declines_in_order(changes, expected):
    state = card(lot("a", 5_000))
    state.used_quotes = {"used": NOW + 1}
    state.exchanged = {"P1>P2": (NOW // DAY_US, 600)}
    found = execute(state, QUOTE, **changes)
    assert isinstance(found, exchange.Declined) and found.result == expected, found


def test_a_used_quote_is_used_before_it_is_expired_and_foreign_before_both():
    state = card(lot("a", 5_000))
    state.used_quotes = {"q1": QUOTE.expires_at_us}
    late = QUOTE.expires_at_us + 1
    assert execute(state, QUOTE, now=late).result == Result.DECLINED_QUOTE_USED
    assert execute(state, QUOTE, now=late, partner="P2").result == Result.DECLINED_QUOTE_FOREIGN


def test_the_points_must_still_be_there_at_execution():
    spent = card(lot("a", 999))
    assert execute(spent, QUOTE).result == Result.DECLINED_INSUFFICIENT_POINTS
    blocked = card(lot("a", 5_000), status=CardStatus.BLOCKED)
    assert execute(blocked, QUOTE).result == Result.DECLINED_CARD_NOT_ACTIVE


def test_used_quotes_are_forgotten_once_expired_and_the_day_count_restarts():
    state = card(lot("a", 50_000))
    first = execute(state, QUOTE)
    state = cards.evolve(state, first)
    later = NOW + DAY_US
    second_quote = msgspec.structs.replace(QUOTE, quoted_at_us=later,
                                           expires_at_us=later + 60_000_000)
    second = exchange.decide_execute(state, second_quote, "q2", CARD, "P1", rate(), RETAIL, AIR,
                                     "P1", later, msgspec.structs.replace(
                                         META, recorded_at_us=later))
    state = cards.evolve(state, second)
    assert state.used_quotes == {"q2": second_quote.expires_at_us}
    # Kept for a while after the quote expired (other servers' clocks may be behind).
    soon = second_quote.expires_at_us + 60_000_000
    third = exchange.decide_execute(
        state, msgspec.structs.replace(second_quote, expires_at_us=soon + 1), "q3", CARD, "P1",
        rate(), RETAIL, AIR, "P1", soon, msgspec.structs.replace(META, recorded_at_us=soon))
    assert set(cards.evolve(state.copy(), third).used_quotes) == {"q2", "q3"}
    assert state.exchanged == {"P1>P2": (later // DAY_US, 1_000)}


def test_purchases_and_returns_see_only_the_cards_own_purse():
    from domain.purchases.decide import expired_points
    state = card(lot("own", 100), lot("air", 200, program="P2", expires=NOW))
    assert purse.spendable(state.purse, NOW) == 100
    assert [(e.lot_id, e.amount) for e in expired_points(state, NOW, META)] == [("air", 200)]


def test_a_lot_written_before_programs_decodes_as_the_cards_own():
    class OldLot(msgspec.Struct, array_like=True):
        lot_id: str
        amount: int
        remaining: int
        earned_at_us: int
        vests_at_us: int
        expires_at_us: int
        source: str
        rule_set: str
        value_micros_per_point: int

    old = msgspec.msgpack.encode(OldLot("x", 5, 5, 0, 0, 1, "s", "r@1", 1))
    assert msgspec.msgpack.decode(old, type=purse.Lot).program == ""


# ------------------------------------------------------------------------------ who may call


@pytest.mark.parametrize(("role", "partner", "store", "quote", "execute"), [
    (Role.TERMINAL, "P2", "A1", True, True),  # a till of any store, for the card's customer
    (Role.GATEWAY, "P2", "A1", True, True),
    (Role.ADMIN, "", "", True, True),
    (Role.AUDITOR, "", "", True, False),  # reads the card: may quote, may not move points
    (Role.FINANCE, "", "", True, False),
    (Role.PARTNER_MANAGER, "P1", "", True, False),  # the issuer's manager reads the card
    (Role.STORE_MANAGER, "P1", "S1", True, False),
    (Role.PARTNER_MANAGER, "P2", "", False, False),  # another partner's manager does not
    (Role.STORE_MANAGER, "P2", "A1", False, False),
])
def test_who_may_quote_and_execute(role, partner, store, quote, execute):
    from domain import access
    from domain.common import Principal

    p = Principal(role, partner, store, "TA1" if role == Role.TERMINAL else "")
    assert (access.quote_exchange(p, "P1") is None) == quote
    assert (access.execute_exchange(p) is None) == execute
    publish = access.registry_write(p, PublishExchangeRate(rate()), lambda s: None,
                                    lambda c: None)
    assert (publish is None) == (role == Role.ADMIN)
