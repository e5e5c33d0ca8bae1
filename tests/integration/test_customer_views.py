"""The customer read model and its views (issue 10, section 1) on random traffic, on both
stores: the model's rows equal an independent recomputation from the purchases and returns in
the log (each card's own state names its customer and its purchases' lines); every view, for
the alliance, a partner and a store, as of several days, equals the view computed from those
recomputed rows; a rebuild from zero, and a model followed by two runners, give the digest of
the live one; the `report` and `project --rebuild customers` commands.

The traffic (a seeded generator over 150 simulated days): customers with one card, with two
cards under one reference, cards without a reference, a replaced card; purchases at P1's two
stores (Asia/Shanghai) and P2's lounge (Europe/Paris) with margins on their lines, some
customers shopping weekly, some rarely, some stopping; partial and full returns."""

from __future__ import annotations

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

from domain.cards import commands as cc
from domain.cards import events as ev
from domain.customers import activity as act
from domain.customers import views
from domain.purchases.commands import Purchase, Return, ReturnLine
from domain.registry import commands as rc
from domain.registry.events import StoreRegistered
from domain.rules.model import Line
from ledger.codec import REGISTRY_ID, Outcome, card_stream_id, decode_event
from ledger.engine import Ledger
from ledger.store import open_store
from projections import customers
from projections.runner import ProjectionRunner
from tests.support.alliance import SETUP, FakeClock, build_alliance, rid, started_ledger
from tests.support.databases import fresh_postgres, split_postgres
from tests.support.lanes import all_rows, rows_by_time

USD = "USD"
DAYS = 150
START_US = 1_780_000_000_000_000  # 2026-05-28 20:26 UTC


class World:
    def __init__(self, ledger: Ledger, alliance: Any, clock: FakeClock, url: str) -> None:
        self.ledger, self.alliance, self.clock, self.url = ledger, alliance, clock, url
        self.runner = customers.customers_runner(ledger.store)
        self.live_digest = ""
        self.first_day = act.day_number("2026-05-28")

    def call(self, who: str, command: Any) -> Any:
        return self.ledger.call(who, command, request_id=rid("cv"), timeout_s=60)

    @property
    def today(self) -> int:
        return self.clock.now_us // 86_400_000_000


def _ok(reply: Any) -> bool:
    return isinstance(reply, Outcome) and reply.result in (1, 2)


def _traffic(w: World, seed: int) -> None:
    a, rng = w.alliance, random.Random(seed)
    cards: list[tuple[str, float]] = []  # (number, chance of shopping on a day)
    for index in range(30):
        manager, store = (a.p1_manager, "S1") if index % 3 else (a.p2_manager, "A1")
        ref = "" if index % 7 == 0 else f"cust-{index // 2 if index < 10 else index}"
        reply = w.call(manager, cc.IssueCard("", "STANDARD", USD, ref, store))
        assert _ok(reply), reply
        number = reply.card_number
        assert _ok(w.call(manager, cc.ActivateCard(number, "")))
        assert _ok(w.call(a.admin, cc.LoadValue(number, 10_000_000, USD, "psp")))
        cards.append((number, rng.choice((0.02, 0.08, 0.15, 0.3))))
    terminals = (a.t1, a.t2, a.t3, a.t_air)
    purchases: list[tuple[str, str, int]] = []
    for day in range(DAYS):
        for i, (number, chance) in enumerate(cards):
            if day > 100 and i % 5 == 0:
                continue  # these customers stop coming
            if rng.random() >= chance:
                continue
            terminal = rng.choice(terminals[:3] if i % 4 else terminals)
            lines = tuple(Line(f"sku-{k}", "general", rng.randint(1, 3),
                               rng.randint(1, 90) * 100, rng.randint(0, 40) * 10)
                          for k in range(rng.randint(1, 3)))
            reply = w.call(terminal, Purchase(number, USD, lines, 0, True, 0, "", "r",
                                              stored_value_pays_rest=True))
            assert _ok(reply), reply
            purchases.append((terminal, reply.purchase.purchase_id, len(lines)))
        if purchases and rng.random() < 0.3:
            terminal, purchase_id, count = rng.choice(purchases[-40:])
            w.call(terminal, Return(purchase_id, (ReturnLine(rng.randrange(count), 1),), "r"))
        if day == 60:
            number, chance = cards[3]
            reply = w.call(a.admin, cc.ReplaceCard(number, "", "lost"))
            assert _ok(reply), reply
            cards[3] = (reply.card_number, chance)
        if day % 20 == 0:  # the live model follows in batches of whatever the days brought
            w.runner.catch_up()
        w.clock.advance(rng.randint(20, 28) * 3600)
    w.runner.catch_up()
    w.live_digest = customers.digest(w.runner)


@pytest.fixture(scope="module", params=["sqlite", "postgres", "split"])
def world(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[World]:
    def build(url: str) -> Iterator[World]:
        store = open_store(url)
        store.create_schema()
        clock = FakeClock()
        clock.now_us = START_US
        with started_ledger(store, clock_us=clock) as ledger:
            alliance = build_alliance(ledger, ledger.admin_token)  # type: ignore[attr-defined]
            w = World(ledger, alliance, clock, url)
            _traffic(w, seed=10)
            yield w
        store.close()

    if request.param == "sqlite":
        yield from build(f"sqlite:///{tmp_path_factory.mktemp('customers')}/ledger.db")
    elif request.param == "split":  # the log split by card partition, half in a second database
        with fresh_postgres("customers") as url, fresh_postgres("customers2") as other:
            yield from build(split_postgres(url, other))
    else:
        with fresh_postgres("customers") as url:
            yield from build(url)


# ------------------------------------------------------------------------------ the oracle


def oracle_rows(w: World) -> list[act.Activity]:
    """The activity recomputed from the log another way: a card's customer from the chain of
    numbers its replacement carried (the first card's reference), a return's lines from the
    purchase record the card's own event history holds, local times with zoneinfo."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    zones: dict[str, str] = {}
    refs: dict[str, str] = {}  # card number -> its own customer_ref
    customer: dict[uuid.UUID, str] = {}
    bought: dict[str, ev.PurchaseMade] = {}
    sums: dict[tuple[str, str, int, int], list[Any]] = {}

    def add(key: tuple[str, str, int, int], partner: str, visits: int, spend: int,
            margin: int) -> None:
        row = sums.setdefault(key, [partner, 0, 0, 0])
        row[1] += visits
        row[2] += spend
        row[3] += margin

    for row in rows_by_time(w.ledger.store):  # a split log: merged by time
        event = decode_event(row.state)
        if row.originator_id == REGISTRY_ID:
            if isinstance(event, StoreRegistered):
                zones[event.store_id] = event.timezone
            continue
        match event:
            case ev.CardIssued():
                refs[event.card_number] = event.customer_ref
                customer[row.originator_id] = event.customer_ref or \
                    f"card:{event.card_number}"
            case ev.CardIssuedAsReplacement():
                chain = event.carried.previous_numbers if event.carried else ()
                first = chain[0] if chain else event.replaces
                customer[row.originator_id] = refs[first] or f"card:{first}"
            case ev.PurchaseMade():
                bought[event.purchase_id] = event
                paid = (event.sv_charged_minor + event.points_redeemed_value_minor
                        + event.other_tender_minor)
                hour = event.minute_of_day // 60
                add((customer[row.originator_id], event.meta.store_id,
                     act.day_number(event.local_date), hour), event.acquirer_partner_id,
                    1, paid, sum(x.quantity * x.margin_minor for x in event.lines))
            case ev.PurchaseReturned():
                made = bought[event.purchase_id]
                paid = (made.sv_charged_minor + made.points_redeemed_value_minor
                        + made.other_tender_minor)
                gross = sum(x.amount_minor for x in made.lines)
                value = sum(q * made.lines[i].unit_price_minor for i, q in event.lines)
                local = dt.datetime.fromtimestamp(
                    event.meta.recorded_at_us / 1e6, ZoneInfo(zones[made.meta.store_id]))
                add((customer[row.originator_id], made.meta.store_id,
                     (local.date() - dt.date(1970, 1, 1)).days, local.hour),
                    made.acquirer_partner_id, 0, -(paid * value // gross),
                    -sum(q * made.lines[i].margin_minor for i, q in event.lines))
    return sorted(act.Activity(c, s, p, d, h, v, sp, m)
                  for (c, s, d, h), (p, v, sp, m) in sums.items())


ZONES = {c.store_id: c.timezone for c in SETUP if isinstance(c, rc.RegisterStore)}


def _utc_hour(r: act.Activity) -> int:
    import datetime as dt
    from zoneinfo import ZoneInfo

    local = dt.datetime.combine(dt.date.fromisoformat(act.day_name(r.day)), dt.time(r.hour),
                                ZoneInfo(ZONES[r.store_id]))
    return int(local.timestamp()) // 3_600


def model_rows(w: World) -> list[act.Activity]:
    return sorted(customers.activity(w.runner, 10**6))


# ------------------------------------------------------------------------------ tests


def test_the_traffic_has_what_the_views_need(world: World) -> None:
    rows = model_rows(world)
    assert {r.partner_id for r in rows} == {"P1", "P2"}
    assert any(r.visits == 0 and r.spend_minor < 0 for r in rows)  # returns
    assert any(r.customer.startswith("card:") for r in rows)  # cards without a reference
    per_customer_stores = defaultdict(set)
    for r in rows:
        per_customer_stores[r.customer].add(r.partner_id)
    assert any(len(p) > 1 for p in per_customer_stores.values())


def test_the_rows_equal_an_independent_recomputation_from_the_log(world: World) -> None:
    assert model_rows(world) == oracle_rows(world)


def test_a_replacement_chain_and_a_shared_reference_are_one_customer(world: World) -> None:
    with world.ledger.store.session(commit=False) as session:
        owners = {bytes(s): c for s, c in session.query(
            "SELECT stream_id, customer FROM proj_cust_cards")}
    replacements = []
    for row in all_rows(world.ledger.store):
        event = decode_event(row.state)
        if isinstance(event, ev.CardIssuedAsReplacement):
            replacements.append((row.originator_id.bytes, event.replaces))
    assert len(replacements) == 1
    new, old = replacements[0]
    assert owners[new] == owners[card_stream_id(old).bytes] == "cust-1"
    # cards 2 and 3 were issued under one reference, and card 3 was replaced
    assert sum(1 for c in owners.values() if c == "cust-1") == 3
    assert sum(1 for c in owners.values() if c.startswith("card:")) == 5  # 0, 7, 14, 21, 28


AS_OF_OFFSETS = (40, 95, 120, 149)


@pytest.mark.parametrize("scope", [("", ""), ("P1", ""), ("P2", ""), ("P1", "S2")])
def test_every_view_equals_the_view_of_the_recomputed_rows(world: World,
                                                           scope: tuple[str, str]) -> None:
    partner, store_id = scope
    expected_rows = [r for r in oracle_rows(world)
                     if (not partner or r.partner_id == partner)
                     and (not store_id or r.store_id == store_id)]
    for offset in AS_OF_OFFSETS:
        as_of = world.first_day + offset
        for months in (1, 3, 12):
            rows = [r for r in expected_rows if r.day <= as_of]
            got = {name: customers.view(world.runner, name, as_of, months, partner, store_id,
                                        current=False) for name in customers.VIEWS}
            assert got["pyramid"] == views.pyramid(rows, as_of, months)
            assert got["matrix"] == views.matrix(rows, as_of, months)
            assert got["rfm"] == views.rfm(rows, as_of, months)
            assert got["churn"] == views.churn(rows, as_of, months)
            assert got["visits"] == views.visit_times(rows, as_of, months)
            period = act.period_ending(as_of, months)
            elsewhere: set[str] = set()
            if partner:
                mine = {r.customer for r in rows if period.first <= r.day}
                elsewhere = {r.customer for r in oracle_rows(world)
                             if r.partner_id != partner and r.customer in mine
                             and period.first <= r.day <= as_of}
            assert got["affinity"] == views.affinity(
                rows, as_of, months, elsewhere, flows=not partner and not store_id,
                when=_utc_hour)


def test_the_views_show_what_the_traffic_did(world: World) -> None:
    as_of = world.first_day + 149
    pyramid = customers.view(world.runner, "pyramid", as_of, current=False)
    assert sum(lv.customers for lv in pyramid.levels) == pyramid.customers > 20
    assert sum(lv.spend_minor for lv in pyramid.levels) == pyramid.spend_minor
    churn = customers.view(world.runner, "churn", as_of, current=False)
    # the customers who stopped after day 100 are at risk or lapsed by day 149
    assert {s.status: s.customers for s in churn.statuses}["LAPSED"] + \
        {s.status: s.customers for s in churn.statuses}["AT_RISK"] > 0
    affinity = customers.view(world.runner, "affinity", as_of, current=False)
    assert affinity.multi_partner_customers > 0 and affinity.flows
    partner = customers.view(world.runner, "affinity", as_of, 12, "P2", current=False)
    assert {p.partner_id for p in partner.places} == {"P2"} and not partner.flows
    assert 0 < partner.elsewhere_customers <= partner.customers


def test_a_rebuild_and_two_runners_give_the_live_digest(world: World) -> None:
    assert customers.digest(world.runner) == world.live_digest
    other = open_store(world.url)
    try:
        rebuilt = ProjectionRunner(other, customers.CustomersModel(), batch_rows=97)
        seen: list[tuple[int, int]] = []
        rebuilt.rebuild(progress=lambda done, total: seen.append((done, total)))
        assert customers.digest(rebuilt) == world.live_digest
        assert seen and seen[-1][0] == seen[-1][1] > 0
        first = ProjectionRunner(world.ledger.store, customers.CustomersModel(),
                                 batch_rows=50)
        second = ProjectionRunner(other, customers.CustomersModel(), batch_rows=33)
        first.rebuild()
        with world.ledger.store.session(commit=True) as session:
            session.execute("UPDATE projection_positions SET position = 0 WHERE name = ?",
                            (customers.NAME,))
            customers.CustomersModel().drop(session)
            customers.CustomersModel().create(session)
        first._positions.clear()
        second._positions.clear()
        for lane in world.ledger.store.lanes():  # the registry's lane first (a split log)
            while first.step(lane=lane) + second.step(lane=lane):
                pass
        assert first.batches_applied and second.batches_applied
        assert customers.digest(first) == world.live_digest
    finally:
        other.close()


def test_the_report_and_rebuild_commands(world: World) -> None:
    from tests.support.processes import run

    as_of = act.day_name(world.first_day + 149)
    done = run("report", "pyramid", "--as-of", as_of, "--format", "json", "--database",
               world.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == msgspec.to_builtins(
        customers.view(world.runner, "pyramid", act.parse_day(as_of, "x")))
    done = run("report", "rfm", "--as-of", as_of, "--partner", "P1", "--format", "csv",
               "--database", world.url)
    assert done.returncode == 0, done.stderr
    segments = list(csv.DictReader(io.StringIO(done.stdout.split("\n\n")[0])))
    expected = customers.view(world.runner, "rfm", act.parse_day(as_of, "x"), 12, "P1")
    assert [(r["segment"], int(r["customers"])) for r in segments] == [
        (s.segment, s.customers) for s in expected.segments]
    for view in customers.VIEWS:
        done = run("report", view, "--as-of", as_of, "--store", "S1", "--database",
                   world.url)
        assert done.returncode == 0 and "[store S1]" in done.stdout, (view, done.stderr)
    for args, field in ((("pyramid", "--as-of", "2026-02-30"), "--as-of"),
                        (("matrix", "--partner", "P9"), "--partner"),
                        (("visits", "--store", "S9"), "--store"),
                        (("churn", "--partner", "P2", "--store", "S1"), "--store"),
                        (("rfm", "--months", "0"), "--months"),
                        (("affinity", "--top", "0"), "--top")):
        done = run("report", *args, "--database", world.url)
        assert done.returncode == 2 and f"{field}:" in done.stderr, (args, done.stderr)
    done = run("project", "--rebuild", "customers", "--database", world.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"digest {world.live_digest}")
    assert "rebuild customers: log" in done.stderr and "100%" in done.stderr


def test_card_stream_ids_name_every_card(world: World) -> None:
    """The model's cards are the log's cards, each once."""
    with world.ledger.store.session(commit=False) as session:
        owners = {bytes(s) for s, _ in session.query(
            "SELECT stream_id, customer FROM proj_cust_cards")}
    issued = set()
    for row in all_rows(world.ledger.store):
        if row.originator_id != REGISTRY_ID and type(decode_event(row.state)) in (
                ev.CardIssued, ev.CardIssuedAsReplacement):
            issued.add(row.originator_id.bytes)
    assert owners == issued


def test_the_projector_process_follows_the_customers_model(world: World) -> None:
    """`loyalty-ledger project` (what `serve` starts) keeps the customers model beside the
    others: from zero, it reaches the log's end and gives the live digest."""
    import signal
    import subprocess

    from tests.support.alliance import wait_until
    from tests.support.processes import ROOT, cli, env

    with world.ledger.store.session(commit=True) as session:
        session.execute("UPDATE projection_positions SET position = 0 WHERE name = ?",
                        (customers.NAME,))
        customers.CustomersModel().drop(session)
        customers.CustomersModel().create(session)
    end = world.ledger.store.max_notification_id()  # a split log: the sum of the lanes' heads
    runner = customers.customers_runner(world.ledger.store)
    lanes = world.ledger.store.lanes()
    assert runner._read_position() == 0
    proc = subprocess.Popen(cli("project", "--database", world.url, "--poll-s", "0.05"),
                            cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: sum(runner._read_position(lane) for lane in lanes) >= end,
                   timeout_s=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=30)
    assert proc.returncode == 0, errors
    assert customers.digest(runner) == world.live_digest
