"""Settlement instructions: who pays whom, per currency, to bring every multilateral net of a
period to zero; the voucher share of a payable; what is still outstanding after payments.

Netting (per currency, on the statements' multilateral nets). Greedy matching: take the
entity owing the most and the entity owed the most (ties: the smaller id), let the first pay
the second the smaller of the two amounts, put back whichever still has a remainder, repeat.
Why at most k - 1 transfers for k entities with a non-zero net: the debts and credits left
always sum to the same amount, each transfer brings at least one of its two entities to
zero (it moves the smaller of the two amounts), and the last one brings both to zero (they
are then the only ones left and must hold equal amounts); so k entities take at most
(k - 2) + 1 transfers, and none for k = 0 (k = 1 cannot happen: the nets sum to zero). Two
more properties follow from the construction: a debtor only pays and a creditor only
receives, and a pair of entities meets at most once (one of them leaves when they meet).
The greedy is not always the fewest transfers possible (finding those is NP-hard: it is
splitting the nets into the most zero-sum groups); it is deterministic, O(k log k), and keeps
the bound the alliance asks for.

Vouchers. An agreement may let a payer settle `voucher_share_bp` basis points of what it pays
in its own stored-value vouchers (the payee receives cards of the payer worth that much).
Each of that payer's transfers becomes two instructions: VOUCHER = floor(amount x bp /
10,000) and CASH = amount - VOUCHER. Rounding is down on the voucher part, to the minor unit:
the share is the most the payer may settle in vouchers, so a fraction of a minor unit is paid
in cash. A part that comes to zero is left out (no zero instructions).

Ids. An instruction's id is `<currency>-<transfer number>-<CASH|VOUCHER>`, e.g.
`EUR-001-CASH`: unique within its period and the same whenever the period is recomputed.
"""

from __future__ import annotations

import enum
import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping

import msgspec

from domain.common import InvalidInput, check_id, check_text, shown
from domain.settlement.model import check_minor, check_str
from domain.settlement.statements import StatementSet

BP_DENOMINATOR = 10_000  # basis points in a whole
REFERENCE_MAX = 200


class Instrument(enum.IntEnum):
    """How an instruction is paid; the numbers are stored and never change."""

    CASH = 1
    VOUCHER = 2  # stored-value cards of the payer, issued to the payee


class Instruction(msgspec.Struct, frozen=True):
    instruction_id: str  # unique within the period; see the module's docstring
    period_id: str
    currency: str
    transfer_no: int  # 1.. within the currency; the CASH and VOUCHER parts of one transfer share it
    payer_id: str  # a net debtor of the currency
    payee_id: str  # a net creditor of the currency
    instrument: Instrument
    amount_minor: int  # > 0


def net_transfers(nets: Mapping[str, int]) -> list[tuple[str, str, int]]:
    """(payer, payee, amount) transfers that bring every net to zero (net > 0: owed to the
    entity), largest debtor to largest creditor; see the module's docstring for the bound.
    `nets` must sum to zero (InvalidInput "nets" otherwise)."""
    total = sum(nets.values())
    if total != 0:
        raise InvalidInput("nets", f"must sum to 0, not {total}")
    # heaps of (-amount, entity): the largest amount first, then the smallest id
    debtors = [(net, entity) for entity, net in nets.items() if net < 0]
    creditors = [(-net, entity) for entity, net in nets.items() if net > 0]
    heapq.heapify(debtors)
    heapq.heapify(creditors)
    transfers: list[tuple[str, str, int]] = []
    while debtors:
        owed_negated, payer = heapq.heappop(debtors)
        due_negated, payee = heapq.heappop(creditors)  # non-empty: what is left sums to zero
        amount = min(-owed_negated, -due_negated)
        transfers.append((payer, payee, amount))
        if -owed_negated > amount:
            heapq.heappush(debtors, (owed_negated + amount, payer))
        if -due_negated > amount:
            heapq.heappush(creditors, (due_negated + amount, payee))
    assert not creditors, creditors
    nonzero = sum(1 for net in nets.values() if net)
    assert len(transfers) <= max(nonzero - 1, 0), (len(transfers), nonzero)
    return transfers


def voucher_part(amount_minor: int, voucher_share_bp: int) -> int:
    """The part of `amount_minor` settled in vouchers: rounded down to the minor unit."""
    return amount_minor * voucher_share_bp // BP_DENOMINATOR


def check_voucher_shares(shares: Mapping[str, int] | None) -> dict[str, int]:
    checked: dict[str, int] = {}
    for payer, share in (shares or {}).items():
        field = f"voucher_share_bp_by_payer[{shown(payer)}]"
        check_id(check_str(payer, field), field)
        if isinstance(share, bool) or not isinstance(share, int) \
                or not 0 <= share <= BP_DENOMINATOR:
            raise InvalidInput(field, f"must be an integer 0..{BP_DENOMINATOR} basis points, "
                               f"not {shown(share)}")
        checked[payer] = share
    return checked


def instructions(statement_set: StatementSet,
                 voucher_share_bp_by_payer: Mapping[str, int] | None = None,
                 ) -> tuple[Instruction, ...]:
    """The settlement instructions of a period: per currency (sorted), the net transfers in
    the order the greedy makes them, each as its CASH part then its VOUCHER part."""
    if not isinstance(statement_set, StatementSet):
        raise InvalidInput("statements", f"must be a StatementSet, not {shown(statement_set)}")
    shares = check_voucher_shares(voucher_share_bp_by_payer)
    nets: dict[str, dict[str, int]] = defaultdict(dict)
    for index, statement in enumerate(statement_set.statements):
        if statement.entity_id in nets[statement.currency]:
            raise InvalidInput(f"statements[{index}]",
                               f"a second statement of {statement.entity_id} in "
                               f"{statement.currency}")
        nets[statement.currency][statement.entity_id] = statement.multilateral_net_minor
    for currency, by_entity in nets.items():
        total = sum(by_entity.values())
        if total != 0:
            raise InvalidInput("statements", f"the multilateral nets of {currency} sum to "
                               f"{total}, not 0")

    result: list[Instruction] = []
    period = statement_set.period_id
    for currency in sorted(nets):
        for number, (payer, payee, amount) in enumerate(net_transfers(nets[currency]), 1):
            voucher = voucher_part(amount, shares.get(payer, 0))
            for instrument, part in ((Instrument.CASH, amount - voucher),
                                     (Instrument.VOUCHER, voucher)):
                if part:
                    result.append(Instruction(f"{currency}-{number:03d}-{instrument.name}",
                                              period, currency, number, payer, payee,
                                              instrument, part))
    return tuple(result)


class Payment(msgspec.Struct, frozen=True):
    """A payment recorded against one instruction (a bank transfer's reference, or the
    vouchers' issue reference for a VOUCHER instruction)."""

    instruction_id: str
    reference: str
    amount_minor: int

    def __post_init__(self) -> None:
        check_id(check_str(self.instruction_id, "instruction_id"), "instruction_id")
        check_text(check_str(self.reference, "reference"), "reference", required=True,
                   limit=REFERENCE_MAX)
        check_minor(self.amount_minor, "amount_minor")


class InstructionStatus(msgspec.Struct, frozen=True):
    instruction_id: str
    amount_minor: int
    paid_minor: int
    outstanding_minor: int  # amount - paid, never negative
    references: tuple[str, ...] = ()  # of the payments, in the order recorded


def pay(status: InstructionStatus, payment: Payment,
        field: str = "amount_minor") -> InstructionStatus:
    """The status after `payment`; InvalidInput `field` if it would pay more than is
    outstanding (naming the instruction and the amounts)."""
    if payment.instruction_id != status.instruction_id:
        raise InvalidInput("instruction_id", f"{shown(payment.instruction_id)} is not "
                           f"{shown(status.instruction_id)}")
    if payment.amount_minor > status.outstanding_minor:
        raise InvalidInput(field, f"overpays instruction {status.instruction_id}: "
                           f"{payment.amount_minor} paid with {status.outstanding_minor} "
                           f"outstanding of {status.amount_minor}")
    return InstructionStatus(status.instruction_id, status.amount_minor,
                             status.paid_minor + payment.amount_minor,
                             status.outstanding_minor - payment.amount_minor,
                             (*status.references, payment.reference))


def outstanding(instructions: Iterable[Instruction],
                payments: Iterable[Payment]) -> tuple[InstructionStatus, ...]:
    """Per instruction (in the order given), what was paid and what is outstanding after
    `payments` (in the order recorded). InvalidInput names the payment: an unknown
    instruction id, or a payment beyond what is outstanding (an overpayment)."""
    statuses: dict[str, InstructionStatus] = {}
    for index, instruction in enumerate(instructions):
        if not isinstance(instruction, Instruction):
            raise InvalidInput(f"instructions[{index}]",
                               f"must be an Instruction, not {shown(instruction)}")
        if instruction.instruction_id in statuses:
            raise InvalidInput(f"instructions[{index}].instruction_id",
                               f"{instruction.instruction_id} appears twice")
        statuses[instruction.instruction_id] = InstructionStatus(
            instruction.instruction_id, instruction.amount_minor, 0, instruction.amount_minor)
    for index, payment in enumerate(payments):
        if not isinstance(payment, Payment):
            raise InvalidInput(f"payments[{index}]", f"must be a Payment, not {shown(payment)}")
        status = statuses.get(payment.instruction_id)
        if status is None:
            raise InvalidInput(f"payments[{index}].instruction_id",
                               f"no instruction {shown(payment.instruction_id)} in the period")
        statuses[payment.instruction_id] = pay(status, payment,
                                               f"payments[{index}].amount_minor")
    return tuple(statuses.values())
