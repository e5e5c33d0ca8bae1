"""An exchange conserves value to the minor unit: its legs balance exactly, and each leg is
its exact value (in millionths of a minor unit) rounded down once, the difference account
taking what the rate and the rounding leave. Checked on random rates, lots and point values,
through the decision itself (not only the legs function)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.cards import decide as cards
from domain.cards import events as ev
from domain.common import CardStatus, Meta, Result, Role
from domain.exchange import decide as exchange
from domain.exchange.commands import QuoteExchange
from domain.exchange.rates import ExchangeRate, Rounding
from domain.points import purse
from domain.points.program import Program

NOW = 1_796_000_000_000_000
META = Meta("r", "c", int(Role.TERMINAL), "P1", "S1", "T1", NOW)
MICROS = 1_000_000

values = st.integers(1, 10**9)  # a point worth up to 1,000 minor units
lots = st.lists(st.tuples(st.integers(1, 10**6), values, st.integers(1, 400)), min_size=1,
                max_size=6)


@st.composite
def rates(draw: st.DrawFn) -> ExchangeRate:
    minimum = draw(st.integers(1, 1_000))
    return ExchangeRate("P1", "P2", 1, 0, draw(st.integers(1, 10**6)),
                        draw(st.integers(1, 10**6)), draw(st.sampled_from(list(Rounding))),
                        draw(st.integers(0, minimum - 1)), draw(st.integers(0, 5_000)),
                        minimum, 10**12, 0, 0)


@settings(max_examples=400, deadline=None)
@given(rate=rates(), held=lots, destination_value=values, share=st.floats(0.01, 1.0))
def test_an_exchange_conserves_value_to_the_minor_unit(rate, held, destination_value, share):
    state = cards.CardState("6000000000000015", "STANDARD", "USD", "P1", "S1", "",
                            CardStatus.ACTIVE)
    for index, (points, value, days) in enumerate(held):
        state.lots[f"l{index}"] = purse.Lot(f"l{index}", points, points, 0, 0,
                                            NOW + days * 86_400 * MICROS, "t", "r@1", value)
    total = sum(points for points, _, _ in held)
    taken = max(rate.min_points, int(total * share))
    quote = exchange.decide_quote(state, QuoteExchange(state.card_number, "P1", "P2", taken, 0),
                                  rate, "P1", "P1", NOW)
    if isinstance(quote, exchange.Declined):
        assert quote.result in (Result.DECLINED_INSUFFICIENT_POINTS,
                                Result.DECLINED_EXCHANGE_LIMIT)
        assert taken > total or rate.given(taken) == 0
        return
    source = Program("P1", "USD", 1, 0, 0, "UTC", 0)
    destination = Program("P2", "USD", destination_value, 0, 0, "UTC", 0)
    event = exchange.decide_execute(state, quote, "q", state.card_number, "P1", rate, source,
                                    destination, "P1", NOW, META)
    assert isinstance(event, ev.PointsExchanged)
    legs = {leg.account: leg.amount_minor for leg in event.legs}
    assert sum(legs.values()) == 0
    # What left, at each lot's own value; what arrived, at the destination's value.
    out_micros = sum(points * state.lots[lot_id].value_micros_per_point
                     for lot_id, points in event.taken)
    in_micros = event.points_given * destination_value
    assert sum(points for _, points in event.taken) == event.points_taken
    assert -legs.get("points:P1:outstanding", 0) == out_micros // MICROS
    assert legs.get("points:P2:outstanding", 0) == in_micros // MICROS
    assert legs.get("exchange:P1:P2", 0) == in_micros // MICROS == -legs.get(
        "points:P2:funding", 0)
    fee_micros = out_micros * event.fee_points // event.points_taken
    assert legs.get("exchange_fee:P1", 0) == fee_micros // MICROS
    # The difference is the exact remainder, off by less than the roundings (two units).
    exact = out_micros - fee_micros - in_micros
    assert abs(legs.get("exchange_difference:P1:P2", 0) * MICROS - exact) < 2 * MICROS
    # The points: taken = fee + what the rate turned into the points given.
    assert event.points_given == rate.given(event.points_taken) > 0
    after = cards.evolve(state.copy(), event)
    assert all(lot.remaining >= 0 for lot in after.lots.values())
    assert (purse.spendable(after.purse, NOW) ==
            purse.spendable(state.purse, NOW) - event.points_taken)
    assert purse.spendable(after.purse_of("P2"), NOW) == event.points_given
