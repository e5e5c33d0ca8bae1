"""domain.settlement.agreements: which terms are in force (pair, then alliance; entity, then
alliance; the newest version whose valid_from has come), commission rounding, entities."""

from __future__ import annotations

import pytest

from domain.common import InvalidInput
from domain.settlement.agreements import (
    Agreement,
    Agreements,
    check_publishable,
    commission,
    entity_of,
)

ENTITIES = {"P1": "partner", "P2": "partner", "S9": "store"}


def book(*agreements: Agreement) -> Agreements:
    found = Agreements()
    for agreement in agreements:
        found.add(agreement)
    return found


def test_a_pair_overrides_the_alliance_and_is_named_in_either_order() -> None:
    terms = book(Agreement("all", 1, 100, sv_commission_bps=100),
                 Agreement("p1p2", 1, 200, "P1", "P2", sv_commission_bps=250))
    assert terms.for_pair("P2", "P1", 150).sv_commission_bps == 100  # type: ignore[union-attr]
    assert terms.for_pair("P2", "P1", 200).sv_commission_bps == 250  # type: ignore[union-attr]
    assert terms.for_pair("P1", "S9", 200).sv_commission_bps == 100  # type: ignore[union-attr]
    assert terms.for_pair("P1", "P2", 99) is None


def test_the_newest_version_in_force_wins_and_an_entity_overrides_the_alliance() -> None:
    terms = book(Agreement("cap", 1, 100, "P1", net_debit_cap_minor=5, cap_currency="USD"),
                 Agreement("cap", 2, 300, "P1", net_debit_cap_minor=9, cap_currency="USD"),
                 Agreement("all", 1, 100, net_debit_cap_minor=1, cap_currency="USD"))
    assert terms.any_caps
    assert [terms.cap("P1", "USD", at) for at in (99, 100, 299, 300)] == [0, 5, 5, 9]
    assert terms.cap("P1", "EUR", 300) == 0  # a cap is in one currency
    assert terms.cap("P2", "USD", 300) == 1  # the alliance's default
    assert not book(Agreement("x", 1, 0, sv_commission_bps=5)).any_caps


@pytest.mark.parametrize(("base", "bps", "expected"), [
    (1_333, 150, 20), (1_000, 150, 15), (10, 150, 0), (34, 150, 1), (33, 150, 0),
    (-1_333, 150, -20), (0, 150, 0), (999_999_999_999, 10_000, 999_999_999_999),
])
def test_commission_rounds_half_up_once(base: int, bps: int, expected: int) -> None:
    assert commission(base, bps) == expected


def test_entity_of_a_store() -> None:
    assert entity_of({}, "S1", "P1") == "P1"
    assert entity_of({"S9": "S9"}, "S9", "P1") == "S9"
    assert entity_of({"S9": "S9"}, "S1", "P1") == "P1"


@pytest.mark.parametrize(("agreement", "versions", "field"), [
    (Agreement("a", 1, 50), (), "agreement.valid_from"),  # in the past
    (Agreement("a", 2, 100), (), "agreement.version"),
    (Agreement("a", 1, 100, "P1", "P404"), (), "agreement.entity_b"),
    (Agreement("a", 1, 100, exchange_fee_earner="P404"), (), "agreement.exchange_fee_earner"),
    (Agreement("a", 1, 100, "P1", "P2", exchange_fee_bps=50), (), "agreement.exchange_fee_bps"),
    (Agreement("a", 2, 150, "P2"), (Agreement("a", 1, 200, "P1"),), "agreement.entity_a"),
    (Agreement("a", 2, 150, "P1"), (Agreement("a", 1, 200, "P1"),), "agreement.valid_from"),
])
def test_what_may_not_be_published(agreement: Agreement, versions: tuple[Agreement, ...],
                                   field: str) -> None:
    with pytest.raises(InvalidInput, match=field.replace(".", r"\.")):
        check_publishable(agreement, versions, ENTITIES, now_us=100)
