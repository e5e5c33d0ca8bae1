"""SettlementService over gRPC: closing a period (idempotent on request_id, ADMIN or the
alliance's FINANCE only, a bad note refused with nothing written) and reading its statements
within each caller's scope."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from domain.common import Principal, Role
from domain.registry import commands as rc
from grpc_api.generated import pos_pb2 as pb
from tests.support.alliance import Alliance, ok
from tests.support.rpc import R, Server, authorize, call, db_state, issue, rid, status_of

pytestmark = pytest.mark.backends("sqlite")


def _capture(server: Server, token: str, number: str, amount: int) -> None:
    hold = authorize(server, token, number, amount)
    assert hold.result == R.APPROVED, hold
    reply = call(server.pos.Capture, pb.CaptureRequest(
        request_id=rid("cap"), authorization_id=hold.authorization_id), token)
    assert reply.result == R.APPROVED, reply


def _close(server: Server, token: str, request_id: str = "", note: str = "") -> Any:
    return call(server.settlement.CloseSettlementPeriod, pb.CloseSettlementPeriodRequest(
        request_id=request_id or rid("close"), note=note), token)


def _finance_of(server: Server, alliance: Alliance, partner: str) -> str:
    reply = ok(server.ledger.call(alliance.admin, rc.CreateCredential(
        Principal(Role.FINANCE, partner), f"finance {partner}"),
        request_id=rid("settle-finance-cred")))
    assert server.ledger.authenticate(reply.token) is not None, reply
    return reply.token


def test_a_period_closed_and_read_over_grpc(server: Server, alliance: Alliance) -> None:
    retail = issue(server, alliance, 71_001, load=5_000)
    airline = issue(server, alliance, 71_002, by="p2_manager", store="A1", load=5_000)
    _capture(server, alliance.tokens["t_air"], retail, 700)
    _capture(server, alliance.tokens["t1"], airline, 200)
    finance = alliance.tokens["finance"]
    closed = _close(server, finance, "close-nov", "November")
    assert (closed.result, closed.period_id, closed.replayed) == (R.APPROVED, 1, False)
    again = _close(server, finance, "close-nov", "November")
    assert (again.period_id, again.replayed) == (1, True)  # a retry closes nothing more
    _capture(server, alliance.tokens["t_air"], retail, 5)  # period 2

    reply = call(server.settlement.GetSettlementStatement,
                 pb.GetSettlementStatementRequest(), finance)
    assert (reply.period_id, reply.closed) == (1, True)
    nets = {s.entity_id: s.multilateral_net_minor for s in reply.statements}
    assert nets == {"P1": -500, "P2": 500}
    p1 = next(s for s in reply.statements if s.entity_id == "P1")
    assert [(line.counterparty_id, line.category, line.receivable_minor, line.payable_minor)
            for line in p1.lines] == [("P2", "SV_SPENT_ACROSS", 200, 700)]
    assert [(i.payer_id, i.payee_id, i.instrument, i.amount_minor)
            for i in reply.instructions] == [("P1", "P2", "CASH", 500)]
    # the auditor reads the same bytes; the open period so far
    audited = call(server.settlement.GetSettlementStatement,
                   pb.GetSettlementStatementRequest(period_id=1), alliance.tokens["auditor"])
    assert audited.digest == reply.digest
    open_period = call(server.settlement.GetSettlementStatement,
                       pb.GetSettlementStatementRequest(period_id=2), finance)
    assert not open_period.closed and {s.entity_id: s.multilateral_net_minor
                                       for s in open_period.statements} == {"P1": -5, "P2": 5}

    # a partner's FINANCE credential and manager see their own partner's figures only
    p2_finance = _finance_of(server, alliance, "P2")
    own = call(server.settlement.GetSettlementStatement,
               pb.GetSettlementStatementRequest(period_id=1), p2_finance)
    assert [s.entity_id for s in own.statements] == ["P2"]
    assert [(i.payer_id, i.payee_id) for i in own.instructions] == [("P1", "P2")]
    for token, entity in ((p2_finance, "P1"), (alliance.tokens["p1_manager"], "P2"),
                          (alliance.tokens["t1"], "")):
        denied = status_of(server.settlement.GetSettlementStatement,
                           pb.GetSettlementStatementRequest(period_id=1, entity_id=entity),
                           token)
        assert denied is not None and denied.code == grpc.StatusCode.PERMISSION_DENIED
    # a partner's FINANCE may not close the alliance's period
    refused = status_of(server.settlement.CloseSettlementPeriod,
                        pb.CloseSettlementPeriodRequest(request_id=rid("c")), p2_finance)
    assert refused is not None and refused.code == grpc.StatusCode.PERMISSION_DENIED


BAD = [
    ("CloseSettlementPeriod", pb.CloseSettlementPeriodRequest(request_id="r", note="x" * 300),
     "note"),
    ("CloseSettlementPeriod", pb.CloseSettlementPeriodRequest(request_id="", note="n"),
     "request_id"),
    ("CloseSettlementPeriod", pb.CloseSettlementPeriodRequest(request_id="r", note="a\x01b"),
     "note"),
    ("GetSettlementStatement", pb.GetSettlementStatementRequest(period_id=-1), "period_id"),
    ("GetSettlementStatement", pb.GetSettlementStatementRequest(period_id=9), "period_id"),
    ("GetSettlementStatement", pb.GetSettlementStatementRequest(entity_id="no such!"),
     "entity_id"),
]


@pytest.mark.parametrize(("rpc", "request_message", "field"), BAD)
def test_bad_input_names_the_field_and_writes_nothing(server: Server, alliance: Alliance,
                                                      rpc: str, request_message: object,
                                                      field: str) -> None:
    before = db_state(server.ledger)
    status = status_of(getattr(server.settlement, rpc), request_message,
                       alliance.tokens["finance"])
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT, status
    assert field in status.details
    assert db_state(server.ledger) == before
