"""FinanceService over gRPC: liability, roll-forward and breakage as the read model computes
them, within each caller's scope (ADMIN, AUDITOR and the alliance's FINANCE see all; a
partner's FINANCE its own entity; everyone else PERMISSION_DENIED), and every bad input
INVALID_ARGUMENT naming its field with nothing written. One server for the module, on SQLite
and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from domain.common import Principal, Role
from domain.liability import days
from domain.points.program import DefineProgram
from domain.points.purse import ExpiryKind
from domain.registry import commands as rc
from grpc_api.generated import finance_pb2 as fpb
from grpc_api.generated import finance_pb2_grpc as fpb_grpc
from grpc_api.generated import pos_pb2 as pb
from ledger.store import open_store
from projections import finance
from tests.support.alliance import Alliance, FakeClock, build_alliance, ok, started_ledger
from tests.support.databases import fresh_postgres
from tests.support.rpc import R, Server, authorize, call, db_state, issue, rid, serve, status_of


class World:
    def __init__(self, server: Server, alliance: Alliance, clock: FakeClock) -> None:
        self.server, self.alliance, self.clock = server, alliance, clock
        self.finance = fpb_grpc.FinanceServiceStub(server.channel)
        self.tokens: dict[str, str] = dict(alliance.tokens)
        self.today = days.day_of(clock.now_us)


def _credential(server: Server, alliance: Alliance, principal: Principal) -> str:
    reply = ok(server.ledger.call(alliance.admin, rc.CreateCredential(principal, "fin"),
                                  request_id=rid("fin-cred")))
    return reply.token


def _traffic(w: World) -> None:
    a, s = w.alliance, w.server
    assert ok(s.ledger.call(a.p1_manager, DefineProgram("P1", "USD", 1_000_000,
                                                        ExpiryKind.NEVER, 0, "UTC", 0),
                            request_id=rid("prog"))).result == 1
    retail = issue(s, a, 91_001, load=10_000)
    airline = issue(s, a, 91_002, by="p2_manager", store="A1", load=7_000)
    for token, number, amount in ((a.tokens["t_air"], retail, 700), (a.tokens["t1"], airline,
                                                                       200)):
        hold = authorize(s, token, number, amount)
        assert hold.result == R.APPROVED, hold
        captured = call(s.pos.Capture, pb.CaptureRequest(
            request_id=rid("cap"), authorization_id=hold.authorization_id), token)
        assert captured.result == R.APPROVED
    authorize(s, a.tokens["t1"], retail, 1_000)  # held at the end
    w.clock.advance(86_400)
    w.today = days.day_of(w.clock.now_us)


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
        yield from build(f"sqlite:///{tmp_path_factory.mktemp('fin-e2e')}/ledger.db")
    else:
        with fresh_postgres("fin_e2e") as url:
            yield from build(url)


def _liability(w: World, token: str, **fields: Any) -> Any:
    return call(w.finance.GetLiability, fpb.GetLiabilityRequest(**fields), token)


def test_the_service_is_registered_for_reflection(world: World) -> None:
    assert fpb.DESCRIPTOR.services_by_name["FinanceService"].full_name == (
        "loyalty.v1.FinanceService")


def test_the_alliance_reads_every_entitys_liability(world: World) -> None:
    for who in ("finance", "auditor"):
        reply = _liability(world, world.tokens[who])
        assert reply.as_of == world.today
        assert {(s.issuer_id, s.available_minor, s.held_minor, s.outstanding_minor)
                for s in reply.stored_value} == {("P1", 8_300, 1_000, 9_300),
                                                 ("P2", 6_800, 0, 6_800)}
    admin = _liability(world, world.alliance.admin_token, as_of=world.today)
    expected = finance.liability(finance.finance_runner(world.server.ledger.store),
                                 world.today)
    assert [(s.issuer_id, s.outstanding_minor) for s in admin.stored_value] == [
        (s.issuer_id, s.outstanding_minor) for s in expected.stored_value]
    before = _liability(world, world.tokens["finance"],
                        as_of=days.previous(days.previous(world.today)))
    assert list(before.stored_value) == []  # nothing was recorded two days ago
    # computed from the whole log as it was at the call
    assert admin.log_position == world.server.ledger.store.max_notification_id()


def test_a_partners_finance_reads_its_own_entity_only(world: World) -> None:
    token = world.tokens["p1_finance"]
    reply = _liability(world, token)
    assert [s.issuer_id for s in reply.stored_value] == ["P1"]
    assert [s.issuer_id for s in _liability(world, token, entity_id="P1").stored_value] == [
        "P1"]
    denied = status_of(world.finance.GetLiability, fpb.GetLiabilityRequest(entity_id="P2"),
                       token)
    assert denied is not None and denied.code == grpc.StatusCode.PERMISSION_DENIED
    for who in ("p1_manager", "t1", "s1_manager", "gw1"):
        for method, request in ((world.finance.GetLiability, fpb.GetLiabilityRequest()),
                                (world.finance.GetRollForward,
                                 fpb.GetRollForwardRequest(**{"from": world.today})),
                                (world.finance.GetBreakage,
                                 fpb.GetBreakageRequest(**{"from": world.today}))):
            refused = status_of(method, request, world.tokens[who])
            assert refused is not None and refused.code == (
                grpc.StatusCode.PERMISSION_DENIED), (who, refused)
    nobody = status_of(world.finance.GetLiability, fpb.GetLiabilityRequest(), None)
    assert nobody is not None and nobody.code == grpc.StatusCode.UNAUTHENTICATED


def test_the_roll_forward_and_breakage_over_grpc(world: World) -> None:
    reply = call(world.finance.GetRollForward, fpb.GetRollForwardRequest(
        **{"from": days.previous(world.today)}, to=world.today), world.tokens["finance"])
    rows = {r.entity_id: r for r in reply.rows if r.kind == "STORED_VALUE"}
    p1 = rows["P1"]
    lines = {line.line: line.amount for line in p1.lines}
    assert (p1.opening, lines["loaded"], lines["spent"], p1.closing) == (0, 10_000, 700,
                                                                        9_300)
    breakage = call(world.finance.GetBreakage, fpb.GetBreakageRequest(
        **{"from": days.previous(world.today)}), world.tokens["auditor"])
    assert list(breakage.rows) == [] and breakage.to == world.today


@pytest.mark.parametrize(("method", "fields", "field"), [
    ("GetLiability", {"as_of": "2026-02-30"}, "as_of"),
    ("GetLiability", {"as_of": "12/03/2026"}, "as_of"),
    ("GetLiability", {"entity_id": "P9"}, "entity_id"),
    ("GetLiability", {"entity_id": "bad id!"}, "entity_id"),
    ("GetRollForward", {}, "from"),
    ("GetRollForward", {"from": "2026-12-03", "to": "2026-12-01"}, "to"),
    ("GetRollForward", {"from": "2026-12-01", "to": "tomorrow"}, "to"),
    ("GetRollForward", {"from": "2026-12-01", "entity_id": "P9"}, "entity_id"),
    ("GetBreakage", {"from": "1969-12-31"}, "from"),
    ("GetBreakage", {"from": "2026-12-01", "to": "2026-13-01"}, "to"),
])
def test_bad_input_names_its_field_and_writes_nothing(world: World, method: str,
                                                      fields: dict[str, str],
                                                      field: str) -> None:
    ledger = world.server.ledger
    before = db_state(ledger)
    request = {"GetLiability": fpb.GetLiabilityRequest, "GetRollForward":
               fpb.GetRollForwardRequest, "GetBreakage": fpb.GetBreakageRequest}[method]
    for who in ("finance", "p1_finance"):
        refused = status_of(getattr(world.finance, method), request(**fields),
                            world.tokens[who])
        assert refused is not None and refused.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.details.startswith(f"{field}:"), refused
    assert db_state(ledger) == before
