"""Half a replacement, completed (domain/cards/decide.py complete_new_leg, complete_old_leg).

When the old card and the new card live in partitions on different servers, ReplaceCard's two
legs commit in two transactions, either first. A crash between them leaves one of two halves:
 (a) the old card's leg written (CardReplaced, and any lapsed holds released before it), the
     new card missing;
 (b) the new card's leg written (CardIssuedAsReplacement), the old card never marked replaced.
Each row decides a whole replacement on a card's history at T1, keeps one leg as "written",
completes the other from it, and checks that the two legs together are exactly the whole
replacement: the same events, the same cards, every amount moved once.
"""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest

from domain.cards import events as ev
from domain.cards.decide import (
    CardState,
    Decision,
    complete_new_leg,
    complete_old_leg,
    decide_replace,
    evolve,
    fold,
    replacement_context,
)
from domain.common import APPROVALS, CardStatus, Meta, Result, Role
from domain.postings import Leg
from tests.unit.test_card_decisions import (
    AVAIL,
    CARD,
    H_BLOCKED,
    H_CAPTURED,
    H_FUNDED,
    H_HELD,
    H_HELD_BLOCKED,
    H_ISSUED,
    H_REPLACED,
    HELD,
    NEW_AVAIL,
    NEW_CARD,
    NEW_HELD,
    T0,
    TTL,
    authorized,
    loaded,
)

T1 = T0 + 60_000_000  # the first attempt, a minute after the histories' events
RETRY_US = T1 + TTL * 10  # the retry comes much later: its own clock must not matter
REPLACE_META = Meta("replace-1", "cred-manager", int(Role.STORE_MANAGER), "P-ISSUER", "S-HOME",
                    "", T1)
SYSTEM_AT_T1 = Meta("", "system", 0, "", "", "", T1)

# (name, the old card's history): value, pending holds, a refundable capture, blocked cards
HISTORIES = [
    ("issued, never loaded", H_ISSUED),
    ("active with 1000", H_FUNDED),
    ("a pending hold of 300", H_HELD),
    ("blocked with a pending hold", H_HELD_BLOCKED),
    ("blocked with 1000", H_BLOCKED),
    ("a captured authorization still refundable", H_CAPTURED),
    # two holds; the one authorized first has lapsed by T1 and is released by the old leg
    ("a hold lapsed at the replacement", (*H_FUNDED, authorized(4, 300, expires_at_us=T1 - 1),
                                          authorized(5, 200, expires_at_us=T1 + TTL))),
]
HISTORIES_LAPSED = [(n, h) for n, h in HISTORIES if n == "a hold lapsed at the replacement"]


def state_of(history: tuple[ev.CardEvent, ...] | list[ev.CardEvent]) -> CardState:
    state = fold(list(history))
    assert state is not None
    return state


def whole(history: tuple[ev.CardEvent, ...]) -> tuple[tuple[ev.CardEvent, ...],
                                                     tuple[ev.CardEvent, ...]]:
    """The first attempt, as the handler decides it at T1: lapsed holds released, then the
    replacement. (the old card's leg, the new card's leg)"""
    from domain.cards.decide import expired_holds

    state = state_of(history)
    released = expired_holds(state, T1, SYSTEM_AT_T1)
    before = fold(list(released), state) if released else state
    assert before is not None
    decision = decide_replace(before, NEW_CARD, False, "lost", replacement_context(REPLACE_META))
    assert decision.result == Result.APPROVED
    return released + decision.events, decision.replacement_events


def totals(events: list[ev.CardEvent]) -> Counter[str]:
    found: Counter[str] = Counter()
    for event in events:
        for leg in getattr(event, "legs", ()):
            found[leg.account] += leg.amount_minor
    return found


def check_complete(history: tuple[ev.CardEvent, ...], old_leg: tuple[ev.CardEvent, ...],
                   new_leg: tuple[ev.CardEvent, ...]) -> None:
    """Both legs written: the cards are those of a whole replacement and every amount moved
    once (the legs of the whole story: the old card's accounts at zero, the new card's
    holding what the old card had at T1)."""
    expected_old, expected_new = whole(history)
    assert old_leg == expected_old
    assert new_leg == expected_new
    old = state_of([*history, *old_leg])
    new = state_of(list(new_leg))
    before = state_of(history)
    lapsed = sum(e.amount_minor for e in old_leg if isinstance(e, ev.AuthorizationReleased))
    assert (old.status, old.replaced_by, old.balance_minor, old.held_minor) == (
        CardStatus.REPLACED, NEW_CARD, 0, 0)
    assert (new.balance_minor, new.held_minor) == (before.balance_minor,
                                                   before.held_minor - lapsed)
    money = totals([*history, *old_leg, *new_leg])
    assert (money[AVAIL], money[HELD]) == (0, 0)
    assert (money[NEW_AVAIL], money[NEW_HELD]) == (new.available_minor, new.held_minor)
    assert sum(money.values()) == 0


# ------------------------------------------------------------------------------ half (a)


@pytest.mark.parametrize(("name", "history"), HISTORIES, ids=[n for n, _ in HISTORIES])
def test_half_a_the_new_card_is_written_as_the_first_attempt_decided(name, history):
    old_leg, new_leg = whole(history)
    replaced = old_leg[-1]
    assert isinstance(replaced, ev.CardReplaced)
    # What the retry has: the old card's stream up to (not including) CardReplaced.
    before = state_of([*history, *old_leg[:-1]])
    decision = complete_new_leg(before, replaced)
    assert decision.result == Result.APPROVED
    assert decision.events == ()  # nothing more on the old card: its leg is written
    assert decision.replacement_events == new_leg
    check_complete(history, old_leg, decision.replacement_events)


def test_half_a_refuses_a_state_that_does_not_give_the_recorded_leg():
    old_leg, _ = whole(H_FUNDED)
    replaced = old_leg[-1]
    assert isinstance(replaced, ev.CardReplaced)
    # One load too many: the legs it would move (1100) are not the recorded ones (1000).
    wrong = state_of([*H_FUNDED, loaded(100)])
    decision = complete_new_leg(wrong, replaced)
    assert (decision.result, decision.events, decision.replacement_events) == (
        Result.DECLINED_INVALID_STATE, (), ())


# ------------------------------------------------------------------------------ half (b)


@pytest.mark.parametrize(("name", "history"), HISTORIES, ids=[n for n, _ in HISTORIES])
def test_half_b_the_old_card_is_marked_as_the_first_attempt_decided(name, history):
    old_leg, new_leg = whole(history)
    (issued,) = new_leg
    assert isinstance(issued, ev.CardIssuedAsReplacement)
    old = state_of(history)  # nothing of the old leg: not even the lapsed holds' releases
    snapshot = old.copy()
    decision = complete_old_leg(old, issued, "lost", SYSTEM_AT_T1)
    assert old == snapshot, "deciding must not change the state"
    assert decision.result == Result.APPROVED
    assert decision.replacement_events == ()  # the new card's leg is written
    assert decision.events == old_leg
    check_complete(history, decision.events, new_leg)


@pytest.mark.parametrize(("name", "history"), HISTORIES_LAPSED,
                         ids=[n for n, _ in HISTORIES_LAPSED])
def test_half_b_releases_only_what_had_lapsed_at_the_first_attempt(name, history):
    """The hold of 300 lapsed before T1 and is released on the old card; the hold of 200
    lapses after T1 but before the retry: it moved to the new card as pending and lapses
    there, not on the old card."""
    _, (issued,) = whole(history)
    assert isinstance(issued, ev.CardIssuedAsReplacement)
    decision = complete_old_leg(state_of(history), issued, "lost", SYSTEM_AT_T1)
    assert [type(e) for e in decision.events] == [ev.AuthorizationReleased, ev.CardReplaced]
    assert decision.events[0].amount_minor == 300  # type: ignore[attr-defined]
    assert [(h.amount_minor, h.status) for h in issued.holds] == [(200, 1)]
    assert decision.events[0].meta.recorded_at_us == T1 < RETRY_US


def _changed(history: tuple[ev.CardEvent, ...], event: ev.CardEvent) -> list[ev.CardEvent]:
    return [*history, event]


CHANGED = [
    ("loaded since", H_FUNDED, loaded(1)),
    ("spent since", H_FUNDED, authorized(4, 400)),
    ("the hold captured since", H_HELD, ev.AuthorizationCaptured(
        H_HELD[-1].meta, f"{CARD}.4", 300, 0, (Leg(HELD, -300), Leg("clearing:P-ISSUER:P-ACQ",
                                                                     300)))),
    ("blocked since", H_FUNDED, ev.CardBlocked(REPLACE_META, "lost")),
]


@pytest.mark.parametrize(("name", "history", "later"), CHANGED, ids=[c[0] for c in CHANGED])
def test_half_b_is_refused_once_the_old_card_changed(name, history, later):
    """Half (b) leaves the old card active with its value: if it was used before the retry,
    completing would move value the new card does not show (or show it twice). Nothing is
    written; the decline says the old card is not in a state to be replaced."""
    _, (issued,) = whole(history)
    assert isinstance(issued, ev.CardIssuedAsReplacement)
    decision = complete_old_leg(state_of(_changed(history, later)), issued, "lost",
                                SYSTEM_AT_T1)
    assert (decision.result, decision.events) == (Result.DECLINED_INVALID_STATE, ())


def test_half_b_of_another_card_is_refused():
    _, (issued,) = whole(H_FUNDED)
    other = msgspec.structs.replace(issued, replaces=NEW_CARD)
    decision = complete_old_leg(state_of(H_FUNDED), other, "lost", SYSTEM_AT_T1)
    assert decision.result == Result.DECLINED_INVALID_STATE


# ------------------------------------------------------------------------------ once only


@pytest.mark.parametrize(("name", "history"), HISTORIES, ids=[n for n, _ in HISTORIES])
def test_after_completion_nothing_more_moves(name, history):
    """A second retry after either completion finds a whole replacement: the old card is
    replaced, so neither completion nor a new replacement writes anything (the ledger
    answers the stored reply: tests/integration/test_replace_saga.py)."""
    old_leg, (issued,) = whole(history)
    assert isinstance(issued, ev.CardIssuedAsReplacement)
    old_after = state_of([*history, *old_leg])
    again: list[Decision] = [
        complete_old_leg(old_after, issued, "lost", SYSTEM_AT_T1),
        decide_replace(old_after, NEW_CARD, True, "lost", replacement_context(REPLACE_META)),
    ]
    for decision in again:
        assert decision.result not in APPROVALS
        assert (decision.events, decision.replacement_events) == ((), ())


def test_half_a_from_a_leg_written_by_hand():
    """H_REPLACED's CardReplaced is hand-written (legs spelt out, the histories' envelope):
    the decision on the state before it gives exactly it, so it completes."""
    replaced = H_REPLACED[-1]
    assert isinstance(replaced, ev.CardReplaced)
    before = state_of(H_REPLACED[:-1])
    decision = complete_new_leg(before, replaced)
    assert decision.result == Result.APPROVED
    new = evolve(None, decision.replacement_events[0])
    assert (new.card_number, new.balance_minor, new.status) == (NEW_CARD, 1000,
                                                               CardStatus.ACTIVE)


def test_replacement_numbers_are_the_requests_own():
    """A replacement without a number takes one derived from its request: the retry derives
    the same ones (so it finds the new card of half (b)); another request, key space or card
    gets others. Each is a valid 16-digit number, like the generated ones of IssueCard."""
    from domain.common import check_card_number
    from ledger.handlers.cards import replacement_numbers

    numbers = replacement_numbers(CARD, "c:cred-manager", "replace-1")
    assert numbers == replacement_numbers(CARD, "c:cred-manager", "replace-1")
    assert len(set(numbers)) == len(numbers) == 8
    for number in numbers:
        assert check_card_number(number) == number and len(number) == 16
    others = {*replacement_numbers(CARD, "c:cred-manager", "replace-2"),
              *replacement_numbers(CARD, "t:T1", "replace-1"),
              *replacement_numbers(NEW_CARD, "c:cred-manager", "replace-1")}
    assert not others & set(numbers)
