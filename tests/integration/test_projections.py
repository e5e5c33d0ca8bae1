"""The projection runner and the read models on it, on both stores: a crash in the middle of a
batch leaves rows and position in agreement; a restarted runner resumes from its position; a
rebuild from scratch gives identical rows; two runners never apply a batch twice; holes in the
log are skipped. The movements model equals the fold of each card's history; the maintenance
job visits exactly the cards it should after a restart without reading the log from 0; the
audit command's exit status, also on a tampered log row."""

from __future__ import annotations

import subprocess
import threading
from typing import Any

import msgspec
import pytest

from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.cards import events as ev
from domain.cards.events import CardEvent
from domain.common import Principal, Role
from domain.coupons.model import IssueCoupon
from ledger.codec import REGISTRY_ID, card_stream_id, decode_event, encode
from ledger.engine import Ledger
from ledger.store import Conflict, EventStore, Session
from projections.audit import audit_replay
from projections.maintenance import PointsExpiry, maintenance_runner
from projections.movements import (
    Movement,
    MovementsModel,
    _lapsed_holds,
    list_movements,
    movement,
    movements_runner,
)
from projections.runner import ProjectionRunner
from tests.integration.test_engine_stories import _busy_history, approved, authorize, call, new_card
from tests.integration.test_purchase_stories import basket, buy, campaign, purchase, setup_program
from tests.support.alliance import ok, rid
from tests.support.lanes import all_rows, lane_tables
from tests.support.processes import ROOT, cli, env

ADMIN = Principal(Role.ADMIN)
DAY_S = 86_400


def folded(store: EventStore, number: str, now_us: int) -> list[Movement]:
    """The statement as ListMovements computed it before the read model: a fold of the card's
    whole history, then the lapsed holds."""
    state: cards.CardState | None = None
    found: list[Movement] = []
    for stored in store.stream(card_stream_id(number)):
        event = decode_event(stored.state)
        assert isinstance(event, CardEvent)
        state = cards.evolve(state, event)
        found.append(movement(state.version, event, state))
    assert state is not None
    return found + _lapsed_holds(state, 0, 10**6, now_us)


def model_rows(store: EventStore) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with store.session(commit=False) as session:
        rows = session.query("SELECT * FROM proj_movements ORDER BY stream_id, version")
        states = session.query("SELECT stream_id, card_number, issuer, version, state, pending "
                               "FROM proj_movement_cards ORDER BY stream_id")
    return ([tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows],
            [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in states])


def card_rows_up_to(store: EventStore, position: int | dict[int, int] | None = None) -> int:
    """Card events in the log at or below `position` (one per lane: a runner's `positions()`;
    None: the whole log): the rows the model must hold."""
    count = 0
    for lane in store.lanes():
        upto = position.get(lane, 0) if isinstance(position, dict) else position
        start = 1
        while page := store.read_lane(lane, start, 1_000):
            count += sum(1 for row in page if (upto is None or row.id <= upto)
                         and row.originator_id != REGISTRY_ID)
            start = page[-1].id + 1
    return count


def recording_reads(store: EventStore) -> list[tuple[int, int]]:
    """Record (lane, start) of every read of the log (the runner reads lane by lane; on one
    log lane 0 is read_log); undo with `del store.read_lane`."""
    starts: list[tuple[int, int]] = []
    read_lane = store.read_lane

    def recording(lane: int, start: int, limit: int) -> Any:
        starts.append((lane, start))
        return read_lane(lane, start, limit)

    store.read_lane = recording  # type: ignore[method-assign]
    return starts


def first_reads(starts: list[tuple[int, int]]) -> dict[int, int]:
    first: dict[int, int] = {}
    for lane, start in starts:
        first.setdefault(lane, start)
    return first


def traffic(ledger: Ledger, alliance: Any, clock: Any, cards_n: int = 3,
            ops: int = 12) -> list[str]:
    numbers = [new_card(ledger, alliance, load=50_000) for _ in range(cards_n)]
    for step in range(ops):
        number = numbers[step % cards_n]
        hold = approved(authorize(ledger, alliance.t1, number, 100 + step))
        if step % 3:
            approved(call(ledger, alliance.t1, cc.Capture(hold.authorization_id, 0)))
        clock.advance(60)
    return numbers


def test_movements_from_the_model_equal_the_fold_of_each_history(ledger, alliance, clock):
    numbers = _busy_history(ledger, alliance, clock)
    # a hold left to lapse, not yet recorded: appended at read time by both
    approved(authorize(ledger, alliance.t1, numbers[0], 1_000))
    clock.advance(8 * DAY_S)
    statements = movements_runner(ledger.store)
    for number in numbers:
        expected = folded(ledger.store, number, clock())
        assert list_movements(statements, ADMIN, number, 0, 1_000, clock()) == expected
        for after in range(len(expected)):  # every page of two
            page = list_movements(statements, ADMIN, number, after, 2, clock())
            assert page == expected[after:after + 2], (number, after)
    assert any(m.kind == "EXPIRED" for m in folded(ledger.store, numbers[0], clock()))


class Crashing:
    """The movements model, failing after it wrote its rows in the `fail_at`-th batch."""

    def __init__(self, fail_at: int) -> None:
        self.inner = MovementsModel()
        self.name = self.inner.name
        self.fail_at = fail_at
        self.writes = 0

    def create(self, session: Session) -> None:
        self.inner.create(session)

    def drop(self, session: Session) -> None:
        self.inner.drop(session)

    def prepare(self, store: EventStore, rows: Any) -> Any:
        return self.inner.prepare(store, rows)

    def write(self, session: Session, prepared: Any) -> None:
        self.inner.write(session, prepared)
        self.writes += 1
        if self.writes == self.fail_at:
            raise RuntimeError("the process dies here, its rows written, before the commit")


def test_a_crash_in_a_batch_leaves_rows_and_position_in_agreement(ledger, alliance, clock):
    numbers = traffic(ledger, alliance, clock)
    crashing = ProjectionRunner(ledger.store, Crashing(fail_at=3), batch_rows=7)
    with pytest.raises(RuntimeError):
        crashing.catch_up()
    position = ProjectionRunner(ledger.store, MovementsModel()).positions()
    assert crashing.batches_applied == 2 and sum(position.values()) > 0
    rows, _ = model_rows(ledger.store)
    assert len(rows) == card_rows_up_to(ledger.store, position)  # the third batch left nothing
    # A fresh runner (the restarted process) resumes there and ends where a rebuild ends.
    resumed = ProjectionRunner(ledger.store, MovementsModel(), batch_rows=7)
    assert resumed.catch_up() == ledger.store.max_notification_id()
    after_resume = model_rows(ledger.store)
    resumed.rebuild()
    assert model_rows(ledger.store) == after_resume
    for number in numbers:
        assert list_movements(resumed, ADMIN, number, 0, 1_000, clock()) == folded(
            ledger.store, number, clock())


def test_a_restarted_runner_resumes_from_its_position_and_a_rebuild_is_identical(
        ledger, alliance, clock):
    traffic(ledger, alliance, clock)
    first = movements_runner(ledger.store)
    done = first.catch_up()
    at = first.positions()  # per lane ({0: done} on one log)
    traffic(ledger, alliance, clock, cards_n=2, ops=4)
    restarted = ProjectionRunner(ledger.store, MovementsModel(), batch_rows=5)
    starts = recording_reads(ledger.store)
    try:
        assert restarted.position == done
        restarted.catch_up()
    finally:
        del ledger.store.read_lane
    first_read = first_reads(starts)
    # not the start of the log: each lane from where the first runner left it
    assert first_read and all(start == at[lane] + 1 for lane, start in first_read.items())
    live = model_rows(ledger.store)
    assert len(live[0]) == card_rows_up_to(ledger.store, restarted.positions())
    assert restarted.rebuild() == ledger.store.max_notification_id()
    assert model_rows(ledger.store) == live


def test_two_runners_on_one_database_never_apply_a_batch_twice(ledger, alliance, clock):
    numbers = traffic(ledger, alliance, clock, cards_n=4, ops=40)
    runners = [ProjectionRunner(ledger.store, MovementsModel(), batch_rows=3) for _ in range(3)]
    errors: list[BaseException] = []

    def run(runner: ProjectionRunner) -> None:
        try:
            runner.catch_up()
        except BaseException as error:  # pragma: no cover - shown by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(r.batches_applied for r in runners) >= 1
    rows, _ = model_rows(ledger.store)
    assert len(rows) == card_rows_up_to(ledger.store)
    for number in numbers:
        assert list_movements(runners[0], ADMIN, number, 0, 1_000, clock()) == folded(
            ledger.store, number, clock())


def test_holes_in_the_log_are_skipped(ledger, alliance, clock, store):
    number = new_card(ledger, alliance, load=1_000)
    statements = movements_runner(store)
    statements.catch_up()
    stored = store.stream(card_stream_id(number))
    with pytest.raises(Conflict):  # takes ids from the sequence on PostgreSQL, commits nothing
        store.append([stored[0], stored[0]], [])
    approved(call(ledger, alliance.t1, cc.LoadValue(number, 5, "USD", "p")))
    assert statements.catch_up() == store.max_notification_id()
    assert [m.kind for m in list_movements(statements, ADMIN, number, 0, 100, clock())] == [
        "ISSUED", "ACTIVATED", "LOADED", "LOADED"]


def test_the_movements_model_follows_in_a_thread(ledger, alliance, clock):
    number = new_card(ledger, alliance, load=1_000)
    runner = movements_runner(ledger.store).start(poll_s=0.05)
    try:
        approved(call(ledger, alliance.t1, cc.LoadValue(number, 5, "USD", "p")))
        target = ledger.store.max_notification_id()
        for _ in range(200):
            if runner.position >= target:
                break
            threading.Event().wait(0.05)
        assert runner.position >= target
    finally:
        runner.stop()


def test_maintenance_visits_exactly_its_cards_after_a_restart_without_reading_from_0(
        ledger, alliance, clock):
    setup_program(ledger, alliance)
    ok(ledger.call(alliance.p1_manager, campaign("GIFT", clock), request_id=rid("camp")))
    buyer = new_card(ledger, alliance, load=100_00)
    buy(ledger, alliance, purchase(buyer, basket(("mug-1", "home", 1, 12_00)), stored_value=12_00))
    gifted = new_card(ledger, alliance, load=0)  # a coupon by hand, never a purchase
    ok(ledger.call(alliance.s1_manager, IssueCoupon(gifted, "GIFT"), request_id=rid("cp")))
    new_card(ledger, alliance, load=10_00)  # nothing to maintain
    first = PointsExpiry(ledger).run(clock())
    assert (first.cards_checked, first.log_position_before) == (2, 0)

    later = new_card(ledger, alliance, load=100_00)
    buy(ledger, alliance, purchase(later, basket(("pen-1", "office", 1, 5_00)), stored_value=5_00))
    replacement = approved(call(ledger, alliance.s1_manager,
                                cc.ReplaceCard(buyer, "", ""))).card_number
    clock.advance(31 * DAY_S)  # the coupon's time is up
    at = maintenance_runner(ledger.store).positions()  # per lane ({0: p} on one log)
    starts = recording_reads(ledger.store)
    visited: list[str] = []
    submit = ledger.submit
    ledger.submit = lambda request: (visited.append(request.command.card_number),  # type: ignore[method-assign]
                                     submit(request))[1]
    try:
        restarted = PointsExpiry(ledger).run(clock())  # a new process: a new job object
    finally:
        del ledger.store.read_lane, ledger.submit
    first_read = first_reads(starts)
    assert restarted.log_position_before == sum(at.values()) > 0 and first_read
    assert all(start == at[lane] + 1 for lane, start in first_read.items())
    assert sorted(visited) == sorted([buyer, gifted, later, replacement])
    assert restarted.failures == 0
    lapsed = [decode_event(e.state) for e in ledger.store.stream(card_stream_id(gifted))]
    assert [e.remaining_minor for e in lapsed if isinstance(e, ev.CouponExpired)] == [20_00]
    again = maintenance_runner(ledger.store)
    again.rebuild()  # from scratch: the same cards
    ledger.submit = lambda request: (visited.append(request.command.card_number),  # type: ignore[method-assign]
                                     submit(request))[1]
    visited.clear()
    try:
        PointsExpiry(ledger).run(clock())
    finally:
        del ledger.submit
    assert sorted(visited) == sorted([buyer, gifted, later, replacement])


def _tamper_with_a_purchase(store: EventStore) -> str:
    """Raise the points of the first purchase that earned some, straight in the table (its
    lane's on a split log)."""
    for row in all_rows(store):
        if row.topic == ev.PurchaseMade.__struct_config__.tag:
            event = decode_event(row.state)
            assert isinstance(event, ev.PurchaseMade)
            if event.lot is not None:
                forged = msgspec.structs.replace(
                    event, lot=msgspec.structs.replace(event.lot,
                                                       amount=event.lot.amount + 1_000))
                with lane_tables(store, store.lane_of(row.originator_id)) as (
                        session, events, _, key):
                    assert session.execute(f"UPDATE {events} SET state = ? WHERE {key} = ?",
                                           (encode(forged), row.id)) == 1
                return event.purchase_id
    raise AssertionError("no purchase earned points")


def test_the_audit_command_exit_status_and_a_tampered_purchase(ledger, alliance, clock,
                                                                store_url, capsys):
    setup_program(ledger, alliance)
    numbers = [new_card(ledger, alliance, load=500_00) for _ in range(3)]
    for step in range(9):
        buy(ledger, alliance, purchase(numbers[step % 3], stored_value=55_00))
    ledger.stop()

    def audit() -> subprocess.CompletedProcess[str]:
        return subprocess.run(cli("audit", "replay", "--database", store_url), cwd=ROOT,
                              env=env(), capture_output=True, text=True, timeout=120,
                              check=False)

    clean = audit()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.startswith("audit replay: OK (") and "9 purchases" in clean.stdout
    assert "100%" in clean.stderr  # the progress bar
    forged = _tamper_with_a_purchase(ledger.store)
    assert audit_replay(ledger.store) == 1
    out = capsys.readouterr().out
    assert f"purchase {forged}" in out and "earns" in out, out
    tampered = audit()
    assert tampered.returncode == 1 and f"purchase {forged}" in tampered.stdout
    missing = subprocess.run(cli("audit", "replay"), cwd=ROOT, env=env(), capture_output=True,
                             text=True, timeout=60, check=False)
    assert missing.returncode == 2 and "--database" in missing.stderr
    ledger.start()  # the fixture stops it again
