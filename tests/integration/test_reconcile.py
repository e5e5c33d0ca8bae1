"""Settlement payments and reconciliation through the engine, on SQLite and PostgreSQL (issue 9,
sections 3 and 4).

Stories: a transfer of a closed period paid in two payments (a retry applies once, an
overpayment is refused with nothing written, the payer's own FINANCE may not, the statement
shows paid and outstanding, a rebuild of the read model keeps them); a partner's journal with
each kind of break, matched against the ledger's movements of its stores in the period, the run
recorded, the same file again a repeat, a break resolved once; bad inputs refused naming the
field with nothing written; the ledger's totals and rows exported."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from domain.cards import commands as cc
from domain.common import InvalidInput, Principal, Result, Role
from domain.reconcile import decide as recon
from domain.reconcile.export import day_totals
from domain.reconcile.journal import JournalRow, read_csv, write_csv
from domain.reconcile.matching import MatchClass, match
from domain.registry import commands as rc
from domain.settlement.instructions import outstanding
from domain.settlement.payments import RecordSettlementPayment
from domain.settlement.periods import CloseSettlementPeriod
from ledger.engine import Failure, Ledger
from ledger.refusals import Refusal
from projections.reconcile import (
    ledger_rows,
    partner_stores,
    registry_now,
    run_matching,
    transfer_due,
)
from projections.settlement import period_payments, period_statements, settlement_runner
from tests.support.alliance import ok, rid

pytestmark = pytest.mark.backends("sqlite", "postgres", "split")
USD = "USD"


def call(ledger: Ledger, who: str, command: Any, request_id: str = "") -> Any:
    return ledger.call(who, command, request_id=request_id or rid("recon"), timeout_s=30)


def card(ledger: Ledger, manager: str, store: str, load: int) -> str:
    """Issued and loaded by a partner manager: no store, so nothing of it is a journal row."""
    number = ok(call(ledger, manager, cc.IssueCard("", "STANDARD", USD, "", store))).card_number
    assert ok(call(ledger, manager, cc.ActivateCard(number, ""))).result == Result.APPROVED
    assert ok(call(ledger, manager, cc.LoadValue(number, load, USD, "psp"))).result == 1
    return number


def spend(ledger: Ledger, terminal: str, number: str, amount: int, capture_id: str = "") -> str:
    hold = ok(call(ledger, terminal, cc.Authorize(number, amount, USD, False, "")))
    assert hold.result == Result.APPROVED, hold
    assert ok(call(ledger, terminal, cc.Capture(hold.authorization_id, 0),
                   capture_id)).result == Result.APPROVED
    return hold.authorization_id


def pay(ledger: Ledger, who: str, amount: int, request_id: str = "", period: int = 1,
        payer: str = "P1", payee: str = "P2") -> Any:
    asked = RecordSettlementPayment(period, USD, payer, payee, amount, f"bank-{amount}")
    asked.validate()
    due = transfer_due(settlement_runner(ledger.store), period, USD, payer, payee)
    return call(ledger, who, msgspec.structs.replace(asked, due=due), request_id)


def written(ledger: Ledger) -> tuple[int, int]:
    return ledger.store.max_notification_id(), ledger.registry.version


def finance_of(ledger: Ledger, alliance: Any, partner: str) -> str:
    return ok(call(ledger, alliance.admin, rc.CreateCredential(
        Principal(Role.FINANCE, partner), f"finance {partner}"))).credential_id


def test_a_transfer_paid_in_two_payments(ledger, alliance):
    retail = card(ledger, alliance.p1_manager, "S1", 10_000)
    airline = card(ledger, alliance.p2_manager, "A1", 10_000)
    spend(ledger, alliance.t_air, retail, 700)
    spend(ledger, alliance.t1, airline, 200)
    # nothing to pay in an open period
    with pytest.raises(InvalidInput, match=r"^period_id: period 1 is not a closed period"):
        pay(ledger, alliance.finance, 100)
    assert ok(call(ledger, alliance.finance, CloseSettlementPeriod("Nov"))).period_id == 1
    p1_finance, p2_finance = (finance_of(ledger, alliance, p) for p in ("P1", "P2"))

    first = ok(pay(ledger, alliance.finance, 300, "pay-1"))
    assert (first.result, first.recon.paid_minor, first.recon.outstanding_minor) == (1, 300, 200)
    again = ok(pay(ledger, alliance.finance, 300, "pay-1"))  # a retry: applied once
    assert again.replayed and again.recon.outstanding_minor == 200
    before = written(ledger)
    overpaid = pay(ledger, alliance.finance, 201)
    assert isinstance(overpaid, Failure) and overpaid.code == Refusal.INVALID_INPUT
    assert overpaid.message.startswith("amount_minor: overpays the transfer P1 -> P2 of "
                                       "period 1: 201 paid with 200 outstanding of 500")
    denied = pay(ledger, p1_finance, 200)  # the payer may not mark its own debt paid
    assert isinstance(denied, Failure) and denied.code == Refusal.DENIED
    no_transfer = pay(ledger, alliance.finance, 10, payer="P2", payee="P1")
    assert isinstance(no_transfer, Failure) and no_transfer.message.startswith(
        "payee_id: no instruction from 'P2' to 'P1' in USD in period 1")
    with pytest.raises(InvalidInput, match=r"^period_id: period 2 is not a closed period"):
        pay(ledger, alliance.finance, 10, period=2)  # the open period: read side refuses
    assert written(ledger) == before  # nothing written by any refusal
    last = ok(pay(ledger, p2_finance, 200))  # the payee confirms what it received
    assert (last.recon.paid_minor, last.recon.outstanding_minor) == (500, 0)

    runner = settlement_runner(ledger.store)
    _, instructions = period_statements(runner, 1)
    statuses = outstanding(instructions, period_payments(runner, 1))
    assert [(s.instruction_id, s.paid_minor, s.outstanding_minor, s.references)
            for s in statuses] == [("USD-001-CASH", 500, 0, ("bank-300", "bank-200"))]
    runner.rebuild()
    assert outstanding(instructions, period_payments(runner, 1)) == statuses
    fully = pay(ledger, alliance.finance, 1)
    assert isinstance(fully, Failure) and "1 paid with 0 outstanding" in fully.message


def journal_period(ledger: Ledger, alliance: Any) -> None:
    """Period 1 at P1's stores: cap-1 700 and its refund ref-1 100 (S1), cap-2 600 (S1),
    cap-3 300 (S2), and dup-1 50 captured by two tills of S1 (each its own key space: the
    ledger holds the request id twice); a P1 card at P2's lounge (not P1's journal). After
    the close: cap-late at S1 (period 2)."""
    retail = card(ledger, alliance.p1_manager, "S1", 10_000)
    airline = card(ledger, alliance.p2_manager, "A1", 10_000)
    first = spend(ledger, alliance.t1, retail, 700, "cap-1")
    assert ok(call(ledger, alliance.t1, cc.Refund(first, 100), "ref-1")).result == 1
    spend(ledger, alliance.t1, airline, 600, "cap-2")
    spend(ledger, alliance.t3, retail, 300, "cap-3")
    spend(ledger, alliance.t1, retail, 50, "dup-1")
    spend(ledger, alliance.t2, airline, 50, "dup-1")
    spend(ledger, alliance.t_air, retail, 999, "lounge-1")
    assert ok(call(ledger, alliance.admin, CloseSettlementPeriod("Nov"))).period_id == 1
    spend(ledger, alliance.t1, retail, 5, "cap-late")


JOURNAL = """store_id,reference,type,amount_minor,currency
S1,cap-1,CAPTURED,700,USD
S1,ref-1,REFUNDED,100,USD
S1,ref-1,REFUNDED,100,USD
S1,cap-2,CAPTURED,650,USD
S1,dup-1,CAPTURED,50,USD
S2,cap-9,CAPTURED,40,USD
"""
EXPECTED = {MatchClass.MATCHED: [("S1", "cap-1"), ("S1", "dup-1"), ("S1", "ref-1")],
            MatchClass.AMOUNT_MISMATCH: [("S1", "cap-2")],
            MatchClass.MISSING_IN_LEDGER: [("S2", "cap-9")],
            MatchClass.MISSING_IN_FILE: [("S2", "cap-3")],
            MatchClass.DUPLICATE_IN_FILE: [("S1", "ref-1")],
            MatchClass.DUPLICATE_IN_LEDGER: [("S1", "dup-1")]}


def test_a_journal_with_each_kind_of_break(ledger, alliance):
    journal_period(ledger, alliance)
    runner = settlement_runner(ledger.store)
    stores = partner_stores(registry_now(ledger.store), "P1")
    ours = ledger_rows(runner, "P1", 1, stores)
    assert sorted((r.store_id, r.reference, r.type, r.amount_minor) for r, _ in ours) == [
        ("S1", "cap-1", "CAPTURED", 700), ("S1", "cap-2", "CAPTURED", 600),
        ("S1", "dup-1", "CAPTURED", 50), ("S1", "dup-1", "CAPTURED", 50),
        ("S1", "ref-1", "REFUNDED", 100), ("S2", "cap-3", "CAPTURED", 300)]
    rows, bad = read_csv(JOURNAL, stores, "P1")
    assert bad == []
    found = run_matching(runner, "P1", 1, rows)
    assert {c: sorted((i.key[0], i.key[1]) for i in found.items if i.match_class == c)
            for c in MatchClass} == EXPECTED
    mismatch = next(i for i in found.items if i.match_class == MatchClass.AMOUNT_MISMATCH)
    assert (mismatch.file_row.amount_minor, mismatch.ledger_row.amount_minor) == (650, 600)

    run = ok(call(ledger, alliance.finance, recon.record_command("P1", 1, found)))
    assert (run.recon.run_id, run.recon.repeat_of) == ("P1-1-1", "")
    # the same file again (its lines in another order): the same result, said to be a repeat
    again = run_matching(runner, "P1", 1, list(reversed(rows)))
    assert again == found
    repeat = ok(call(ledger, alliance.finance, recon.record_command("P1", 1, again)))
    assert (repeat.recon.run_id, repeat.recon.repeat_of) == ("P1-1-2", "P1-1-1")

    before = written(ledger)
    resolve = recon.ResolveBreak("P1", 1, mismatch.break_id, "till keyed 6.50 for 6.00")
    assert ok(call(ledger, alliance.finance, resolve, "res-1")).result == Result.APPROVED
    assert ok(call(ledger, alliance.finance, resolve, "res-1")).replayed  # a retry
    assert ok(call(ledger, alliance.finance, resolve)).result == Result.DECLINED_INVALID_STATE
    assert written(ledger)[1] == before[1] + 1  # one resolution recorded
    view = ok(call(ledger, alliance.auditor, recon.GetReconciliation("P1", 1), "")).recon
    assert [(r.run_id, r.counts, r.repeat_of, r.file_digest) for r in view.runs] == [
        ("P1-1-1", (3, 1, 1, 1, 1, 1), "", found.file_digest),
        ("P1-1-2", (3, 1, 1, 1, 1, 1), "P1-1-1", found.file_digest)]
    assert sorted(view.open_breaks) == sorted(i.break_id for i in found.breaks())
    assert [(r.break_id, r.reason) for r in view.resolutions] == [
        (mismatch.break_id, "till keyed 6.50 for 6.00")]
    # the ledger's own rows, exported and handed back, match fully
    exported, _ = read_csv(write_csv(sorted(r for r, _ in ours)), stores, "P1")
    assert match(exported, [r for r, _ in ours], "P1/1").breaks() == ()
    totals = day_totals(ours, stores)
    assert sum(t.count for t in totals) == 6 and {t.store_id for t in totals} == {"S1", "S2"}
    assert sum(t.amount_minor for t in totals if t.type == "CAPTURED") == 1_700


def test_bad_reconciliation_inputs_write_nothing(ledger, alliance):
    journal_period(ledger, alliance)
    runner = settlement_runner(ledger.store)
    before = written(ledger)
    good = JournalRow("S1", "cap-1", "CAPTURED", 700, USD)
    for partner, period, rows, field in (
            ("P9", 1, [good], "partner_id"),
            ("P1", 2, [good], "period_id"),  # open
            ("P1", 7, [good], "period_id"),  # not there
            ("P1", 1, [good, JournalRow("S1", "x", "CAPTURED", -1, USD)],
             r"rows\[1\]\.amount_minor"),
            ("P1", 1, [JournalRow("A1", "x", "CAPTURED", 1, USD)], r"rows\[0\]\.store_id"),
            ("P1", 1, [JournalRow("S1", "x", "VOIDED", 1, USD)], r"rows\[0\]\.type")):
        with pytest.raises(InvalidInput, match=f"^{field}:"):
            run_matching(runner, partner, period, rows)
    found = run_matching(runner, "P1", 1, [good])
    other = ok(call(ledger, alliance.admin, rc.CreateCredential(
        Principal(Role.FINANCE, "P2"), "finance P2"))).credential_id
    before = written(ledger)
    for who, command, code in (
            (other, recon.record_command("P1", 1, found), Refusal.DENIED),
            (alliance.auditor, recon.record_command("P1", 1, found), Refusal.DENIED),
            (alliance.finance, recon.record_command("P9", 1, found), Refusal.INVALID_INPUT),
            (alliance.finance, recon.record_command("P1", 2, found), Refusal.INVALID_INPUT),
            (alliance.finance, recon.ResolveBreak("P1", 1, "0" * 16, "x"),
             Refusal.INVALID_INPUT)):
        refused = call(ledger, who, command)
        assert isinstance(refused, Failure) and refused.code == code, (command, refused)
    assert written(ledger) == before
