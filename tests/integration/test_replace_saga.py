"""ReplaceCard across servers: half a replacement, completed by the retry of its request.

When the old card and the new card live in partitions on different servers, the replacement's
two legs commit in two transactions, either first, and the request key with the last. Each
story here writes one leg through the store (`store.append(events, keys=[])`, the StoredEvents
the first attempt would have written), as a crash between the two commits leaves it, starts a
new ledger on the log (the process that comes back), and sends the retry through it:
 (a) the old card's leg only: the old card replaced by N, card N missing;
 (b) card N's leg only: N issued as the replacement, the old card never marked replaced.
A twin card with the same history is replaced whole, so the completed replacement is checked
against what a whole one answers and writes, not against numbers worked out here.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest

from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.common import CardStatus, Meta, Result
from ledger import limits
from ledger.codec import Outcome, card_stream_id, decode_event
from ledger.engine import Failure, Ledger, Refusal, key_space_of
from ledger.handlers.cards import replacement_numbers
from ledger.handlers.context import system_meta
from ledger.store import open_store
from ledger.work import Work
from projections.finance import card_balances, finance_runner
from projections.movements import list_movements, movements_runner
from tests.support.alliance import (
    PRINCIPALS,
    TEST_COUPON_KEY,
    build_alliance,
    card_number,
    ok,
    rid,
    started_ledger,
)

pytestmark = pytest.mark.backends("sqlite", "postgres")

USD = "USD"
TIMEOUT_S = 15.0
_seeds = itertools.count(7000)


def call(ledger: Ledger, credential: str, command: Any, request_id: str | None = None) -> Any:
    return ledger.call(credential, command, request_id=rid() if request_id is None
                       else request_id, timeout_s=TIMEOUT_S)


def approved(reply: Any) -> Outcome:
    outcome = ok(reply)
    assert outcome.result in (Result.APPROVED, Result.PARTIALLY_APPROVED), outcome
    return outcome


def events_of(store: Any, number: str) -> list[Any]:
    return [decode_event(e.state) for e in store.stream(card_stream_id(number))]


def figures(outcome: Outcome) -> tuple[Any, ...]:
    """What a replacement answers, less the new card's number (the whole card view)."""
    card = outcome.card
    assert card is not None
    return (outcome.result, outcome.kind, outcome.authorization_id,
            outcome.approved_amount_minor, msgspec.structs.replace(card, card_number=""))


@contextmanager
def restarted(store: Any, clock: Any) -> Iterator[Ledger]:
    """A new process on the same log (the one that comes back after the crash)."""
    engine = Ledger(store, clock_us=clock, coupon_key=TEST_COUPON_KEY).start()
    try:
        yield engine
    finally:
        engine.stop()


def card_with_history(ledger: Ledger, alliance: Any) -> tuple[str, str]:
    """A card with value, a pending hold and a refundable capture, blocked (lost).
    (the card, the pending authorization's id)"""
    number = card_number(next(_seeds))
    approved(call(ledger, alliance.s1_manager, cc.IssueCard(number, "STANDARD", USD, "c", "")))
    approved(call(ledger, alliance.s1_manager, cc.ActivateCard(number, "")))
    approved(call(ledger, alliance.t1, cc.LoadValue(number, 10_000, USD, "pay")))
    spent = approved(call(ledger, alliance.t1, cc.Authorize(number, 1_500, USD, False, "")))
    approved(call(ledger, alliance.t1, cc.Capture(spent.authorization_id, 0)))
    pending = approved(call(ledger, alliance.t1, cc.Authorize(number, 2_000, USD, False, "")))
    approved(call(ledger, alliance.s1_manager, cc.BlockCard(number, "lost")))
    return number, pending.authorization_id


def first_attempt(store: Any, alliance: Any, old: str, new: str, request_id: str,
                  now_us: int) -> tuple[list[Any], list[Any]]:
    """The two legs the first attempt of ReplaceCard(old -> new) by s1_manager decides at
    `now_us` (the handler's steps, through the domain): (old card's leg, new card's leg)."""
    principal = PRINCIPALS["s1_manager"]
    meta = Meta(request_id, alliance.s1_manager, int(principal.role), principal.partner_id,
                principal.store_id, principal.terminal_id, now_us)
    state = cards.fold(events_of(store, old))
    assert state is not None
    released = cards.expired_holds(state, now_us, system_meta(now_us))
    before = cards.fold(list(released), state.copy()) if released else state
    assert before is not None
    decision = cards.decide_replace(before, new, False, "lost",
                                    cards.replacement_context(meta))
    assert decision.result == Result.APPROVED
    return [*released, *decision.events], list(decision.replacement_events)


def write_leg(store: Any, number: str, events: list[Any]) -> None:
    """One leg, as the store commits it: the card's next versions, no request key."""
    work = Work()
    version = len(store.stream(card_stream_id(number)))
    for event in events:
        version += 1
        work.append(card_stream_id(number), version, event)
    store.append(work.stored, keys=[])


def legs_total(store: Any, *numbers: str) -> Counter[str]:
    totals: Counter[str] = Counter()
    for number in numbers:
        for event in events_of(store, number):
            for leg in getattr(event, "legs", ()):
                totals[leg.account] += leg.amount_minor
    return totals


def read_models(ledger: Ledger, alliance: Any, old: str, new: str, now_us: int) -> Any:
    """The old and the new card in the movements and finance read models, less what names
    the card or the request: (kind, amount, balance, held) of each movement; the balances."""
    runner = movements_runner(ledger.store)
    seen = []
    for number in (old, new):
        moves = list_movements(runner, PRINCIPALS["s1_manager"], number, 0,
                               limits.MOVEMENTS_PAGE_MAX, now_us)
        assert isinstance(moves, list) and moves, moves
        seen.append([(m.kind, m.amount_minor, m.balance_minor, m.held_minor) for m in moves])
    balances = finance_runner(ledger.store)
    return seen, [card_balances(balances, number, now_us) for number in (old, new)]


@pytest.mark.parametrize("half", ["a", "b"])
@pytest.mark.parametrize("numbered", ["given", "generated"])
def test_the_retry_completes_half_a_replacement(store, clock, half, numbered):
    request_id = f"replace-{half}-{numbered}"
    with started_ledger(store, clock_us=clock) as first:
        alliance = build_alliance(first, first.admin_token)  # type: ignore[attr-defined]
        old, pending = card_with_history(first, alliance)
        twin, _ = card_with_history(first, alliance)
        whole = approved(call(first, alliance.s1_manager, cc.ReplaceCard(twin, "", "lost")))
        twin_new = whole.card_number
        now_us = clock()
    given = card_number(next(_seeds)) if numbered == "given" else ""
    key_space = key_space_of(alliance.s1_manager, PRINCIPALS["s1_manager"])
    new = given or replacement_numbers(old, key_space, request_id)[0]
    old_leg, new_leg = first_attempt(store, alliance, old, new, request_id, now_us)
    old_before = events_of(store, old)
    write_leg(store, *((old, old_leg) if half == "a" else (new, new_leg)))
    clock.advance(3600)  # the retry comes an hour later

    with restarted(store, clock) as ledger:
        retry = cc.ReplaceCard(old, given, "lost")
        reply = approved(call(ledger, alliance.s1_manager, retry, request_id))
        assert reply.card_number == new and not reply.replayed
        assert figures(reply) == figures(whole)
        # Each leg is written once: the old card's stream is its history and the old leg,
        # the new card's is the new leg; both are what a whole replacement writes.
        assert events_of(store, old) == [*old_before, *old_leg]
        assert events_of(store, new) == new_leg
        assert [type(e) for e in events_of(store, twin)[len(old_before):]] == \
            [type(e) for e in old_leg]
        gone = approved(ledger.call(alliance.admin, cc.GetCard(old), timeout_s=TIMEOUT_S))
        assert gone.card is not None
        assert (gone.card.status, gone.card.replaced_by, gone.card.balance_minor,
                gone.card.held_minor) == (CardStatus.REPLACED, new, 0, 0)
        # The legs of both cards: the old card's accounts at zero, the new card's holding
        # exactly what the twin's new card holds (value moved once).
        totals, twin_totals = legs_total(store, old, new), legs_total(store, twin, twin_new)
        for account, amount in (("available", 6_500), ("held", 2_000)):
            assert totals[f"card:{old}:{account}"] == 0
            assert totals[f"card:{new}:{account}"] == amount
            assert twin_totals[f"card:{twin_new}:{account}"] == amount
        # The read models see the completed pair as they see the twin's whole replacement
        # (the legs reached the log in either order, the missing one an hour late).
        assert read_models(ledger, alliance, old, new, clock()) == \
            read_models(ledger, alliance, twin, twin_new, clock())
        # A second retry replays the reply; nothing more is written.
        again = approved(call(ledger, alliance.s1_manager, retry, request_id))
        assert again.replayed and msgspec.structs.replace(again, replayed=False) == reply
        assert (len(events_of(store, old)), len(events_of(store, new))) == (
            len(old_before) + len(old_leg), len(new_leg))
        # The moved hold is the new card's: captured there.
        captured = approved(call(ledger, alliance.t1, cc.Capture(pending, 0)))
        assert captured.card is not None and captured.card.card_number == new
        assert (captured.card.balance_minor, captured.card.held_minor) == (6_500, 0)


def test_half_a_belongs_to_its_request(store, clock):
    """While half (a) exists: another request finds the card replaced (declined, nothing
    written); the same request naming another number or reason is refused (INVALID_INPUT,
    not stored, so the retry as first sent still completes)."""
    with started_ledger(store, clock_us=clock) as first:
        alliance = build_alliance(first, first.admin_token)  # type: ignore[attr-defined]
        old, _ = card_with_history(first, alliance)
        now_us = clock()
    new = card_number(next(_seeds))
    old_leg, new_leg = first_attempt(store, alliance, old, new, "replace-1", now_us)
    write_leg(store, old, old_leg)
    written = len(events_of(store, old))
    with restarted(store, clock) as ledger:
        other = card_number(next(_seeds))
        declined = ok(call(ledger, alliance.s1_manager, cc.ReplaceCard(old, other, "lost")))
        assert declined.result == Result.DECLINED_INVALID_STATE
        assert declined.card is not None  # the reply names the recorded replacement
        assert (declined.card.status, declined.card.replaced_by) == (CardStatus.REPLACED, new)
        declined = ok(call(ledger, alliance.s1_manager, cc.ReplaceCard(old, new, "lost")))
        assert declined.result == Result.DECLINED_INVALID_STATE
        for command, field in ((cc.ReplaceCard(old, other, "lost"), "new_card_number"),
                               (cc.ReplaceCard(old, new, "stolen"), "reason")):
            refused = call(ledger, alliance.s1_manager, command, "replace-1")
            assert isinstance(refused, Failure) and refused.code == Refusal.INVALID_INPUT
            assert refused.message.startswith(field), refused.message
        assert len(events_of(store, old)) == written
        assert events_of(store, new) == events_of(store, other) == []
        reply = approved(call(ledger, alliance.s1_manager, cc.ReplaceCard(old, new, "lost"),
                              "replace-1"))
        assert reply.card_number == new and events_of(store, new) == new_leg


def test_half_b_is_not_completed_once_the_old_card_was_used(store, clock):
    """Half (b) leaves the old card as it was, value included: the old card cannot know of
    N until the retry comes. If it was used in between, the retry cannot complete exactly:
    it is declined and writes nothing (an operator's case, see the README)."""
    with started_ledger(store, clock_us=clock) as first:
        alliance = build_alliance(first, first.admin_token)  # type: ignore[attr-defined]
        old = card_number(next(_seeds))
        approved(call(first, alliance.s1_manager, cc.IssueCard(old, "STANDARD", USD, "c", "")))
        approved(call(first, alliance.s1_manager, cc.ActivateCard(old, "")))
        approved(call(first, alliance.t1, cc.LoadValue(old, 10_000, USD, "pay")))
        now_us = clock()
    new = card_number(next(_seeds))
    _, new_leg = first_attempt(store, alliance, old, new, "replace-1", now_us)
    write_leg(store, new, new_leg)
    with restarted(store, clock) as ledger:
        approved(call(ledger, alliance.t1, cc.Authorize(old, 100, USD, False, "")))
        written = len(events_of(store, old))
        declined = ok(call(ledger, alliance.s1_manager, cc.ReplaceCard(old, new, "lost"),
                           "replace-1"))
        assert declined.result == Result.DECLINED_INVALID_STATE
        assert declined.card is not None and declined.card.card_number == old
        assert len(events_of(store, old)) == written and events_of(store, new) == new_leg


@pytest.mark.parametrize("half", ["a", "b"])
def test_a_live_process_completes_a_half_written_elsewhere(store_url, store, clock, half):
    """The process that serves the retry never stopped: it holds the old card in its cache as
    it was before the half was written (by another process's store, here). It learns of the
    half from the log (or from the failed commit of a stale decision, then in its turn) and
    completes it."""
    with started_ledger(store, clock_us=clock) as ledger:
        alliance = build_alliance(ledger, ledger.admin_token)  # type: ignore[attr-defined]
        old, _ = card_with_history(ledger, alliance)
        new = card_number(next(_seeds))
        old_leg, new_leg = first_attempt(store, alliance, old, new, "replace-1", clock())
        old_before = events_of(store, old)
        elsewhere = open_store(store_url)
        try:
            elsewhere.check_schema()
            write_leg(elsewhere, *((old, old_leg) if half == "a" else (new, new_leg)))
        finally:
            elsewhere.close()
        reply = approved(call(ledger, alliance.s1_manager, cc.ReplaceCard(old, new, "lost"),
                              "replace-1"))
        assert reply.card_number == new
        assert events_of(store, old) == [*old_before, *old_leg]
        assert events_of(store, new) == new_leg
        card = approved(ledger.call(alliance.admin, cc.GetCard(new), timeout_s=TIMEOUT_S)).card
        assert card is not None and (card.balance_minor, card.held_minor) == (8_500, 2_000)


@pytest.mark.parametrize("half", ["a", "b"])
def test_half_of_a_second_replacement_completes(store, clock, half):
    """The card being replaced is itself a replacement (its story starts with
    CardIssuedAsReplacement and carries the earlier number): its half completes the same."""
    with started_ledger(store, clock_us=clock) as first:
        alliance = build_alliance(first, first.admin_token)  # type: ignore[attr-defined]
        oldest, pending = card_with_history(first, alliance)
        old = approved(call(first, alliance.s1_manager,
                            cc.ReplaceCard(oldest, "", "lost"))).card_number
        now_us = clock()
    new = card_number(next(_seeds))
    old_leg, new_leg = first_attempt(store, alliance, old, new, "replace-2", now_us)
    write_leg(store, *((old, old_leg) if half == "a" else (new, new_leg)))
    with restarted(store, clock) as ledger:
        reply = approved(call(ledger, alliance.s1_manager, cc.ReplaceCard(old, new, "lost"),
                              "replace-2"))
        assert reply.card is not None and (reply.card.balance_minor,
                                           reply.card.held_minor) == (8_500, 2_000)
        assert events_of(store, new) == new_leg
        assert events_of(store, old)[-len(old_leg):] == old_leg
        issued = new_leg[0]
        assert issued.carried is not None and issued.carried.previous_numbers == (oldest, old)
        # The hold authorized on the first card follows the chain to the third.
        captured = approved(call(ledger, alliance.t1, cc.Capture(pending, 500)))
        assert captured.card is not None and captured.card.card_number == new
        assert (captured.card.balance_minor, captured.card.held_minor) == (8_000, 0)
