"""Stamps for a line in closed form equal stamps counted unit by unit (the rule as written:
a unit is free when enough stamps are held and its price fits in what is left, else it earns
a stamp). The closed form exists because a line may hold a million units: counted unit by unit
on the writer thread, such a basket held up every other card's requests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.purchases.stateful import stamp_line


def unit_by_unit(count: int, quantity: int, needed: int, price: int,
                 room: int) -> tuple[int, int]:
    free = taken = 0
    for _ in range(quantity):
        if count >= needed and taken + price <= room:
            free, taken, count = free + 1, taken + price, 0
        else:
            count += 1
    return count, free


@settings(max_examples=2_000, deadline=None)
@given(count=st.integers(0, 40), quantity=st.integers(0, 300), needed=st.integers(1, 30),
       price=st.sampled_from([0, 1, 2, 7, 100]), room=st.integers(-5, 3_000))
def test_closed_form_equals_unit_by_unit(count: int, quantity: int, needed: int, price: int,
                                         room: int) -> None:
    assert stamp_line(count, quantity, needed, price, room) == unit_by_unit(
        count, quantity, needed, price, room)


def test_a_million_units_at_price_zero_is_immediate() -> None:
    assert stamp_line(0, 1_000_000, 1, 0, 0) == (0, 500_000)
