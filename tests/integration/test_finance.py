"""The finance read model and reports (issue 9, sections 5 and 6) on random traffic, on both
stores: liability as of any day equals a fold of every card's events up to then; the
roll-forward between any two days ties to the minor unit and each of its lines equals the
events' own amounts; breakage is what expired; the per-card balances equal each card's state;
a rebuild from zero, and a model followed by two runners, give the digest of the live one.

The traffic (a seeded generator, forty simulated days with a clock the test moves): loads,
load reversals, authorizations captured in part or in full, voided or left to lapse, refunds
and capture reversals, purchases paying with stored value and points and earning points
(P1's program keeps them pending three days and expires them after a month), returns,
exchanges between P1's and P2's programs, the expiry job, and a card replaced. One world per
store, built once for the module."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.cards import events as ev
from domain.common import InvalidInput
from domain.exchange.commands import ExecuteExchange, QuoteExchange
from domain.exchange.rates import ExchangeRate, PublishExchangeRate, Rounding
from domain.liability import days
from domain.points.program import DefineProgram
from domain.points.purse import ExpiryKind
from domain.purchases.commands import Purchase, Return, ReturnLine
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Line, Rule, RuleSet
from ledger.codec import REGISTRY_ID, Outcome, card_stream_id, decode_event
from ledger.engine import Ledger
from ledger.store import open_store
from projections import finance
from projections.finance import finance_runner
from projections.maintenance import PointsExpiry
from projections.runner import ProjectionRunner, bulk
from tests.support.alliance import FakeClock, build_alliance, rid, started_ledger
from tests.support.databases import fresh_postgres

USD = "USD"
DAYS = 40
P1_VALUE, P2_VALUE = 1_000_000, 2_500_000  # micros per point: 1 cent, 2.5 cents


class World:
    def __init__(self, ledger: Ledger, alliance: Any, clock: FakeClock, url: str) -> None:
        self.ledger, self.alliance, self.clock, self.url = ledger, alliance, clock, url
        self.first_day = days.day_of(clock.now_us)
        self.runner = finance_runner(ledger.store)
        self.live_digests: list[str] = []

    def call(self, who: str, command: Any, request_id: str | None = None) -> Any:
        return self.ledger.call(who, command, request_id=request_id or rid("fin"),
                                timeout_s=60)

    @property
    def day(self) -> str:
        return days.day_of(self.clock.now_us)


def _earn_rules(scope: str, rule_set_id: str) -> PublishRuleSet:
    return PublishRuleSet(RuleSet(rule_set_id=rule_set_id, version=1, scope=scope,
                                  valid_from_us=0, valid_to_us=2**62, rules=(
                                      Rule(rule_id="base", effect=Effect.EARN, rate_num=1,
                                           rate_den=100),)))


def _traffic(w: World, seed: int) -> None:
    a, rng = w.alliance, random.Random(seed)
    ok = lambda reply: isinstance(reply, Outcome) and reply.result in (1, 2)  # noqa: E731
    assert ok(w.call(a.p1_manager, DefineProgram("P1", USD, P1_VALUE, ExpiryKind.MONTHS_AFTER,
                                                 1, "UTC", 3)))
    assert ok(w.call(a.p2_manager, DefineProgram("P2", USD, P2_VALUE, ExpiryKind.NEVER, 0,
                                                 "UTC", 0)))
    assert ok(w.call(a.p1_manager, _earn_rules("partner:P1", "p1-base")))
    assert ok(w.call(a.p2_manager, _earn_rules("partner:P2", "p2-base")))
    for source, target, num, den in (("P1", "P2", 1, 3), ("P2", "P1", 5, 2)):
        assert ok(w.call(a.admin, PublishExchangeRate(ExchangeRate(
            source, target, 1, 0, num, den, int(Rounding.DOWN), 2, 100, 10, 100_000, 0, 0))))
    numbers: list[str] = []
    for index in range(8):
        manager, store = (a.p1_manager, "S1") if index < 5 else (a.p2_manager, "A1")
        number = w.call(manager, cc.IssueCard("", "STANDARD", USD, "", store)).card_number
        assert ok(w.call(manager, cc.ActivateCard(number, "")))
        numbers.append(number)
    managers = {n: (a.t1 if i < 5 else a.t_air) for i, n in enumerate(numbers)}
    p1 = set(numbers[:5])  # the cards P1 issued (their own program: P1's)
    terminals = (a.t1, a.t_air)
    holds: list[tuple[str, str]] = []  # (terminal, authorization id)
    captured: list[tuple[str, str, str]] = []  # (terminal, authorization id, capture req id)
    purchases: list[tuple[str, str, int]] = []  # (terminal, purchase id, lines)
    loads: list[tuple[str, str]] = []  # (manager, request id)
    replaced = False
    for day in range(DAYS):
        for _ in range(rng.randint(4, 9)):
            number = rng.choice(numbers)
            op = rng.random()
            terminal = rng.choice(terminals)
            if op < 0.18:
                request_id = rid("load")
                if ok(w.call(managers[number], cc.LoadValue(number, rng.randint(1, 300) * 100,
                                                            USD, "psp"), request_id)):
                    loads.append((managers[number], request_id))
            elif op < 0.22 and loads:
                manager, original = loads.pop(rng.randrange(len(loads)))
                w.call(manager, cc.Reverse(original))
            elif op < 0.45:
                hold = w.call(terminal, cc.Authorize(number, rng.randint(1, 9_000), USD,
                                                     rng.random() < 0.5, ""))
                if ok(hold):
                    holds.append((terminal, hold.authorization_id))
            elif op < 0.58 and holds:
                terminal, hold_id = holds.pop(rng.randrange(len(holds)))
                request_id = rid("cap")
                if ok(w.call(terminal, cc.Capture(hold_id, rng.choice((0, 0, 1, 500))),
                             request_id)):
                    captured.append((terminal, hold_id, request_id))
            elif op < 0.62 and holds:
                terminal, hold_id = holds.pop(rng.randrange(len(holds)))
                w.call(terminal, cc.Void(hold_id))
            elif op < 0.67 and captured:
                index = rng.randrange(len(captured))
                terminal, hold_id, request_id = captured[index]
                if rng.random() < 0.7:
                    w.call(terminal, cc.Refund(hold_id, rng.randint(1, 40)))
                else:  # the capture held again, then captured or voided later
                    w.call(terminal, cc.Reverse(request_id))
                    holds.append((terminal, captured.pop(index)[1]))
            elif op < 0.85:
                lines = tuple(Line(f"sku-{i}", "general", rng.randint(1, 3),
                                   rng.randint(1, 60) * 100) for i in range(rng.randint(1, 3)))
                reply = w.call(terminal, Purchase(
                    number, USD, lines, 0, True, rng.choice((0, 0, 0, 50, 200)), "", "r",
                    stored_value_pays_rest=rng.random() < 0.7))
                if ok(reply) and reply.purchase is not None:
                    purchases.append((terminal, reply.purchase.purchase_id, len(lines)))
            elif op < 0.90:
                reply = w.call(terminal, QuoteExchange(number, "P1" if number in p1 else "P2",
                                                       "P2" if number in p1 else "P1",
                                                       rng.randint(10, 40), 0), "")
                if ok(reply) and reply.exchange is not None:
                    w.call(terminal, ExecuteExchange(number, reply.exchange.quote_id))
            elif op < 0.96 and purchases:
                terminal, purchase_id, count = rng.choice(purchases)
                w.call(terminal, Return(purchase_id, (ReturnLine(rng.randrange(count), 1),),
                                        "r"))
            elif not replaced and day > DAYS // 2:
                old = numbers[0]
                reply = w.call(a.p1_manager, cc.ReplaceCard(old, "", "lost"))
                if ok(reply):
                    replaced = True
                    new = reply.card_number
                    numbers[0] = new
                    managers[new] = a.t1
                    p1.add(new)
            w.clock.advance(rng.randint(60, 3 * 3600))
        if day % 7 == 6:
            PointsExpiry(w.ledger).run(w.clock.now_us)
        if day % 5 == 0:  # the live model follows in batches of whatever the days brought
            w.runner.catch_up()
        w.clock.advance(rng.randint(12, 30) * 3600)
    w.clock.advance(40 * 86_400)
    PointsExpiry(w.ledger).run(w.clock.now_us)  # every lot of P1 expired by now
    w.runner.catch_up()
    w.live_digests.append(finance.digest(w.runner))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[World]:
    def build(url: str) -> Iterator[World]:
        store = open_store(url)
        store.create_schema()
        clock = FakeClock()
        clock.now_us = 1_790_000_000_000_000  # 2026-09-21: a fixed start, days known
        with started_ledger(store, clock_us=clock) as ledger:
            alliance = build_alliance(ledger, ledger.admin_token)  # type: ignore[attr-defined]
            w = World(ledger, alliance, clock, url)
            _traffic(w, seed=9)
            yield w
        store.close()

    if request.param == "sqlite":
        yield from build(f"sqlite:///{tmp_path_factory.mktemp('finance')}/ledger.db")
    else:
        with fresh_postgres("finance") as url:
            yield from build(url)


# ------------------------------------------------------------------------------ the oracle


def _card_events(w: World) -> dict[uuid.UUID, list[ev.CardEvent]]:
    found: dict[uuid.UUID, list[ev.CardEvent]] = defaultdict(list)
    start = 1
    while page := w.ledger.store.read_log(start, 1_000):
        for row in page:
            if row.originator_id != REGISTRY_ID:
                found[row.originator_id].append(decode_event(row.state))  # type: ignore
        start = page[-1].id + 1
    return found


def _fold_until(w: World, end_us: int) -> dict[uuid.UUID, cards.CardState]:
    """Every card's state from its events recorded before `end_us` (the clock only moves
    forward, so they are a prefix of its stream)."""
    states = {}
    for stream, events in _card_events(w).items():
        state = cards.fold([e for e in events if e.meta.recorded_at_us < end_us])
        if state is not None:
            states[stream] = state
    return states


def oracle_liability(w: World, day: str) -> tuple[dict[str, tuple[int, int]],
                                                  dict[str, tuple[int, int, int]]]:
    end = days.end_us(day)
    sv: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    points: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for state in _fold_until(w, end).values():
        sv[state.issuing_partner_id][0] += state.balance_minor - state.held_minor
        sv[state.issuing_partner_id][1] += state.held_minor
        for lot in state.lots.values():  # the card's own program's, or one it exchanged into
            purse = points[lot.program or state.issuing_partner_id]
            purse[0 if lot.vests_at_us < end else 1] += lot.remaining
        points[state.issuing_partner_id][2] += state.points_debt
    return ({k: (a, h) for k, (a, h) in sv.items()},
            {k: tuple(v) for k, v in points.items() if any(v)})  # type: ignore[misc]


def _lot_programs(w: World) -> dict[str, str]:
    """Every lot's program: its own `program`, else its card's issuer's (as earned)."""
    found: dict[str, str] = {}
    for events in _card_events(w).values():
        issuer = ""
        for e in events:
            if isinstance(e, ev.CardIssued | ev.CardIssuedAsReplacement):
                issuer = e.issuing_partner_id
            lot = getattr(e, "lot", None)
            if lot is not None:
                found[lot.lot_id] = lot.program or issuer
    return found


def oracle_moves(w: World, from_day: str, to_day: str) -> dict[tuple[str, str], int]:
    """(entity, line) -> amount, from the events' own fields, for the events in the window:
    stored value by the card's issuer, points by each lot's program."""
    start, end = days.end_us(days.previous(from_day)), days.end_us(to_day)
    found: dict[tuple[str, str], int] = defaultdict(int)
    program = _lot_programs(w)
    for events in _card_events(w).values():
        issuer = ""
        for e in events:
            if isinstance(e, ev.CardIssued | ev.CardIssuedAsReplacement):
                issuer = e.issuing_partner_id
            if not start <= e.meta.recorded_at_us < end:
                continue
            match e:
                case ev.ValueLoaded():
                    found[issuer, "loaded"] += e.amount_minor
                case ev.LoadReversed():
                    found[issuer, "adjustments"] -= e.amount_minor
                case ev.AuthorizationCaptured():
                    found[issuer, "spent"] += e.amount_minor
                case ev.ValueRefunded() | ev.CaptureReversed():
                    found[issuer, "refunded"] += e.amount_minor
                case ev.PurchaseMade():
                    found[issuer, "spent"] += e.sv_charged_minor
                    for lot_id, points in e.redeemed:
                        found[program[lot_id], "pts:redeemed"] += points
                    if e.lot:
                        found[program[e.lot.lot_id], "pts:earned"] += e.lot.amount
                case ev.PurchaseReturned():
                    found[issuer, "refunded"] += e.sv_refunded_minor
                    for lot_id, points in e.points_restored:
                        found[program[lot_id], "pts:restored"] += points
                    for lot_id, points in e.points_clawed:
                        found[program[lot_id], "pts:clawed_back"] += points
                case ev.PointsExpired():
                    found[program[e.lot_id], "pts:expired"] += e.amount
                case ev.PointsExchanged():
                    for lot_id, points in e.taken:
                        found[program[lot_id], "pts:exchanged_out"] += points
                    found[program[e.lot.lot_id], "pts:exchanged_in"] += e.lot.amount
    return found


# ------------------------------------------------------------------------------ tests


def test_the_traffic_has_every_kind_of_movement(world: World) -> None:
    kinds = {type(e) for events in _card_events(world).values() for e in events}
    assert {ev.ValueLoaded, ev.LoadReversed, ev.AuthorizationCaptured,
            ev.AuthorizationReleased, ev.ValueRefunded, ev.CaptureReversed, ev.PurchaseMade,
            ev.PurchaseReturned, ev.PointsExpired, ev.CardReplaced, ev.PointsExchanged} <= kinds
    found = oracle_moves(world, world.first_day, world.day)
    assert found["P1", "pts:expired"] > 0 and found["P1", "pts:redeemed"] > 0
    assert found["P1", "pts:exchanged_in"] > 0 and found["P2", "pts:exchanged_in"] > 0


def _as_of_days(w: World) -> list[str]:
    first = days.end_us(w.first_day)
    return [days.day_of(first + n * days.DAY_US) for n in range(-1, DAYS + 45, 3)]


def test_liability_equals_the_fold_of_every_card_on_any_day(world: World) -> None:
    for day in _as_of_days(world):
        report = finance.liability(world.runner, day)
        sv, points = oracle_liability(world, day)
        assert {s.issuer_id: (s.available_minor, s.held_minor) for s in report.stored_value
                if s.available_minor or s.held_minor} == {
                    k: v for k, v in sv.items() if any(v)}, day
        assert {p.program_id: (p.vested_points, p.pending_points, p.debt_points)
                for p in report.points if p.outstanding_points or p.debt_points} == points, day
        for p in report.points:
            value = P1_VALUE if p.program_id == "P1" else P2_VALUE
            assert p.point_value_micros == value
            assert p.value_minor == p.outstanding_points * value // 1_000_000


def test_pending_points_vest_three_days_after_they_are_earned(world: World) -> None:
    pending = [finance.liability(world.runner, day).points for day in _as_of_days(world)]
    p1 = [p.pending_points for found in pending for p in found if p.program_id == "P1"]
    assert any(p1) and p1[-1] == 0  # some pending on the way, none left at the end


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, DAYS + 44), st.integers(0, DAYS + 44))
def test_the_roll_forward_ties_and_each_line_is_the_events_own(world: World, a: int,
                                                               b: int) -> None:
    first = days.end_us(world.first_day) - days.DAY_US
    from_day = days.day_of(first + min(a, b) * days.DAY_US)
    to_day = days.day_of(first + max(a, b) * days.DAY_US)
    rows = finance.roll_forward(world.runner, from_day, to_day)
    expected = oracle_moves(world, from_day, to_day)
    sv_open, pts_open = oracle_liability(world, days.previous(from_day))
    sv_close, pts_close = oracle_liability(world, to_day)
    for row in rows:
        lines = dict(row.lines)
        sign = {"spent", "redeemed", "clawed_back", "exchanged_out", "expired", "written_off"}
        assert row.opening + sum(-v if k in sign else v for k, v in lines.items()) == (
            row.closing)
        if row.kind == "STORED_VALUE":
            assert row.opening == sum(sv_open.get(row.entity_id, (0, 0)))
            assert row.closing == sum(sv_close.get(row.entity_id, (0, 0)))
            for line in ("loaded", "spent", "refunded", "adjustments"):
                assert lines[line] == expected.get((row.entity_id, line), 0), line
            assert lines["expired"] == lines["exchanged_in"] == lines["written_off"] == 0
        else:
            assert row.opening == sum(pts_open.get(row.entity_id, (0, 0, 0))[:2])
            assert row.closing == sum(pts_close.get(row.entity_id, (0, 0, 0))[:2])
            for line in ("earned", "redeemed", "restored", "clawed_back", "expired",
                         "exchanged_in", "exchanged_out"):
                assert lines[line] == expected.get((row.entity_id, "pts:" + line), 0), line
            assert lines["adjustments"] == 0


def test_breakage_is_what_expired_month_by_month(world: World) -> None:
    rows = finance.breakage(world.runner, world.first_day, world.day)
    assert rows and {r.kind for r in rows} == {"POINTS"}  # stored value never expires here
    assert sum(r.points for r in rows if r.entity_id == "P1") == oracle_moves(
        world, world.first_day, world.day)["P1", "pts:expired"]
    for r in rows:
        assert r.amount_minor == r.points * P1_VALUE // 1_000_000  # one a day at most here
    by_month: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for events in _card_events(world).values():
        for e in events:
            if isinstance(e, ev.PointsExpired):
                month = by_month[days.day_of(e.meta.recorded_at_us)[:7]]
                month[0] += e.amount
                month[1] += sum(leg.amount_minor for leg in e.legs
                                if leg.account.startswith("points_breakage:"))
    assert {r.month: [r.points, r.posted_minor] for r in rows} == dict(by_month)
    assert all(r.posted_minor for r in rows)  # the ledger posts expiries' value


def test_each_cards_balances_equal_its_state(world: World) -> None:
    now = world.clock.now_us
    for stream, state in _fold_until(world, 2**62).items():
        found = finance.card_balances(world.runner, state.card_number, now)
        assert found is not None and card_stream_id(state.card_number) == stream
        available, held, purses = found
        assert (available, held) == (state.balance_minor - state.held_minor,
                                     state.held_minor)
        expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for lot in state.lots.values():
            expected[lot.program or state.issuing_partner_id][
                0 if lot.vests_at_us <= now else 1] += lot.remaining
        expected[state.issuing_partner_id][2] += state.points_debt
        assert {p: v for p, v in purses.items() if any(v)} == {
            p: tuple(v) for p, v in expected.items() if any(v)}, state.card_number
    assert finance.card_balances(world.runner, "6000000000000000", now) is None


def test_a_rebuild_and_two_runners_give_the_live_digest(world: World) -> None:
    live = world.live_digests[-1]
    assert finance.digest(world.runner) == live
    other = open_store(world.url)
    try:
        rebuilt = ProjectionRunner(other, finance.FinanceModel(), batch_rows=97)
        seen: list[tuple[int, int]] = []
        rebuilt.rebuild(progress=lambda done, total: seen.append((done, total)))
        assert finance.digest(rebuilt) == live
        assert seen and seen[-1][0] == seen[-1][1] > 0  # the progress bar reached its end
        # Two runners on one model, taking turns with different batch sizes: each batch once.
        first = ProjectionRunner(world.ledger.store, finance.FinanceModel(), batch_rows=50)
        second = ProjectionRunner(other, finance.FinanceModel(), batch_rows=33)
        first.rebuild()  # from zero again
        with world.ledger.store.session(commit=True) as session:
            session.execute("UPDATE projection_positions SET position = 0 WHERE name = ?",
                            (finance.NAME,))
            finance.FinanceModel().drop(session)
            finance.FinanceModel().create(session)
        first._position = second._position = -1
        while first.step() + second.step():
            pass
        assert first.batches_applied and second.batches_applied
        assert finance.digest(first) == live
    finally:
        other.close()


@pytest.mark.parametrize(("value", "field"), [
    ("2026-13-01", "as_of"), ("2026-02-30", "as_of"), ("yesterday", "as_of"),
    ("1969-12-31", "as_of"), ("2026-1-01", "as_of"), ("", "as_of")])
def test_a_bad_day_names_its_field(value: str, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        days.parse_day(value, field)
    assert raised.value.field == field


def test_the_report_and_rebuild_commands(world: World) -> None:
    from tests.support.processes import run

    day = days.day_of(days.end_us(world.first_day) + 20 * days.DAY_US)
    done = run("report", "liability", "--as-of", day, "--format", "json", "--database",
               world.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(msgspec.json.encode(
        finance.liability(world.runner, day)))
    done = run("report", "rollforward", "--from", world.first_day, "--to", day, "--format",
               "csv", "--entity", "P1", "--database", world.url)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["kind"], r["entity"]) for r in rows] == [("STORED_VALUE", "P1"),
                                                        ("POINTS", "P1")]
    expected = {r.kind: r for r in finance.roll_forward(world.runner, world.first_day, day,
                                                        "P1")}
    assert int(rows[0]["closing"]) == expected["STORED_VALUE"].closing
    assert int(rows[1]["expired"]) == dict(expected["POINTS"].lines)["expired"]
    done = run("report", "breakage", "--from", world.first_day, "--to", world.day,
               "--database", world.url)
    assert done.returncode == 0 and "POINTS" in done.stdout, done.stderr
    for args, field in ((("liability", "--as-of", "2026-02-30"), "--as-of"),
                        (("rollforward", "--from", "2026-12-02", "--to", "2026-12-01"), "--to"),
                        (("breakage", "--from", "someday"), "--from"),
                        (("liability", "--entity", "P9"), "--entity")):
        done = run("report", *args, "--database", world.url)
        assert done.returncode == 2 and f"{field}:" in done.stderr, (args, done.stderr)
    done = run("project", "--rebuild", "finance", "--database", world.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"digest {world.live_digests[-1]}")
    assert "rebuild finance: log" in done.stderr and "100%" in done.stderr


def _reset(w: World) -> None:
    with w.ledger.store.session(commit=True) as session:
        session.execute("UPDATE projection_positions SET position = 0 WHERE name = ?",
                        (finance.NAME,))
        finance.FinanceModel().drop(session)
        finance.FinanceModel().create(session)


class _Failing(finance.FinanceModel):
    """Its third write fails (a database gone mid-catch-up), after the two before it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, session: Any, b: Any) -> None:
        self.writes += 1
        if self.writes == 3:
            raise RuntimeError("the database went away")
        super().write(session, b)


def test_overlapped_catch_ups_racing_or_failing_still_apply_each_batch_once(
        world: World) -> None:
    """The runner prepares a batch while the one before is written (FinanceModel.overlap):
    two runners catching up at once in two threads, and one whose third write fails and is
    run again, end with the live digest."""
    import threading

    live = world.live_digests[-1]
    _reset(world)
    other = open_store(world.url)
    try:
        runners = [ProjectionRunner(world.ledger.store, finance.FinanceModel(), batch_rows=64),
                   ProjectionRunner(other, finance.FinanceModel(), batch_rows=41)]
        def race(runner: ProjectionRunner) -> None:
            # SQLite may answer "database is locked" to the loser, which goes on below as
            # the projector's follower does at its next poll.
            with contextlib.suppress(Exception):
                runner.catch_up()

        threads = [threading.Thread(target=race, args=(r,)) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        for r in runners:
            r.catch_up()  # a runner that lost the race goes on from the recorded position
        assert finance.digest(runners[0]) == live
        _reset(world)
        failing = ProjectionRunner(other, _Failing(), batch_rows=50)
        with pytest.raises(RuntimeError):
            failing.catch_up()
        # two batches of 50 log rows written, no more
        assert failing.position == world.ledger.store.read_log(1, 100)[-1].id
        failing.catch_up()
        assert finance.digest(failing) == live
    finally:
        other.close()


def test_the_projector_process_follows_the_finance_model(world: World) -> None:
    """`loyalty-ledger project` (what `serve` starts) keeps the finance model beside the
    others: from zero, it reaches the log's end and gives the live digest."""
    import signal
    import subprocess

    from tests.support.alliance import wait_until
    from tests.support.processes import ROOT, cli, env

    _reset(world)
    end = world.ledger.store.max_notification_id()
    runner = finance_runner(world.ledger.store)
    proc = subprocess.Popen(cli("project", "--database", world.url, "--poll-s", "0.05"),
                            cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: runner._read_position() >= end, timeout_s=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=30)
    assert proc.returncode == 0, errors
    assert finance.digest(runner) == world.live_digests[-1]


def test_bulk_rows_come_back_as_written_whatever_their_text_holds(store):
    """The models' bulk statements send a column as one array literal joined in C unless its
    text would need escaping (a quote, a backslash): every kind of value comes back intact."""
    rows = [(bytes(range(16)), "", 0, 'q"uote'), (b"\xff" * 16, "NULL", -(2**62), "back\\slash"),
            (b"\x00" * 16, 'a,b {} "', 2**62, ""), (bytes(16), "\u00e9\u20ac", 7, "plain")]
    with store.session(commit=True) as session:
        session.execute("CREATE TABLE bulk_probe (k BYTEA, a TEXT, n BIGINT, b TEXT)"
                        if session.dialect == "postgres" else
                        "CREATE TABLE bulk_probe (k BLOB, a TEXT, n BIGINT, b TEXT)")
        bulk(session, "INSERT INTO bulk_probe (k, a, n, b)",
                      ("bytea", "text", "bigint", "text"), rows)
        bulk(session, "INSERT INTO bulk_probe (k, a, n, b)",
                      ("bytea", "text", "bigint", "text"), [(b"\x01" * 16, "", 1, "")])
        back = session.query("SELECT k, a, n, b FROM bulk_probe")
    assert sorted((bytes(k), a, n, b) for k, a, n, b in back) == sorted(
        [*rows, (b"\x01" * 16, "", 1, "")])
