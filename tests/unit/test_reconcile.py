"""Reconciliation and settlement payments as tables: the journal file's checks (each bad value
names its line and column), the classes of small matchings, the ledger's day totals in the
store's calendar, payments against a closed period's transfer, runs and breaks, and who may."""

from __future__ import annotations

import pytest

from domain.common import InvalidInput, Meta, Principal, Result, Role
from domain.reconcile import decide as recon
from domain.reconcile.export import day_totals
from domain.reconcile.journal import TYPES, JournalRow, check_rows, read_csv
from domain.reconcile.matching import MatchClass, match
from domain.registry.events import ReconciliationBreakResolved, SettlementPaymentRecorded
from domain.settlement.payments import (
    Due,
    PaymentBook,
    RecordSettlementPayment,
    decide_payment,
    evolve_payment,
    may_record_payment,
)
from projections.movements import KINDS
from projections.reconcile import JOURNAL_EVENTS

HEADER = "store_id,reference,type,amount_minor,currency\n"
META = Meta("req", "cred", 1, "", "", "", 1_700_000_000_000_000)


def row(ref: str = "r1", amount: int = 100, kind: str = "CAPTURED", store: str = "S1",
        currency: str = "USD") -> JournalRow:
    return JournalRow(store, ref, kind, amount, currency)


def test_a_good_file_reads_in_any_column_order():
    text = ("currency,type,amount_minor,reference,store_id\n"
            "USD,CAPTURED,700,till-1,S1\n\nUSD,REFUNDED,80,till-2,S2\n")
    good, bad = read_csv(text, {"S1", "S2"}, "P1")
    assert bad == []
    assert good == [row("till-1", 700), row("till-2", 80, "REFUNDED", "S2")]


@pytest.mark.parametrize(("line", "expected"), [
    ("S1,r1,CAPTURED,-5,USD", "line 2: amount_minor: must not be negative"),
    ("S1,r1,CAPTURED,1.50,USD", "line 2: amount_minor: must be an integer number of minor"),
    ("S1,r1,CAPTURED,,USD", "line 2: amount_minor: must be an integer"),
    ("S1,r1,CAPTURED,99999999999999999,USD", "line 2: amount_minor: must be at most"),
    ("S1,r1,AUTHORIZED,5,USD", "line 2: type: 'AUTHORIZED' is not one of"),
    ("S1,r1,captured,5,USD", "line 2: type: 'captured' is not one of"),
    ("S1,r1,CAPTURED,5,XXX", "line 2: currency: unknown ISO 4217"),
    ("A1,r1,CAPTURED,5,USD", "line 2: store_id: 'A1' is not a store of partner 'P1'"),
    ("S 1,r1,CAPTURED,5,USD", "line 2: store_id: must be 1..32"),
    ("S1,has space,CAPTURED,5,USD", "line 2: reference: must be 1..64 printable"),
    ("S1,,CAPTURED,5,USD", "line 2: reference: must be 1..64"),
    ("S1,r1,CAPTURED,5", "line 2: has 4 columns, the header 5"),
])
def test_a_bad_value_names_its_line_and_column(line, expected):
    good, bad = read_csv(HEADER + line + "\nS1,ok,CAPTURED,1,USD\n", {"S1", "S2"}, "P1")
    assert str(bad[0]).startswith(expected), bad
    assert good == [row("ok", 1)]  # the other lines are still read (and listed together)


@pytest.mark.parametrize(("text", "expected"), [
    ("", "line 1: the file is empty"),
    ("store_id,reference,type,amount_minor\n", "line 1: missing currency"),
    (HEADER.strip() + ",note\n", "line 1: unknown column 'note'"),
    ("store_id,store_id,reference,type,amount_minor,currency\n", "line 1: store_id twice"),
])
def test_a_bad_header_refuses_the_file(text, expected):
    with pytest.raises(InvalidInput, match=expected):
        read_csv(text, {"S1"}, "P1")


def test_a_file_past_its_row_bound_is_refused():
    with pytest.raises(InvalidInput, match="line 4: more than 2 rows"):
        read_csv(HEADER + "S1,a,CAPTURED,1,USD\n" * 3, {"S1"}, "P1", rows_max=2)


def test_rows_over_grpc_name_the_row_and_field():
    with pytest.raises(InvalidInput, match=r"rows\[1\]\.amount_minor: must not be negative"):
        check_rows([row(), row(amount=-1)], {"S1"}, "P1")


def test_the_journal_types_are_the_ledgers_settled_movement_kinds():
    assert sorted(KINDS[t][0] for t in JOURNAL_EVENTS) == sorted(TYPES)


# (file rows, ledger rows, classes in item order)
MATCHES = [
    ([row()], [row()], [MatchClass.MATCHED]),
    ([row(amount=99)], [row()], [MatchClass.AMOUNT_MISMATCH]),
    ([row(currency="EUR")], [row()], [MatchClass.AMOUNT_MISMATCH]),
    ([row()], [], [MatchClass.MISSING_IN_LEDGER]),
    ([], [row()], [MatchClass.MISSING_IN_FILE]),
    ([row(), row()], [row()], [MatchClass.MATCHED, MatchClass.DUPLICATE_IN_FILE]),
    ([row()], [row(), row()], [MatchClass.MATCHED, MatchClass.DUPLICATE_IN_LEDGER]),
    ([row(), row()], [], [MatchClass.MISSING_IN_LEDGER, MatchClass.DUPLICATE_IN_FILE]),
    ([row(amount=1), row(amount=2)], [row(amount=2)],
     [MatchClass.MATCHED, MatchClass.DUPLICATE_IN_FILE]),
    ([row(kind="REFUNDED")], [row()], [MatchClass.MISSING_IN_FILE, MatchClass.MISSING_IN_LEDGER]),
]


@pytest.mark.parametrize(("theirs", "ours", "classes"), MATCHES)
def test_matching_table(theirs, ours, classes):
    found = match(theirs, ours, "P1/1")
    assert [i.match_class for i in found.items] == classes


def test_break_ids_are_stable_and_name_the_scope():
    one = match([row(amount=1)], [row()], "P1/1").breaks()[0].break_id
    assert one == match([row(amount=1)], [row()], "P1/1").breaks()[0].break_id
    assert one != match([row(amount=1)], [row()], "P1/2").breaks()[0].break_id
    assert one == match([row(amount=5)], [row(amount=7)], "P1/1").breaks()[0].break_id


def test_day_totals_follow_the_stores_calendar():
    # 2026-03-01T15:30Z is already 2026-03-01 23:30 in Shanghai; 16:30Z is the 2nd there
    at = 1_772_379_000_000_000  # 2026-03-01T15:30:00Z
    rows = [(row("a", 100), at), (row("b", 50), at + 3_600_000_000),
            (row("c", 7, "REFUNDED"), at), (row("d", 1, store="A1"), at + 3_600_000_000)]
    totals = day_totals(rows, {"S1": "Asia/Shanghai", "A1": "Europe/Paris"})
    assert [(t.store_id, t.day, t.type, t.count, t.amount_minor) for t in totals] == [
        ("A1", "2026-03-01", "CAPTURED", 1, 1),
        ("S1", "2026-03-01", "CAPTURED", 1, 100),
        ("S1", "2026-03-01", "REFUNDED", 1, 7),
        ("S1", "2026-03-02", "CAPTURED", 1, 50)]


# ------------------------------------------------------------------------------ payments


def payment(amount: int, due=(Due("USD-001-CASH", 500),), period: int = 1,
            **fields) -> RecordSettlementPayment:
    values = dict(period_id=period, currency="USD", payer_id="P1", payee_id="P2",
                  amount_minor=amount, reference="bank-1")
    values.update(fields)
    return RecordSettlementPayment(**values, due=due)


def test_payments_add_up_to_the_transfer_and_no_further():
    book = PaymentBook()
    event = decide_payment(book, 2, payment(300), META)
    assert isinstance(event, SettlementPaymentRecorded)
    assert [(p.instruction_id, p.amount_minor) for p in event.parts] == [("USD-001-CASH", 300)]
    evolve_payment(book, event)
    with pytest.raises(InvalidInput, match=r"amount_minor: overpays .* 201 paid with 200 "
                                           r"outstanding of 500"):
        decide_payment(book, 2, payment(201), META)
    evolve_payment(book, decide_payment(book, 2, payment(200), META))
    assert book.paid_minor(1, "USD-001-CASH") == 500


def test_a_payment_covers_cash_then_vouchers():
    due = (Due("USD-001-CASH", 70), Due("USD-001-VOUCHER", 30))
    event = decide_payment(PaymentBook(), 2, payment(90, due), META)
    assert [(p.instruction_id, p.amount_minor) for p in event.parts] == [
        ("USD-001-CASH", 70), ("USD-001-VOUCHER", 20)]


@pytest.mark.parametrize(("command", "open_period", "field"), [
    (payment(10, period=2), 2, "period_id"),  # the open period
    (payment(10, due=()), 2, "payee_id"),  # no such transfer
])
def test_a_payment_outside_a_closed_transfer_is_refused(command, open_period, field):
    with pytest.raises(InvalidInput, match=f"^{field}:"):
        decide_payment(PaymentBook(), open_period, command, META)


@pytest.mark.parametrize(("command", "field"), [
    (payment(0), "amount_minor"), (payment(-5), "amount_minor"),
    (payment(5, period=0), "period_id"), (payment(5, currency="usd"), "currency"),
    (payment(5, payee_id="P1"), "payee_id"), (payment(5, payer_id=""), "payer_id"),
    (payment(5, reference=""), "reference"), (payment(5, reference="x" * 201), "reference"),
])
def test_a_bad_payment_names_the_field(command, field):
    with pytest.raises(InvalidInput, match=f"^{field}:"):
        command.validate()


@pytest.mark.parametrize(("principal", "allowed"), [
    (Principal(Role.ADMIN), True), (Principal(Role.FINANCE), True),
    (Principal(Role.FINANCE, "P2"), True),  # the payee confirms what it received
    (Principal(Role.FINANCE, "P1"), False),  # the payer may not mark its own debt paid
    (Principal(Role.AUDITOR), False), (Principal(Role.PARTNER_MANAGER, "P2"), False)])
def test_who_may_record_a_payment(principal, allowed):
    assert (may_record_payment(principal, "P2") is None) == allowed


# ------------------------------------------------------------------------------ runs, breaks


def run_of(found, partner: str = "P1", period: int = 1) -> recon.RecordReconciliation:
    command = recon.record_command(partner, period, found)
    command.validate()
    return command


def test_a_run_then_the_same_file_again_is_a_repeat_and_a_break_resolves_once():
    book = recon.ReconBook()
    found = match([row(amount=1)], [row()], "P1/1")
    first = recon.decide_run(book, run_of(found), META)
    assert (first.run_id, first.repeat_of, first.counts) == ("P1-1-1", "", (0, 1, 0, 0, 0, 0))
    recon.evolve_recon(book, first)
    again = recon.decide_run(book, run_of(found), META)
    assert (again.run_id, again.repeat_of) == ("P1-1-2", "P1-1-1")
    recon.evolve_recon(book, again)
    break_id = found.breaks()[0].break_id
    result, event = recon.decide_resolve(
        book, recon.ResolveBreak("P1", 1, break_id, "till keyed 1 instead of 100"), META)
    assert result == Result.APPROVED and isinstance(event, ReconciliationBreakResolved)
    recon.evolve_recon(book, event)
    assert recon.decide_resolve(book, recon.ResolveBreak("P1", 1, break_id, "again"),
                                META) == (Result.DECLINED_INVALID_STATE, None)


@pytest.mark.parametrize(("command", "field"), [
    (recon.ResolveBreak("P1", 1, "0" * 16, "why"), "break_id"),  # not a break of the run
    (recon.ResolveBreak("P1", 2, "0" * 16, "why"), "period_id"),  # no run of that period
])
def test_resolving_what_is_not_a_break_is_refused(command, field):
    book = recon.ReconBook()
    recon.evolve_recon(book, recon.decide_run(
        book, run_of(match([row()], [], "P1/1")), META))
    with pytest.raises(InvalidInput, match=f"^{field}:"):
        recon.decide_resolve(book, command, META)


@pytest.mark.parametrize(("command", "field"), [
    (recon.ResolveBreak("P1", 1, "XYZ", "why"), "break_id"),
    (recon.ResolveBreak("P1", 1, "0" * 16, ""), "reason"),
    (recon.ResolveBreak("P1", 0, "0" * 16, "why"), "period_id"),
    (recon.ResolveBreak("", 1, "0" * 16, "why"), "partner_id"),
    (recon.GetReconciliation("P1", -1), "period_id"),
    (recon.RecordReconciliation("P1", 1, "z" * 64, 0, 0, (0,) * 6, b""), "file_digest"),
    (recon.RecordReconciliation("P1", 1, "a" * 64, 0, 0, (0,) * 5, b""), "counts"),
    (recon.RecordReconciliation("P1", 1, "a" * 64, 0, 0, (0, 1, 0, 0, 0, 0), b""),
     "break_ids"),
    (recon.RecordReconciliation("P1", 1, "a" * 64, 2, 1, (1, 0, 0, 0, 0, 0), b""),
     "file_rows"),
    (recon.RecordReconciliation("P1", 1, "a" * 64, 1, 0, (1, 0, 0, 0, 0, 0), b""),
     "ledger_rows"),
])
def test_bad_reconciliation_commands_name_the_field(command, field):
    with pytest.raises(InvalidInput, match=f"^{field}:"):
        command.validate()


def test_an_unknown_partner_or_an_open_period_cannot_be_reconciled():
    with pytest.raises(InvalidInput, match=r"^partner_id: unknown partner"):
        recon.check_scope({"P1": 1}, 2, "P9", 1)
    with pytest.raises(InvalidInput, match=r"^period_id: period 2 is not closed"):
        recon.check_scope({"P1": 1}, 2, "P1", 2)


@pytest.mark.parametrize(("principal", "runs", "reads"), [
    (Principal(Role.ADMIN), True, True), (Principal(Role.FINANCE), True, True),
    (Principal(Role.FINANCE, "P1"), True, True), (Principal(Role.FINANCE, "P2"), False, False),
    (Principal(Role.AUDITOR), False, True), (Principal(Role.PARTNER_MANAGER, "P1"), False,
                                             False)])
def test_who_may_reconcile_and_read(principal, runs, reads):
    assert (recon.may_reconcile(principal, "P1") is None) == runs
    assert (recon.may_read(principal, "P1") is None) == reads
