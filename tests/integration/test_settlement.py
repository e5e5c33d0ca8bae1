"""Settlement periods on the log (issue 9, section 3): a close is a marker in the log, every
movement lands in exactly one period, a period's statements come from the read model and equal
an independent walk of the log, a rebuild gives the same digest, and only ADMIN or the
alliance's FINANCE may close."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest

from domain.cards import commands as cc
from domain.common import InvalidInput, Result
from domain.registry.events import SettlementPeriodClosed, SettlementPeriodMarked
from domain.settlement.model import Category
from domain.settlement.periods import CloseSettlementPeriod
from ledger.codec import REGISTRY_ID, decode_event
from ledger.engine import Failure, Ledger
from ledger.refusals import Refusal
from projections.settlement import period_statements, periods, settlement_runner
from tests.support.alliance import ok, rid

USD = "USD"


def call(ledger: Ledger, who: str, command: Any) -> Any:
    return ledger.call(who, command, request_id=rid("settle"), timeout_s=30)


def card(ledger: Ledger, alliance: Any, *, manager: str, load: int) -> str:
    number = ok(call(ledger, manager, cc.IssueCard("", "STANDARD", USD, "",
                                                   "A1" if manager == alliance.p2_manager
                                                   else "S1"))).card_number
    assert ok(call(ledger, manager, cc.ActivateCard(number, ""))).result == Result.APPROVED
    assert ok(call(ledger, manager, cc.LoadValue(number, load, USD, "psp"))).result == 1
    return number


def spend(ledger: Ledger, terminal: str, number: str, amount: int) -> str:
    hold = ok(call(ledger, terminal, cc.Authorize(number, amount, USD, False, "")))
    assert hold.result == Result.APPROVED, hold
    assert ok(call(ledger, terminal, cc.Capture(hold.authorization_id, 0))).result == 1
    return hold.authorization_id


def close(ledger: Ledger, who: str, note: str = "") -> int:
    reply = ok(call(ledger, who, CloseSettlementPeriod(note)))
    assert reply.result == Result.APPROVED, reply
    return reply.period_id


def walk_the_log(ledger: Ledger) -> tuple[dict[int, dict[tuple[str, str, int], int]], int]:
    """Each period's signed flows, by a walk of the whole log that shares nothing with the
    read model but the legs' meaning: a clearing leg i->a of +x is i owing a x."""
    found: dict[int, dict[tuple[str, str, int], int]] = defaultdict(lambda: defaultdict(int))
    store = ledger.store
    open_period = 1
    for lane in store.lanes():  # one log; or the registry's lane, then each card lane
        period, start = 1, 1
        while page := store.read_lane(lane, start, 500):
            for row in page:
                event = decode_event(row.state)
                if row.originator_id == REGISTRY_ID:
                    period += isinstance(event, SettlementPeriodClosed)
                    open_period = period
                    continue
                if isinstance(event, SettlementPeriodMarked):  # a card lane's close
                    period = event.period_id + 1
                    continue
                for leg in getattr(event, "legs", ()):
                    parts = leg.account.split(":")
                    if parts[0] == "clearing" and parts[1] != parts[2]:
                        found[period][(parts[1], parts[2], Category.SV_SPENT_ACROSS)] += (
                            leg.amount_minor)
            start = page[-1].id + 1
    return found, open_period  # the flows by period, and the open period


def test_a_period_holds_what_was_committed_before_its_close(ledger, alliance):
    retail = card(ledger, alliance, manager=alliance.p1_manager, load=10_000)
    airline = card(ledger, alliance, manager=alliance.p2_manager, load=10_000)
    first = spend(ledger, alliance.t_air, retail, 300)  # P1's card at P2's lounge
    spend(ledger, alliance.t1, airline, 100)  # P2's card at P1's store
    spend(ledger, alliance.t1, retail, 999)  # P1 at P1: owes nobody
    assert close(ledger, alliance.finance, "November") == 1
    spend(ledger, alliance.t_air, retail, 50)
    assert ok(call(ledger, alliance.t_air, cc.Refund(first, 80))).result == Result.APPROVED

    runner = settlement_runner(ledger.store)
    closed, open_ = periods(runner)
    assert (closed.period_id, closed.note, open_.period_id) == (1, "November", 2)
    assert closed.position > 0 and open_.closed_at_us == 0
    statements, instructions = period_statements(runner, 1)
    p1 = statements.statement(USD, "P1")
    p2 = statements.statement(USD, "P2")
    assert p1 is not None and p2 is not None
    assert (p1.gross_payable_minor, p1.gross_receivable_minor, p1.multilateral_net_minor) == (
        300, 100, -200)
    assert p2.multilateral_net_minor == 200
    assert [(i.payer_id, i.payee_id, i.amount_minor) for i in instructions] == [
        ("P1", "P2", 200)]
    # the open period: 50 spent, 80 refunded on a capture of period 1: P2 owes P1 30 now
    second, _ = period_statements(runner, 2)
    assert second.statement(USD, "P1").multilateral_net_minor == 30  # type: ignore[union-attr]
    # a closed period recomputed later, and after a rebuild from zero: the same bytes
    digest = statements.digest()
    spend(ledger, alliance.t_air, retail, 7)
    runner.rebuild()
    assert period_statements(runner, 1)[0].digest() == digest
    with pytest.raises(InvalidInput, match="period_id"):
        period_statements(runner, 3)


@pytest.mark.parametrize(("who", "allowed"), [
    ("admin", True), ("finance", True), ("auditor", False), ("p1_manager", False),
    ("s1_manager", False), ("t1", False)])
def test_who_may_close_a_period(ledger, alliance, who, allowed):
    reply = call(ledger, getattr(alliance, who), CloseSettlementPeriod("month end"))
    if allowed:
        assert ok(reply).period_id == 1
    else:
        assert isinstance(reply, Failure) and reply.code == Refusal.DENIED
        assert periods(settlement_runner(ledger.store))[-1].period_id == 1  # nothing written


@pytest.mark.parametrize("note", ["x" * 10_000, "line\nbreak"])
def test_a_bad_note_is_refused_naming_the_field(note):
    with pytest.raises(InvalidInput, match="note"):
        CloseSettlementPeriod(note).validate()


@pytest.mark.backends("sqlite", "postgres", "split")
@pytest.mark.parametrize("seed", [1, 2])
def test_every_movement_lands_in_exactly_one_period_with_two_engines(ledger, other, alliance,
                                                                     seed):
    """Random cross-partner spending and refunds through two engines on one database, closes
    between them; each period's sums equal a walk of the log, the multilateral nets of each
    period sum to zero, and the instructions settle every net."""
    rng = random.Random(seed)
    retail = [card(ledger, alliance, manager=alliance.p1_manager, load=100_000)
              for _ in range(3)]
    airline = [card(ledger, alliance, manager=alliance.p2_manager, load=100_000)
               for _ in range(3)]
    captured: list[tuple[str, str]] = []
    runner = settlement_runner(ledger.store)
    for step in range(60):
        engine = ledger if rng.random() < 0.5 else other
        roll = rng.random()
        if roll < 0.08:
            close(engine, alliance.admin)
        elif roll < 0.2 and captured:
            terminal, authorization = rng.choice(captured)
            call(engine, terminal, cc.Refund(authorization, rng.randint(1, 5)))
        else:
            terminal, number = rng.choice([(alliance.t_air, rng.choice(retail)),
                                           (alliance.t1, rng.choice(airline)),
                                           (alliance.t3, rng.choice(airline))])
            captured.append((terminal, spend(engine, terminal, number, rng.randint(1, 500))))
        if step % 17 == 0:
            runner.catch_up()  # batches end anywhere, also between a close and what follows
    expected, open_period = walk_the_log(ledger)
    known = periods(runner)
    assert [p.period_id for p in known] == list(range(1, open_period + 1))
    for period in known:
        statements, instructions = period_statements(runner, period.period_id)
        nets = {s.entity_id: s.multilateral_net_minor for s in statements.of_currency(USD)}
        assert sum(nets.values()) == 0
        flows = expected.get(period.period_id, {})
        for entity in ("P1", "P2"):
            owed = sum(v for (payer, _, _), v in flows.items() if payer == entity)
            due = sum(v for (_, payee, _), v in flows.items() if payee == entity)
            assert nets.get(entity, 0) == due - owed, (period, entity)
        settled: dict[str, int] = defaultdict(int)
        for instruction in instructions:
            settled[instruction.payer_id] -= instruction.amount_minor
            settled[instruction.payee_id] += instruction.amount_minor
        assert {k: v for k, v in settled.items() if v} == {k: v for k, v in nets.items() if v}


def test_every_card_event_with_legs_is_classified_for_settlement():
    """The read model decodes only the kinds in _FLOWS (and card openings, closes). A new event
    kind with legs must be added there, or here as one whose legs never leave its card or its
    issuer's funding account."""
    from domain.cards import events as ev
    from projections.settlement import _FLOWS

    stays_home = {ev.ValueLoaded, ev.LoadReversed, ev.ValueAuthorized, ev.AuthorizationReleased,
                  ev.CardReplaced, ev.PointsExpired}
    awaiting: set[type] = set()  # kinds with legs settlement does not read yet: none
    with_legs = {t for t in ev.CARD_EVENTS if "legs" in t.__struct_fields__}
    flows = {t for t in with_legs if t.__struct_config__.tag in _FLOWS}
    assert with_legs == flows | stays_home | awaiting and not flows & (stays_home | awaiting)


def test_read_models_sharing_the_log_read_each_full_batch_once(ledger, alliance):
    from projections.movements import MovementsModel
    from projections.runner import ProjectionRunner, SharedLog

    retail = card(ledger, alliance, manager=alliance.p1_manager, load=10_000)
    for _ in range(12):
        spend(ledger, alliance.t_air, retail, 1)
    log = SharedLog(ledger.store)
    runners = [ProjectionRunner(ledger.store, model, batch_rows=5, log=log)
               for model in (MovementsModel(), settlement_runner(ledger.store).model)]
    end = ledger.store.max_notification_id()
    while any(runner.position < end for runner in runners):  # side by side, as in `project`
        for runner in runners:
            runner.step()
    assert all(runner.position == end for runner in runners)
    full, short = divmod(end, 5)
    # the first runner reads every batch; the second finds the full ones kept and reads only
    # the short one at the log's end (which may still grow, so it is never kept)
    assert log.reads == full + 2 * (1 if short else 0)
    alone = settlement_runner(ledger.store)
    alone.rebuild()
    assert period_statements(alone, 1)[0].digest() == period_statements(runners[1], 1)[0].digest()
