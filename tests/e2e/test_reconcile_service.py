"""RecordSettlementPayment and ReconciliationService over real gRPC, and the `settlement pay`,
`reconcile` and `report statement` commands on the same database: a period closed, its
transfer paid and shown paid and outstanding, a journal with breaks matched inline and from a
file, a repeat, a break resolved, the runs read by the auditor, the ledger's totals exported;
every bad input INVALID_ARGUMENT naming the field with nothing written, every scope refused."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from domain.common import Principal, Role
from domain.registry import commands as rc
from entrypoints.cli import main
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import reconcile_pb2 as rpb
from grpc_api.generated import reconcile_pb2_grpc as rpb_grpc
from ledger import limits
from tests.support.alliance import Alliance, ok
from tests.support.rpc import R, Server, authorize, call, db_state, issue, rid, status_of

pytestmark = pytest.mark.backends("sqlite")


def _capture(server: Server, token: str, number: str, amount: int, request_id: str) -> None:
    hold = authorize(server, token, number, amount)
    reply = call(server.pos.Capture, pb.CaptureRequest(
        request_id=request_id, authorization_id=hold.authorization_id), token)
    assert reply.result == R.APPROVED, reply


def _finance_of(server: Server, alliance: Alliance, partner: str) -> str:
    reply = ok(server.ledger.call(alliance.admin, rc.CreateCredential(
        Principal(Role.FINANCE, partner), f"finance {partner}"), request_id=rid("fin")))
    return reply.token


def _row(store: str, reference: str, amount: int, kind: str = "CAPTURED",
         currency: str = "USD") -> rpb.JournalRow:
    return rpb.JournalRow(store_id=store, reference=reference, type=kind, amount_minor=amount,
                          currency=currency)


@pytest.fixture
def period(server: Server, alliance: Alliance) -> dict[str, Any]:
    """Period 1: a P1 card spends 7.00 at P2's lounge, a P2 card 2.00 (cap-2) and a P1 card
    3.00 (cap-1) at P1's store S1; closed by the alliance's FINANCE."""
    retail = issue(server, alliance, 81_001, by="p1_manager", store="S1", load=5_000)
    airline = issue(server, alliance, 81_002, by="p2_manager", store="A1", load=5_000)
    _capture(server, alliance.tokens["t_air"], retail, 700, "air-1")
    _capture(server, alliance.tokens["t1"], airline, 200, "cap-2")
    _capture(server, alliance.tokens["t1"], retail, 300, "cap-1")
    closed = call(server.settlement.CloseSettlementPeriod, pb.CloseSettlementPeriodRequest(
        request_id=rid("close"), note="Nov"), alliance.tokens["finance"])
    assert closed.period_id == 1
    return {"stub": rpb_grpc.ReconciliationServiceStub(server.channel),
            "p1_finance": _finance_of(server, alliance, "P1"),
            "p2_finance": _finance_of(server, alliance, "P2")}


def _pay(server: Server, token: str, amount: int, key: str = "", **fields: Any) -> Any:
    values = dict(request_id=key or rid("pay"), period_id=1, currency="USD",
                  payer_id="P1", payee_id="P2", amount_minor=amount, reference="bank-77")
    values.update(fields)
    return pb.RecordSettlementPaymentRequest(**values), token


@pytest.mark.backends("sqlite", "postgres")
def test_a_payment_over_grpc_and_the_statement_shows_it(server, alliance, period):
    request, token = _pay(server, alliance.tokens["finance"], 400, "pay-1")
    reply = call(server.settlement.RecordSettlementPayment, request, token)
    assert (reply.result, reply.paid_minor, reply.outstanding_minor, reply.replayed) == (
        R.APPROVED, 400, 100, False)
    assert call(server.settlement.RecordSettlementPayment, request, token).replayed
    statement = call(server.settlement.GetSettlementStatement,
                     pb.GetSettlementStatementRequest(period_id=1), period["p2_finance"])
    assert [(i.instruction_id, i.amount_minor, i.paid_minor, i.outstanding_minor,
             list(i.payment_references)) for i in statement.instructions] == [
        ("USD-001-CASH", 500, 400, 100, ["bank-77"])]

    before = db_state(server.ledger)
    for fields, field in (({"amount_minor": 101}, "amount_minor: overpays"),
                          ({"amount_minor": 0}, "amount_minor"),
                          ({"amount_minor": -5}, "amount_minor: must not be negative"),
                          ({"currency": "usd"}, "currency"),
                          ({"payee_id": "P1"}, "payee_id"),
                          ({"payer_id": "P2", "payee_id": "P1"}, "payee_id: no instruction"),
                          ({"period_id": 2}, "period_id"), ({"period_id": 0}, "period_id"),
                          ({"reference": ""}, "reference"), ({"request_id": ""}, "request_id")):
        request, token = _pay(server, alliance.tokens["finance"], 10, **fields)
        status = status_of(server.settlement.RecordSettlementPayment, request, token)
        assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert status.details.startswith(field), (fields, status)
    for token in (period["p1_finance"], alliance.tokens["auditor"], alliance.tokens["t1"]):
        request, _ = _pay(server, token, 10)
        status = status_of(server.settlement.RecordSettlementPayment, request, token)
        assert status is not None and status.code == grpc.StatusCode.PERMISSION_DENIED
    assert db_state(server.ledger) == before


@pytest.mark.backends("sqlite", "postgres")
def test_a_journal_reconciled_over_grpc(server, alliance, period):
    stub, p1_finance = period["stub"], period["p1_finance"]
    rows = [_row("S1", "cap-1", 300), _row("S1", "cap-2", 250), _row("S2", "ghost", 9),
            _row("S2", "ghost", 9)]
    request = rpb.ReconcileRequest(request_id="run-1", partner_id="P1", period_id=1, rows=rows)
    reply = call(stub.Reconcile, request, p1_finance)
    assert (reply.run_id, reply.repeat_of, reply.file_rows, reply.ledger_rows) == (
        "P1-1-1", "", 4, 2)
    assert (reply.counts.matched, reply.counts.amount_mismatch, reply.counts.missing_in_ledger,
            reply.counts.duplicate_in_file, reply.counts.missing_in_file,
            reply.counts.duplicate_in_ledger) == (1, 1, 1, 1, 0, 0)
    mismatch = next(b for b in reply.breaks if b.match_class == "AMOUNT_MISMATCH")
    assert (mismatch.file_row.amount_minor, mismatch.ledger_row.amount_minor) == (250, 200)
    assert call(stub.Reconcile, request, p1_finance).replayed  # a retry: recorded once
    again = call(stub.Reconcile, rpb.ReconcileRequest(
        request_id="run-2", partner_id="P1", period_id=1, rows=list(reversed(rows))),
        alliance.tokens["finance"])
    assert (again.run_id, again.repeat_of, again.file_digest) == (
        "P1-1-2", "P1-1-1", reply.file_digest)

    resolved = call(stub.ResolveBreak, rpb.ResolveBreakRequest(
        request_id="res-1", partner_id="P1", period_id=1, break_id=mismatch.break_id,
        reason="tip keyed into the amount"), p1_finance)
    assert resolved.result == R.APPROVED
    runs = call(stub.GetReconciliation, rpb.GetReconciliationRequest(
        partner_id="P1", period_id=1), alliance.tokens["auditor"])
    assert [r.run_id for r in runs.runs] == ["P1-1-1", "P1-1-2"]
    assert [(r.break_id, r.reason) for r in runs.resolutions] == [
        (mismatch.break_id, "tip keyed into the amount")]
    third = call(stub.Reconcile, rpb.ReconcileRequest(
        request_id="run-3", partner_id="P1", period_id=1, rows=rows), p1_finance)
    assert next(b for b in third.breaks if b.break_id == mismatch.break_id).resolved
    totals = call(stub.ExportLedgerTotals, rpb.ExportLedgerTotalsRequest(
        partner_id="P1", period_id=1), alliance.tokens["auditor"])
    assert [(t.store_id, t.type, t.count, t.amount_minor) for t in totals.totals] == [
        ("S1", "CAPTURED", 2, 500)]


def test_bad_reconciliation_input_names_the_field_and_writes_nothing(server, alliance, period):
    stub, finance = period["stub"], alliance.tokens["finance"]
    before = db_state(server.ledger)
    good = _row("S1", "cap-1", 300)
    too_many = [good] * (limits.RECONCILE_RPC_ROWS_MAX + 1)
    for fields, field in (
            ({"partner_id": "P9"}, "partner_id: unknown partner"),
            ({"partner_id": ""}, "partner_id"), ({"period_id": 0}, "period_id"),
            ({"period_id": 2}, "period_id: period 2 is not a closed period"),
            ({"rows": [good, _row("S1", "x", -1)]}, "rows[1].amount_minor: must not be"),
            ({"rows": [_row("A1", "x", 1)]}, "rows[0].store_id"),
            ({"rows": [_row("S1", "x", 1, "VOIDED")]}, "rows[0].type"),
            ({"rows": [_row("S1", "x y", 1)]}, "rows[0].reference"),
            ({"rows": [_row("S1", "x", 1, currency="ZZZ")]}, "rows[0].currency"),
            ({"rows": too_many}, "rows: at most"),
            ({"request_id": ""}, "request_id")):
        values: dict[str, Any] = dict(request_id=rid("run"), partner_id="P1", period_id=1,
                                      rows=[good])
        values.update(fields)
        status = status_of(stub.Reconcile, rpb.ReconcileRequest(**values), finance)
        assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert status.details.startswith(field), (fields, status.details)
    for request, field in (
            (rpb.ResolveBreakRequest(request_id=rid("r"), partner_id="P1", period_id=1,
                                     break_id="0" * 16, reason="x"), "period_id"),
            (rpb.ResolveBreakRequest(request_id=rid("r"), partner_id="P1", period_id=1,
                                     break_id="nope", reason="x"), "break_id"),
            (rpb.ResolveBreakRequest(request_id=rid("r"), partner_id="P1", period_id=1,
                                     break_id="0" * 16, reason=""), "reason")):
        status = status_of(stub.ResolveBreak, request, finance)
        assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT
        assert status.details.startswith(field), status.details
    for method, message, field in (
            (stub.GetReconciliation, rpb.GetReconciliationRequest(partner_id="P9", period_id=1),
             "partner_id: unknown partner"),
            (stub.GetReconciliation, rpb.GetReconciliationRequest(partner_id="P1", period_id=2),
             "period_id: period 2 is not closed"),
            (stub.GetReconciliation, rpb.GetReconciliationRequest(partner_id="P1"),
             "period_id"),
            (stub.ExportLedgerTotals, rpb.ExportLedgerTotalsRequest(partner_id="P9",
                                                                    period_id=1),
             "partner_id: unknown partner"),
            (stub.ExportLedgerTotals, rpb.ExportLedgerTotalsRequest(partner_id="P1",
                                                                    period_id=3),
             "period_id: period 3 is not a closed period")):
        status = status_of(method, message, alliance.tokens["auditor"])
        assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT
        assert status.details.startswith(field), status.details
    request = rpb.ReconcileRequest(request_id=rid("run"), partner_id="P1", period_id=1,
                                   rows=[good])
    for token in (period["p2_finance"], alliance.tokens["auditor"],
                  alliance.tokens["p1_manager"]):
        status = status_of(stub.Reconcile, request, token)
        assert status is not None and status.code == grpc.StatusCode.PERMISSION_DENIED
    for method, message in ((stub.GetReconciliation, rpb.GetReconciliationRequest(
            partner_id="P1", period_id=1)), (stub.ExportLedgerTotals,
                                             rpb.ExportLedgerTotalsRequest(partner_id="P1",
                                                                           period_id=1))):
        status = status_of(method, message, period["p2_finance"])
        assert status is not None and status.code == grpc.StatusCode.PERMISSION_DENIED
    assert db_state(server.ledger) == before


def test_a_period_past_the_bound_is_failed_precondition(server, alliance, period, monkeypatch):
    monkeypatch.setattr(limits, "RECONCILE_LEDGER_ROWS_MAX", 1)  # period 1 holds 2 at S1
    before = db_state(server.ledger)
    status = status_of(period["stub"].Reconcile, rpb.ReconcileRequest(
        request_id=rid("run"), partner_id="P1", period_id=1), alliance.tokens["finance"])
    assert status is not None and status.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "more than 1 movements in period 1" in status.details
    assert db_state(server.ledger) == before


def test_the_commands(server, alliance, period, store_url, tmp_path, monkeypatch, capsys):
    """`settlement pay`, `reconcile FILE`, `reconcile export`, `reconcile resolve`, `report
    statement` on the server's database, in process."""
    database = ["--database", store_url]
    monkeypatch.setenv("LEDGER_TOKEN", alliance.tokens["finance"])
    assert main(["settlement", "pay", "--period", "1", "--currency", "USD", "--payer", "P1",
                 "--payee", "P2", "--amount-minor", "500", "--reference", "wire-9",
                 *database]) == 0
    assert "paid 500, outstanding 0" in capsys.readouterr().out
    assert main(["settlement", "pay", "--period", "1", "--currency", "USD", "--payer", "P1",
                 "--payee", "P2", "--amount-minor", "1", "--reference", "wire-10",
                 *database]) == 2
    assert "amount_minor: overpays" in capsys.readouterr().err
    assert main(["report", "statement", "--period", "1", "--format", "csv", *database]) == 0
    assert "USD-001-CASH,USD,P1,P2,CASH,500,500,0,wire-9" in capsys.readouterr().out

    export = tmp_path / "ours.csv"
    assert main(["reconcile", "export", "--partner", "P1", "--period", "1", "--detail",
                 "--output", str(export), *database]) == 0
    assert export.read_text().splitlines() == [
        "store_id,reference,type,amount_minor,currency", "S1,cap-1,CAPTURED,300,USD",
        "S1,cap-2,CAPTURED,200,USD"]
    assert main(["reconcile", str(export), "--partner", "P1", "--period", "1",
                 "--format", "json", *database]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["counts"]["MATCHED"] == 2 and run["breaks"] == []  # its own rows match fully

    journal = tmp_path / "journal.csv"
    journal.write_text("store_id,reference,type,amount_minor,currency\n"
                       "S1,cap-1,CAPTURED,300,USD\nS1,cap-2,CAPTURED,-4,USD\n"
                       "S9,x,CAPTURED,1,USD\n")
    before = db_state(server.ledger)
    assert main(["reconcile", str(journal), "--partner", "P1", "--period", "1",
                 *database]) == 2
    err = capsys.readouterr().err
    assert "line 3: amount_minor: must not be negative" in err
    assert "line 4: store_id: 'S9' is not a store of partner 'P1'" in err
    assert "2 bad lines; nothing recorded" in err
    assert server.ledger.store.max_notification_id() == before.last_event  # nothing written
    journal.write_text("store_id,reference,type,amount_minor,currency\n"
                       "S1,cap-1,CAPTURED,300,USD\nS1,cap-2,CAPTURED,250,USD\n")
    assert main(["reconcile", str(journal), "--partner", "P1", "--period", "1",
                 "--format", "json", *database]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["counts"]["AMOUNT_MISMATCH"] == 1 and found["repeat_of"] == ""
    break_id = found["breaks"][0]["break_id"]
    assert main(["reconcile", "resolve", "--partner", "P1", "--period", "1", "--break-id",
                 break_id, "--reason", "keyed wrong", *database]) == 0
    assert "resolved" in capsys.readouterr().out
    assert main(["reconcile", str(journal), "--partner", "P1", "--period", "1", *database]) == 0
    table = capsys.readouterr().out
    assert "a repeat of P1-1-2" in table and "keyed wrong" in table
    assert main(["reconcile", "export", "--partner", "P1", "--period", "1", *database]) == 0
    totals = capsys.readouterr().out.splitlines()
    assert totals[0] == "store_id,day,type,currency,count,amount_minor"
    assert totals[1].startswith("S1,") and totals[1].endswith(",CAPTURED,USD,2,500")
    assert main(["reconcile", "export", "--partner", "P1", "--period", "2", *database]) == 2
    assert "period_id: period 2 is not a closed period" in capsys.readouterr().err
