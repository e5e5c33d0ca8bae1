"""InsightsService over gRPC: the six customer views as the read model computes them, within
each caller's scope (ADMIN and AUDITOR the alliance, or any partner or store; a partner's
PARTNER_MANAGER or FINANCE its own stores' customers only; everyone else PERMISSION_DENIED),
and every bad input INVALID_ARGUMENT naming its field with nothing written. One server for the
module, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from domain.cards import commands as cc
from domain.common import Principal, Role
from domain.customers import activity as act
from domain.purchases.commands import Purchase
from domain.registry import commands as rc
from domain.rules.model import Line
from grpc_api.generated import insights_pb2 as ipb
from grpc_api.generated import insights_pb2_grpc as ipb_grpc
from grpc_api.server import SERVICE_NAMES
from ledger.store import open_store
from projections import customers
from tests.support.alliance import Alliance, FakeClock, build_alliance, ok, started_ledger
from tests.support.databases import fresh_postgres
from tests.support.rpc import Server, call, db_state, rid, serve, status_of

RPCS = ("GetPyramid", "GetValueMatrix", "GetRfm", "GetChurn", "GetVisitTimes", "GetAffinity")
VIEW = dict(zip(RPCS, customers.VIEWS, strict=True))


class World:
    def __init__(self, server: Server, alliance: Alliance, clock: FakeClock) -> None:
        self.server, self.alliance, self.clock = server, alliance, clock
        self.insights = ipb_grpc.InsightsServiceStub(server.channel)
        self.tokens: dict[str, str] = dict(alliance.tokens)
        self.tokens["admin"] = alliance.admin_token
        self.runner = customers.customers_runner(server.ledger.store)


def _credential(server: Server, alliance: Alliance, principal: Principal) -> str:
    reply = ok(server.ledger.call(alliance.admin, rc.CreateCredential(principal, "ins"),
                                  request_id=rid("ins-cred")))
    return reply.token


def _traffic(w: World) -> None:
    a, ledger = w.alliance, w.server.ledger

    def card(manager: str, store: str, ref: str) -> str:
        number = ok(ledger.call(manager, cc.IssueCard("", "STANDARD", "USD", ref, store),
                                request_id=rid("iss"))).card_number
        ok(ledger.call(manager, cc.ActivateCard(number, ""), request_id=rid("act")))
        ok(ledger.call(a.admin, cc.LoadValue(number, 100_000, "USD", "psp"),
                       request_id=rid("load")))
        return number

    cards = {"cust-a": card(a.p1_manager, "S1", "cust-a"),
             "cust-b": card(a.p2_manager, "A1", "cust-b"),
             "cust-c": card(a.p1_manager, "S1", "cust-c")}
    for terminal, customer, price, margin in ((a.t1, "cust-a", 1_000, 100),
                                              (a.t_air, "cust-a", 500, 50),
                                              (a.t_air, "cust-b", 3_000, 900),
                                              (a.t3, "cust-c", 200, 20)):
        reply = ledger.call(terminal, Purchase(cards[customer], "USD", (
            Line("sku", "general", 1, price, margin),), 0, False, 0, "", "r",
            stored_value_pays_rest=True), request_id=rid("buy"))
        assert ok(reply).result == 1, reply
        w.clock.advance(3_600)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[World]:
    def build(url: str) -> Iterator[World]:
        store = open_store(url)
        store.create_schema()
        clock = FakeClock()
        with started_ledger(store, clock_us=clock) as ledger:
            alliance = build_alliance(ledger, ledger.admin_token)  # type: ignore[attr-defined]
            with serve(ledger) as server:
                w = World(server, alliance, clock)
                w.tokens["p1_finance"] = _credential(server, alliance,
                                                     Principal(Role.FINANCE, "P1"))
                _traffic(w)
                yield w
        store.close()

    if request.param == "sqlite":
        yield from build(f"sqlite:///{tmp_path_factory.mktemp('ins-e2e')}/ledger.db")
    else:
        with fresh_postgres("ins_e2e") as url:
            yield from build(url)


def _ask(w: World, method: str, who: str, **fields: Any) -> Any:
    return call(getattr(w.insights, method), ipb.InsightsRequest(**fields), w.tokens[who])


def test_the_service_is_registered_for_reflection(world: World) -> None:
    assert "loyalty.v1.InsightsService" in SERVICE_NAMES


def test_the_alliance_sees_every_customer(world: World) -> None:
    for who in ("admin", "auditor"):
        pyramid = _ask(world, "GetPyramid", who)
        assert (pyramid.customers, pyramid.spend_minor) == (3, 4_700)
        assert [(lv.level, lv.customers, lv.spend_minor) for lv in pyramid.levels] == [
            ("A", 1, 3_000), ("B", 0, 0), ("C", 0, 0), ("D", 2, 1_700)]
        assert pyramid.scope.partner_id == "" and pyramid.scope.log_position > 0
    affinity = _ask(world, "GetAffinity", "admin")
    assert (affinity.multi_partner_customers, affinity.multi_partner_spend_minor) == (1, 1_500)
    assert [(f.from_partner, f.to_partner, f.customers, f.spend_minor)
            for f in affinity.flows] == [("P1", "P2", 1, 500)]
    matrix = _ask(world, "GetValueMatrix", "admin", sales_split_minor=1_000)
    assert matrix.sales_split_minor == 1_000
    assert {q.quadrant: q.customers for q in matrix.quadrants}["high_sales_high_margin"] == 1
    rfm = _ask(world, "GetRfm", "auditor", limit=2)
    assert rfm.customers_total == 3 and len(rfm.customers) == 2
    visits = _ask(world, "GetVisitTimes", "admin")
    assert visits.visits == 4 and visits.spend_minor == 4_700
    # an admin may look at one partner or one store
    store = _ask(world, "GetPyramid", "admin", store_id="S2")
    assert (store.customers, store.spend_minor, store.scope.partner_id) == (1, 200, "P1")


@pytest.mark.parametrize("rpc", RPCS)
def test_each_reply_is_the_read_models_view(world: World, rpc: str) -> None:
    reply = _ask(world, rpc, "p1_manager")
    as_of = act.parse_day(reply.scope.as_of, "as_of")
    found = customers.view(world.runner, VIEW[rpc], as_of, 12, "P1")
    if rpc == "GetPyramid":
        assert [lv.spend_minor for lv in reply.levels] == [lv.spend_minor
                                                           for lv in found.levels]
    elif rpc == "GetValueMatrix":
        assert [(q.quadrant, q.customers, q.margin_minor) for q in reply.quadrants] == [
            (q.quadrant, q.customers, q.margin_minor) for q in found.quadrants]
    elif rpc == "GetRfm":
        assert [(c.customer, c.score, c.segment) for c in reply.customers] == [
            (c.customer, c.score, c.segment) for c in found.customers]
    elif rpc == "GetChurn":
        assert [(s.status, s.customers) for s in reply.statuses] == [
            (s.status, s.customers) for s in found.statuses]
    elif rpc == "GetVisitTimes":
        assert [(c.weekday, c.hour, c.visits) for c in reply.cells] == [
            (c.weekday, c.hour, c.visits) for c in found.cells]
    else:
        assert [(p.id, p.spend_minor) for p in reply.places] == [
            (p.id, p.spend_minor) for p in found.places]


@pytest.mark.parametrize("who", ["p1_manager", "p1_finance"])
def test_a_partner_sees_its_own_stores_customers_only(world: World, who: str) -> None:
    pyramid = _ask(world, "GetPyramid", who)
    assert (pyramid.scope.partner_id, pyramid.customers, pyramid.spend_minor) == (
        "P1", 2, 1_200)
    rfm = _ask(world, "GetRfm", who)
    assert sorted(c.customer for c in rfm.customers) == ["cust-a", "cust-c"]
    affinity = _ask(world, "GetAffinity", who)
    assert {p.partner_id for p in affinity.places} == {"P1"}
    assert affinity.elsewhere_customers == 1 and not affinity.flows
    assert [c.customer for c in affinity.customers_top] == ["cust-a", "cust-c"]
    assert [(s.id, s.share_bps) for s in affinity.customers_top[0].partner_shares] == [
        ("P1", 10_000)]  # what cust-a spent at P2 is not P1's to see
    assert _ask(world, "GetPyramid", who, store_id="S1").customers == 1
    for fields in ({"partner_id": "P2"}, {"store_id": "A1"}):
        for rpc in RPCS:
            refused = status_of(getattr(world.insights, rpc), ipb.InsightsRequest(**fields),
                                world.tokens[who])
            assert refused is not None and refused.code == (
                grpc.StatusCode.PERMISSION_DENIED), (rpc, fields, refused)


def test_everyone_else_is_denied(world: World) -> None:
    for who in ("finance", "s1_manager", "t1", "gw1"):
        for rpc in RPCS:
            refused = status_of(getattr(world.insights, rpc), ipb.InsightsRequest(),
                                world.tokens[who])
            assert refused is not None and refused.code == (
                grpc.StatusCode.PERMISSION_DENIED), (who, rpc, refused)
    nobody = status_of(world.insights.GetPyramid, ipb.InsightsRequest(), None)
    assert nobody is not None and nobody.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(("fields", "field"), [
    ({"as_of": "2026-02-30"}, "as_of"), ({"as_of": "12/03/2026"}, "as_of"),
    ({"as_of": "1969-12-31"}, "as_of"), ({"months": 121}, "months"),
    ({"months": -1}, "months"), ({"limit": -1}, "limit"), ({"limit": 10_001}, "limit"),
    ({"partner_id": "P9"}, "partner_id"), ({"partner_id": "bad id!"}, "partner_id"),
    ({"store_id": "S9"}, "store_id"), ({"store_id": "x" * 40}, "store_id"),
    ({"partner_id": "P1", "store_id": "A1"}, "store_id"),
])
def test_bad_input_names_its_field_and_writes_nothing(world: World, fields: dict[str, Any],
                                                      field: str) -> None:
    ledger = world.server.ledger
    before = db_state(ledger)
    for who in ("admin", "p1_manager"):
        for rpc in RPCS:
            refused = status_of(getattr(world.insights, rpc), ipb.InsightsRequest(**fields),
                                world.tokens[who])
            assert refused is not None and refused.code == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.details.startswith(f"{field}:"), refused
    assert db_state(ledger) == before
