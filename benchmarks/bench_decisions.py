"""The pure decisions on the hot path: input checks, decide, evolve, expiry and access checks.

Per authorization the writer runs Authorize.validate (in the server), the access check,
expired_holds (O(1) when nothing is due), decide_authorize and evolve.
"""

from __future__ import annotations

import time

from domain import access, postings
from domain.cards import commands as cc
from domain.cards import events as ev
from domain.cards.decide import (
    NO_EXPIRY,
    CardState,
    Context,
    decide_authorize,
    decide_capture,
    evolve,
    expired_holds,
    fold,
)
from domain.common import APPROVALS, Meta, Principal, Role, luhn_complete, luhn_valid

CARD = luhn_complete("800000000000001")
NOW_US = time.time_ns() // 1000
META = Meta("bench-req-000001", "c0123456789abcdef", int(Role.TERMINAL), "P1", "S1", "T1", NOW_US)
CONTEXT = Context(META, NOW_US, 100_000_000, 7 * 86_400_000_000, "P1")
TERMINAL = Principal(Role.TERMINAL, "P1", "S1", "T1")
AUTHORIZE = cc.Authorize(CARD, 100, "USD", False, "")


def _card(authorizations: int = 0) -> CardState:
    events: list[ev.CardEvent] = [
        ev.CardIssued(META, CARD, "STANDARD", "USD", "P1", "S1", "cust"),
        ev.CardActivated(META, ""),
        ev.ValueLoaded(META, 90_000_000, "pay", postings.move(
            postings.funding("P1"), postings.available(CARD), 90_000_000)),
    ]
    state = fold(events)
    assert state is not None
    for _ in range(authorizations):
        state = evolve(state, decide_authorize(state, AUTHORIZE, CONTEXT).events[0])
    return state


def test_validate_authorize(benchmark):
    benchmark(AUTHORIZE.validate)


def test_luhn(benchmark):
    assert benchmark(luhn_valid, CARD)


def test_access_authorize(benchmark):
    assert benchmark(access.authorize, TERMINAL) is None


def test_expired_holds_none_due(benchmark):
    state = _card(50)
    assert benchmark(expired_holds, state, NOW_US, META) == ()


def test_decide_authorize(benchmark):
    state = _card(10)
    decision = benchmark(decide_authorize, state, AUTHORIZE, CONTEXT)
    assert decision.result in APPROVALS


def test_decide_and_evolve_authorize(benchmark):
    """The whole in-memory cost of one approval: decide, then fold its event into the state
    (the state keeps the hold, as the writer's cached state does)."""
    state = _card()

    def authorize() -> CardState:
        decision = decide_authorize(state, AUTHORIZE, CONTEXT)
        return evolve(state, decision.events[0])

    benchmark(authorize)
    assert state.held_minor >= 100 and state.next_expiry_us != NO_EXPIRY


def test_decide_capture(benchmark):
    state = _card(10)
    authorization_id = next(iter(state.holds))
    decision = benchmark(decide_capture, state, cc.Capture(authorization_id, 0), CONTEXT)
    assert decision.result in APPROVALS


def test_copy_state_100_holds(benchmark):
    """CardState.copy (msgpack round trip): what a caller pays to keep an old state."""
    state = _card(100)
    assert benchmark(state.copy).version == state.version

