"""Payments against a closed period's settlement instructions (issue 9, section 3).

A payment names a transfer, not an instruction: (period, currency, payer, payee) is one
transfer of the period's netting (a pair of entities meets at most once per currency), made
of a CASH instruction and, under a voucher share, a VOUCHER one. The amount is applied to them
in that order. Paying more than the transfer has outstanding is refused (InvalidInput
`amount_minor`, nothing written).

The instructions of a closed period never change, but the writer does not hold them: they are
computed from the settlement read model. So the reader that builds the command (the gRPC
servicer, the CLI) looks the transfer's instructions up in the closed period and puts them in
the command (`due`); the writer checks the period is closed and applies the payments recorded
so far. A period still open has no instructions to pay (InvalidInput `period_id`).

Who records a payment: ADMIN, the alliance's FINANCE, or a FINANCE credential of the payee
(the one who received the money confirms it). The payer's own FINANCE credential may not: it
would mark its own debt settled.
"""

from __future__ import annotations

import msgspec

from domain.common import InvalidInput, Meta, Principal, Role, check_id, check_text, shown
from domain.currency import check_currency
from domain.registry.events import PaymentPart, SettlementPaymentRecorded
from domain.settlement.instructions import REFERENCE_MAX, InstructionStatus, Payment, pay
from domain.settlement.model import check_minor


class Due(msgspec.Struct, frozen=True, array_like=True):
    """One instruction of the transfer, as the closed period's statements give it."""

    instruction_id: str
    amount_minor: int


class RecordSettlementPayment(msgspec.Struct, frozen=True, array_like=True,
                              tag="RecordSettlementPayment"):
    period_id: int
    currency: str
    payer_id: str
    payee_id: str
    amount_minor: int
    reference: str  # the bank transfer's (or the vouchers' issue) reference
    due: tuple[Due, ...] = ()  # the transfer's instructions: see the module's docstring

    def validate(self) -> None:
        if isinstance(self.period_id, bool) or not isinstance(self.period_id, int) \
                or self.period_id < 1:
            raise InvalidInput("period_id", f"must be a period id >= 1, not "
                               f"{shown(self.period_id)}")
        check_currency(self.currency)
        check_id(self.payer_id, "payer_id")
        check_id(self.payee_id, "payee_id")
        if self.payer_id == self.payee_id:
            raise InvalidInput("payee_id", "must differ from payer_id")
        if isinstance(self.amount_minor, int) and not isinstance(self.amount_minor, bool) \
                and self.amount_minor < 0:
            raise InvalidInput("amount_minor", f"must not be negative, not {self.amount_minor}")
        check_minor(self.amount_minor, "amount_minor")
        check_text(self.reference, "reference", required=True, limit=REFERENCE_MAX)


class PaymentBook(msgspec.Struct):
    """What the registry knows of payments: paid per (period, instruction)."""

    paid: dict[str, int] = {}  # "<period>/<instruction id>" -> paid minor units

    def paid_minor(self, period_id: int, instruction_id: str) -> int:
        return self.paid.get(f"{period_id}/{instruction_id}", 0)


def may_record_payment(p: Principal, payee_id: str) -> str | None:
    if p.role == Role.ADMIN or (p.role == Role.FINANCE and not p.partner_id):
        return None
    if p.role == Role.FINANCE and p.partner_id == payee_id:
        return None
    if p.role == Role.FINANCE:
        return (f"the FINANCE credential of {shown(p.partner_id)} may record payments it "
                f"received, not payments to {shown(payee_id)}")
    return f"role {Role(p.role).name} may not record settlement payments"


def decide_payment(book: PaymentBook, open_period: int, command: RecordSettlementPayment,
                   meta: Meta) -> SettlementPaymentRecorded:
    """The payment's event, or InvalidInput: the period is not closed, the transfer does not
    exist, or the amount overpays what is outstanding."""
    if command.period_id >= open_period:
        raise InvalidInput("period_id", f"period {command.period_id} is not closed (period "
                           f"{open_period} is open): payments settle a closed period")
    if not command.due:
        raise InvalidInput("payee_id", f"no instruction from {shown(command.payer_id)} to "
                           f"{shown(command.payee_id)} in {command.currency} in period "
                           f"{command.period_id}")
    statuses = []
    for due in command.due:
        paid = book.paid_minor(command.period_id, due.instruction_id)
        statuses.append(InstructionStatus(due.instruction_id, due.amount_minor, paid,
                                          due.amount_minor - paid))
    outstanding = sum(s.outstanding_minor for s in statuses)
    if command.amount_minor > outstanding:
        raise InvalidInput("amount_minor", f"overpays the transfer {command.payer_id} -> "
                           f"{command.payee_id} of period {command.period_id}: "
                           f"{command.amount_minor} paid with {outstanding} outstanding of "
                           f"{sum(d.amount_minor for d in command.due)}")
    left = command.amount_minor
    parts = []
    for status in statuses:
        part = min(left, status.outstanding_minor)
        if part:
            pay(status, Payment(status.instruction_id, command.reference, part))  # checks
            parts.append(PaymentPart(status.instruction_id, part))
            left -= part
    assert left == 0, left
    return SettlementPaymentRecorded(meta, command.period_id, command.currency,
                                     command.payer_id, command.payee_id, command.amount_minor,
                                     command.reference, tuple(parts))


def evolve_payment(book: PaymentBook, event: SettlementPaymentRecorded) -> None:
    for part in event.parts:
        key = f"{event.period_id}/{part.instruction_id}"
        book.paid[key] = book.paid.get(key, 0) + part.amount_minor
