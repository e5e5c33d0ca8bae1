"""A card's statement adds up to the card: every event kind is a movement, and a hold whose
time is up shows as released from its expiry on, before and after the ledger records it.
(Both found by fuzzing: ListMovements failed for any card that had received a coupon, and
after a hold expired the last movement still showed it held while the card showed 0.)"""

from __future__ import annotations

from typing import Any

import pytest

from domain.cards import commands as cc
from domain.cards.events import CardEvent
from domain.common import Principal, Role
from domain.coupons.model import IssueCoupon
from ledger import codec, limits
from ledger.engine import Ledger
from projections.movements import KINDS, Movement, list_movements, movements_runner
from tests.integration.test_purchase_stories import campaign
from tests.support.alliance import new_card, ok, rid

# Stories told on SQLite (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

ADMIN = Principal(Role.ADMIN)
HOLD_TTL_S = 7 * 24 * 3600


def statement(ledger: Ledger, number: str, after: int = 0,
              limit: int = limits.MOVEMENTS_PAGE_MAX) -> list[Movement]:
    found = list_movements(movements_runner(ledger.store), ADMIN, number, after, limit,
                           ledger.clock_us())
    assert isinstance(found, list), found
    return found


def card(ledger: Ledger, alliance: Any, number: str) -> Any:
    return ok(ledger.call(alliance.admin, cc.GetCard(number))).card


def test_every_card_event_the_codec_knows_has_a_movement_kind() -> None:
    card_events = [t for t in codec._EVENT_TYPES if issubclass(t, CardEvent)]
    assert card_events and set(card_events) == set(KINDS)


def test_a_card_that_received_a_coupon_lists_its_movements(ledger, alliance, clock) -> None:
    number = new_card(ledger, alliance, 50_00)
    ok(ledger.call(alliance.p1_manager, campaign("WELCOME", clock), request_id=rid("camp")))
    ok(ledger.call(alliance.s1_manager, IssueCoupon(number, "WELCOME"), request_id=rid("cp")))
    kinds = [m.kind for m in statement(ledger, number)]
    assert kinds == ["ISSUED", "ACTIVATED", "LOADED", "COUPON_ISSUED"]


def test_an_expired_hold_is_a_movement_before_and_after_it_is_recorded(
        ledger, alliance, clock) -> None:
    number = new_card(ledger, alliance, 100_00)
    authorized_at_us = clock.now_us
    early = ok(ledger.call(alliance.t1, cc.Authorize(number, 30_00, "USD", False, ""),
                           request_id=rid("auth")))
    clock.advance(60)
    ok(ledger.call(alliance.t1, cc.Authorize(number, 20_00, "USD", False, ""),
                   request_id=rid("auth")))
    clock.advance(HOLD_TTL_S)  # both holds' time is up; nothing has been written since

    shown = card(ledger, alliance, number)
    pending = statement(ledger, number)
    assert shown.held_minor == 0 and shown.balance_minor == 100_00
    assert [m.kind for m in pending[-2:]] == ["EXPIRED", "EXPIRED"]
    assert [m.amount_minor for m in pending[-2:]] == [30_00, 20_00]  # earliest first
    assert (pending[-1].balance_minor, pending[-1].held_minor) == (100_00, 0)
    assert pending[-2].recorded_at_us == authorized_at_us + HOLD_TTL_S * 1_000_000  # its expiry
    assert [m.version for m in pending] == list(range(1, len(pending) + 1))
    assert statement(ledger, number, after=len(pending) - 2, limit=1) == pending[-2:-1]
    assert early.card.version == len(pending) - 3

    # The next write records the lapses first, at the versions the statement showed.
    ok(ledger.call(alliance.t1, cc.LoadValue(number, 1_00, "USD", "p"), request_id=rid("l")))
    recorded = statement(ledger, number)
    assert [(m.version, m.kind, m.amount_minor, m.held_minor) for m in recorded[:-1]] == [
        (m.version, m.kind, m.amount_minor, m.held_minor) for m in pending]
    assert recorded[-1].kind == "LOADED" and recorded[-1].balance_minor == 101_00
    final = card(ledger, alliance, number)
    assert (recorded[-1].balance_minor, recorded[-1].held_minor) == (
        final.balance_minor, final.held_minor)
