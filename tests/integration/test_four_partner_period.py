"""Stories of issue 9, section 7, through the engine: a four-partner period with known
statements and instructions (the alliance of tests/support/four_partners.py: commission by
the alliance's default and by a pair's agreement, per-point prices, a store of its own, a
second currency), and vouchers settling part of a payable (the payer's stored-value card given
to the payee, recorded as the payment of the VOUCHER instruction after the cash)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from domain.cards import commands as cc
from domain.common import Result
from domain.purchases import commands as pc
from domain.purchases.commands import Line
from domain.settlement.instructions import outstanding
from domain.settlement.model import Category
from domain.settlement.payments import RecordSettlementPayment
from domain.settlement.periods import CloseSettlementPeriod
from ledger.engine import Ledger
from projections.reconcile import transfer_due
from projections.settlement import period_payments, period_statements, settlement_runner
from tests.support.alliance import Alliance, ok, rid
from tests.support.four_partners import build_four_partners

pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def four(ledger: Ledger) -> Alliance:
    return build_four_partners(ledger, ledger.admin_token)  # type: ignore[attr-defined]


def call(ledger: Ledger, who: str, command: Any) -> Any:
    reply = ok(ledger.call(who, command, request_id=rid("four"), timeout_s=30))
    assert reply.result == Result.APPROVED, (command, reply)
    return reply


def card(ledger: Ledger, manager: str, store: str, currency: str, load: int) -> str:
    number = call(ledger, manager, cc.IssueCard("", "STANDARD", currency, "", store)
                  ).card_number
    call(ledger, manager, cc.ActivateCard(number, ""))
    if load:
        call(ledger, manager, cc.LoadValue(number, load, currency, "psp"))
    return number


def spend(ledger: Ledger, terminal: str, number: str, amount: int, currency: str = "USD") -> None:
    hold = call(ledger, terminal, cc.Authorize(number, amount, currency, False, ""))
    call(ledger, terminal, cc.Capture(hold.authorization_id, 0))


def buy(ledger: Ledger, terminal: str, number: str, unit_price: int, points: int) -> Any:
    return call(ledger, terminal, pc.Purchase(number, "USD", (Line("x", "y", 2, unit_price),),
                                              0, False, points, "", "r")).purchase


def the_period(ledger: Ledger, four: Alliance) -> None:
    """Period 1:
    - a P1 card spends 10.00 at P2's lounge: P1 owes P2 1,000; P1 and P2 agreed 1.5 %
      commission paid by the acquirer: P2 owes P1 15;
    - a P2 card spends 4.00 at P3's station: P2 owes P3 400, and the alliance's 0.5 %
      commission paid by the issuer: 2;
    - a P3 card spends 6.00 at S9, a store that is its own entity: P3 owes S9 600 + 3;
    - a P4 card spends 20.00 EUR at P1's flagship: P4 owes P1 2,000 + 10 EUR;
    - the P1 card, with 300 points earned at home (30.00 at S1: a point per 10 cents), pays
      3.00 of a 20.00 basket at P3's station with them: P1 reimburses P3 1.2 cents a point
      (360); the basket earns 200 P1 points, which P3 pays 0.8 cents for, billed at 50 % (80).
    """
    p1 = card(ledger, four.m_p1, "S1", "USD", 5_000)
    p2 = card(ledger, four.m_p2, "A1", "USD", 5_000)
    p3 = card(ledger, four.m_p3, "F1", "USD", 5_000)
    p4 = card(ledger, four.m_p4, "H1", "EUR", 5_000)
    spend(ledger, four.t_a1, p1, 1_000)
    spend(ledger, four.t_f1, p2, 400)
    spend(ledger, four.t_s9, p3, 600)
    spend(ledger, four.t_s1, p4, 2_000, "EUR")
    assert buy(ledger, four.t_s1, p1, 15_00, 0).points_earned == 300
    at_station = buy(ledger, four.t_f1, p1, 10_00, 300)
    assert (at_station.points_redeemed, at_station.points_earned) == (300, 200)
    assert call(ledger, four.finance, CloseSettlementPeriod("four partners")).period_id == 1


def test_a_four_partner_period_with_known_statements_and_instructions(ledger, four):
    the_period(ledger, four)
    found, instructions = period_statements(settlement_runner(ledger.store), 1)
    lines = {(s.currency, s.entity_id): {(line.counterparty_id, Category(line.category).name):
                                         (line.receivable_minor, line.payable_minor)
                                         for line in s.lines}
             for s in found.statements}
    assert lines == {
        ("EUR", "P1"): {("P4", "SV_SPENT_ACROSS"): (2_000, 0), ("P4", "COMMISSION"): (10, 0)},
        ("EUR", "P4"): {("P1", "SV_SPENT_ACROSS"): (0, 2_000), ("P1", "COMMISSION"): (0, 10)},
        ("USD", "P1"): {("P2", "SV_SPENT_ACROSS"): (0, 1_000), ("P2", "COMMISSION"): (15, 0),
                        ("P3", "POINTS_REDEEMED_ACROSS"): (0, 360),
                        ("P3", "POINTS_ISSUED_ACROSS"): (80, 0)},
        ("USD", "P2"): {("P1", "SV_SPENT_ACROSS"): (1_000, 0), ("P1", "COMMISSION"): (0, 15),
                        ("P3", "SV_SPENT_ACROSS"): (0, 400), ("P3", "COMMISSION"): (0, 2)},
        ("USD", "P3"): {("P1", "POINTS_REDEEMED_ACROSS"): (360, 0),
                        ("P1", "POINTS_ISSUED_ACROSS"): (0, 80),
                        ("P2", "SV_SPENT_ACROSS"): (400, 0), ("P2", "COMMISSION"): (2, 0),
                        ("S9", "SV_SPENT_ACROSS"): (0, 600), ("S9", "COMMISSION"): (0, 3)},
        ("USD", "S9"): {("P3", "SV_SPENT_ACROSS"): (600, 0), ("P3", "COMMISSION"): (3, 0)},
    }
    nets = {(s.currency, s.entity_id): (s.gross_receivable_minor, s.gross_payable_minor,
                                        s.multilateral_net_minor) for s in found.statements}
    assert nets == {("EUR", "P1"): (2_010, 0, 2_010), ("EUR", "P4"): (0, 2_010, -2_010),
                    ("USD", "P1"): (95, 1_360, -1_265), ("USD", "P2"): (1_000, 417, 583),
                    ("USD", "P3"): (762, 683, 79), ("USD", "S9"): (603, 0, 603)}
    bilateral = {(s.currency, s.entity_id, b.counterparty_id): b.net_minor
                 for s in found.statements for b in s.bilateral}
    assert bilateral == {("EUR", "P1", "P4"): 2_010, ("EUR", "P4", "P1"): -2_010,
                         ("USD", "P1", "P2"): -985, ("USD", "P2", "P1"): 985,
                         ("USD", "P1", "P3"): -280, ("USD", "P3", "P1"): 280,
                         ("USD", "P2", "P3"): -402, ("USD", "P3", "P2"): 402,
                         ("USD", "P3", "S9"): -603, ("USD", "S9", "P3"): 603}
    # the largest debtor pays the largest creditor first; P1 settles 25 % of each of its
    # payables in its own vouchers (rounded down), P4 has no voucher share
    assert sorted((i.currency, i.payer_id, i.payee_id, i.instrument.name, i.amount_minor)
                  for i in instructions) == [
        ("EUR", "P4", "P1", "CASH", 2_010),
        ("USD", "P1", "P2", "CASH", 438), ("USD", "P1", "P2", "VOUCHER", 145),
        ("USD", "P1", "P3", "CASH", 60), ("USD", "P1", "P3", "VOUCHER", 19),
        ("USD", "P1", "S9", "CASH", 453), ("USD", "P1", "S9", "VOUCHER", 150)]


def test_vouchers_settle_part_of_a_payable(ledger, four):
    """P1 owes S9 603: 453 by wire, and 150 in a stored-value card of P1's issued to S9 and
    recorded as the payment of the VOUCHER instruction; then nothing is outstanding, and the
    voucher is P1's liability, spendable at S9 like any P1 card."""
    the_period(ledger, four)
    runner = settlement_runner(ledger.store)

    def pay(amount: int, reference: str) -> Any:
        asked = RecordSettlementPayment(1, "USD", "P1", "S9", amount, reference)
        asked.validate()
        due = transfer_due(runner, 1, "USD", "P1", "S9")
        return call(ledger, four.finance, msgspec.structs.replace(asked, due=due))

    assert pay(453, "wire-2026-12-01").recon.outstanding_minor == 150
    voucher = card(ledger, four.m_p1, "S1", "USD", 150)
    done = pay(150, f"voucher card {voucher}")
    assert (done.recon.paid_minor, done.recon.outstanding_minor) == (603, 0)
    _, instructions = period_statements(runner, 1)
    to_s9 = [i for i in instructions if i.payee_id == "S9"]
    assert [(s.instruction_id.split("-")[-1], s.paid_minor, s.outstanding_minor, s.references)
            for s in outstanding(to_s9, period_payments(runner, 1))] == [
        ("CASH", 453, 0, ("wire-2026-12-01",)),
        ("VOUCHER", 150, 0, (f"voucher card {voucher}",))]
    spend(ledger, four.t_s9, voucher, 150)  # S9 spends it: P1 owes S9 150 in period 2
    second, _ = period_statements(runner, 2)
    s9 = second.statement("USD", "S9")
    assert s9 is not None and s9.multilateral_net_minor == 150 + 1  # and the 0.5 % commission
