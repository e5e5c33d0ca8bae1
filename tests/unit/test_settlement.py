"""Settlement of one four-partner period, worked out by hand.

Partners A, B, C, D; amounts in euro cents. What happened in period 2026-03:

    #  payer payee category                 EUR     why
    1  A     B     SV_SPENT_ACROSS        100.00   A's cards spent at B's stores
    2  A     B     POINTS_REDEEMED_ACROSS  25.00   A's points redeemed at B (same pair)
    3  B     A     SV_SPENT_ACROSS         40.00   B's cards spent at A (the pair both ways)
    4  B     C     POINTS_ISSUED_ACROSS    60.00   B's sales earned C's points
    5  C     D     COUPON_FUNDING          15.00   C's coupons accepted at D
    6  D     A     EXCHANGE                30.00   points exchanged from A's program to D's
    7  D     B     FEE                      5.00
    8  C     A     COMMISSION               7.00
    9  A     C     SV_SPENT_ACROSS     USD 20.00   (another currency: never netted with EUR)

Gross EUR 282.00 moves in 8 obligations; the nets (A -48.00, B +30.00, C +38.00, D -20.00)
settle in 3 transfers worth 68.00.
"""

from __future__ import annotations

import msgspec
import pytest

from domain.common import AMOUNT_MAX_MINOR, InvalidInput
from domain.settlement.instructions import (
    Instruction,
    InstructionStatus,
    Instrument,
    Payment,
    instructions,
    net_transfers,
    outstanding,
    pay,
    voucher_part,
)
from domain.settlement.model import Category, Obligation
from domain.settlement.positions import NetPositions
from domain.settlement.statements import (
    BilateralNet,
    Statement,
    StatementLine,
    StatementSet,
    statements,
)

K = Category
PERIOD = "2026-03"

OBLIGATIONS = [
    Obligation("EUR", "A", "B", K.SV_SPENT_ACROSS, 10_000, "mv-1"),
    Obligation("EUR", "A", "B", K.POINTS_REDEEMED_ACROSS, 2_500, "mv-2"),
    Obligation("EUR", "B", "A", K.SV_SPENT_ACROSS, 4_000, "mv-3"),
    Obligation("EUR", "B", "C", K.POINTS_ISSUED_ACROSS, 6_000, "mv-4"),
    Obligation("EUR", "C", "D", K.COUPON_FUNDING, 1_500, "mv-5"),
    Obligation("EUR", "D", "A", K.EXCHANGE, 3_000, "mv-6"),
    Obligation("EUR", "D", "B", K.FEE, 500, "agreement fee"),
    Obligation("EUR", "C", "A", K.COMMISSION, 700, "commission"),
    Obligation("USD", "A", "C", K.SV_SPENT_ACROSS, 2_000, "mv-9"),
]


def line(counterparty: str, category: Category, receivable: int, payable: int) -> StatementLine:
    return StatementLine(counterparty, category, receivable, payable)


def net(counterparty: str, receivable: int, payable: int) -> BilateralNet:
    return BilateralNet(counterparty, receivable, payable, receivable - payable)


# (currency, entity, lines, bilateral nets, gross receivable, gross payable, multilateral net)
EXPECTED = [
    ("EUR", "A",
     [line("B", K.SV_SPENT_ACROSS, 4_000, 10_000), line("B", K.POINTS_REDEEMED_ACROSS, 0, 2_500),
      line("C", K.COMMISSION, 700, 0), line("D", K.EXCHANGE, 3_000, 0)],
     [net("B", 4_000, 12_500), net("C", 700, 0), net("D", 3_000, 0)],
     7_700, 12_500, -4_800),
    ("EUR", "B",
     [line("A", K.SV_SPENT_ACROSS, 10_000, 4_000), line("A", K.POINTS_REDEEMED_ACROSS, 2_500, 0),
      line("C", K.POINTS_ISSUED_ACROSS, 0, 6_000), line("D", K.FEE, 500, 0)],
     [net("A", 12_500, 4_000), net("C", 0, 6_000), net("D", 500, 0)],
     13_000, 10_000, 3_000),
    ("EUR", "C",
     [line("A", K.COMMISSION, 0, 700), line("B", K.POINTS_ISSUED_ACROSS, 6_000, 0),
      line("D", K.COUPON_FUNDING, 0, 1_500)],
     [net("A", 0, 700), net("B", 6_000, 0), net("D", 0, 1_500)],
     6_000, 2_200, 3_800),
    ("EUR", "D",
     [line("A", K.EXCHANGE, 0, 3_000), line("B", K.FEE, 0, 500),
      line("C", K.COUPON_FUNDING, 1_500, 0)],
     [net("A", 0, 3_000), net("B", 0, 500), net("C", 1_500, 0)],
     1_500, 3_500, -2_000),
    ("USD", "A", [line("C", K.SV_SPENT_ACROSS, 0, 2_000)], [net("C", 0, 2_000)],
     0, 2_000, -2_000),
    ("USD", "C", [line("A", K.SV_SPENT_ACROSS, 2_000, 0)], [net("A", 2_000, 0)],
     2_000, 0, 2_000),
]

# The golden digest of this period's statements: a change here means statements already
# handed to partners would no longer be recomputed byte for byte (a new DIGEST_DOMAIN version).
DIGEST = "05b9899a0e34a1546ce31db2ec397251ac5981c32908c86084efafefa6552524"


def test_the_four_partner_statements_line_by_line() -> None:
    result = statements(OBLIGATIONS, PERIOD)
    assert result == StatementSet(PERIOD, tuple(
        Statement(PERIOD, currency, entity, tuple(lines), tuple(nets), receivable, payable, net)
        for currency, entity, lines, nets, receivable, payable, net in EXPECTED))


def test_the_multilateral_nets_sum_to_zero_per_currency() -> None:
    result = statements(OBLIGATIONS, PERIOD)
    assert {c: sum(s.multilateral_net_minor for s in result.of_currency(c))
            for c in result.currencies()} == {"EUR": 0, "USD": 0}


@pytest.mark.parametrize(("a", "b", "net_a_b"), [
    ("A", "B", -8_500), ("A", "C", 700), ("A", "D", 3_000),
    ("B", "C", -6_000), ("B", "D", 500), ("C", "D", -1_500),
])
def test_bilateral_nets_are_antisymmetric(a: str, b: str, net_a_b: int) -> None:
    result = statements(OBLIGATIONS, PERIOD)

    def bilateral(x: str, y: str) -> int:
        statement = result.statement("EUR", x)
        assert statement is not None
        return next(n.net_minor for n in statement.bilateral if n.counterparty_id == y)

    assert bilateral(a, b) == net_a_b
    assert bilateral(b, a) == -net_a_b


def test_the_digest_is_pinned_and_independent_of_the_obligations_order() -> None:
    assert statements(OBLIGATIONS, PERIOD).digest() == DIGEST
    assert statements(reversed(OBLIGATIONS), PERIOD).digest() == DIGEST
    # summed beforehand (as a SQL GROUP BY would): the same statements
    split = [Obligation("EUR", "A", "B", K.SV_SPENT_ACROSS, 6_000),
             Obligation("EUR", "A", "B", K.SV_SPENT_ACROSS, 4_000)]
    assert statements(split + OBLIGATIONS[1:], PERIOD).digest() == DIGEST
    assert statements(OBLIGATIONS, "2026-04").digest() != DIGEST


def test_the_canonical_encoding_round_trips() -> None:
    result = statements(OBLIGATIONS, PERIOD)
    again = msgspec.json.decode(result.encode(), type=StatementSet)
    assert again == result
    assert again.digest() == DIGEST


def test_no_obligations_no_statements_no_instructions() -> None:
    empty = statements([], PERIOD)
    assert empty == StatementSet(PERIOD, ())
    assert instructions(empty) == ()


def instruction(number: int, payer: str, payee: str, instrument: Instrument, amount: int,
                currency: str = "EUR") -> Instruction:
    return Instruction(f"{currency}-{number:03d}-{instrument.name}", PERIOD, currency, number,
                       payer, payee, instrument, amount)


CASH, VOUCHER = Instrument.CASH, Instrument.VOUCHER


def test_the_instructions_largest_debtor_to_largest_creditor() -> None:
    # EUR: debtors A 48.00, D 20.00; creditors C 38.00, B 30.00.
    #   1. A (48) pays C (38) 38.00 -> A has 10.00 left, C done
    #   2. D (20) pays B (30) 20.00 -> D done, B is owed 10.00
    #   3. A (10) pays B (10) 10.00 -> everyone at zero: 3 transfers for 4 entities
    assert instructions(statements(OBLIGATIONS, PERIOD)) == (
        instruction(1, "A", "C", CASH, 3_800),
        instruction(2, "D", "B", CASH, 2_000),
        instruction(3, "A", "B", CASH, 1_000),
        instruction(1, "A", "C", CASH, 2_000, "USD"),
    )


def test_a_voucher_share_splits_each_of_the_payers_instructions_rounding_down() -> None:
    # A may settle 33.33 % in its own vouchers: 3,800 x 0.3333 = 1,266.54 -> 1,266 voucher,
    # 2,534 cash; 1,000 -> 333 + 667; USD 2,000 -> 666 + 1,334. D has no share: all cash.
    assert instructions(statements(OBLIGATIONS, PERIOD), {"A": 3_333, "B": 5_000}) == (
        instruction(1, "A", "C", CASH, 2_534),
        instruction(1, "A", "C", VOUCHER, 1_266),
        instruction(2, "D", "B", CASH, 2_000),
        instruction(3, "A", "B", CASH, 667),
        instruction(3, "A", "B", VOUCHER, 333),
        instruction(1, "A", "C", CASH, 1_334, "USD"),
        instruction(1, "A", "C", VOUCHER, 666, "USD"),
    )


@pytest.mark.parametrize(("amount", "bp", "voucher"), [
    (3_800, 3_333, 1_266), (1, 9_999, 0), (1, 10_000, 1), (7, 5_000, 3), (0, 5_000, 0),
    (10_000, 0, 0), (10_000, 10_000, 10_000),
])
def test_voucher_part_rounds_down_to_the_minor_unit(amount: int, bp: int, voucher: int) -> None:
    assert voucher_part(amount, bp) == voucher


def test_a_whole_voucher_share_leaves_no_cash_instruction() -> None:
    result = instructions(statements(OBLIGATIONS, PERIOD), {"D": 10_000})
    assert instruction(2, "D", "B", VOUCHER, 2_000) in result
    assert not any(i.payer_id == "D" and i.instrument == CASH for i in result)


@pytest.mark.parametrize(("nets", "transfers"), [
    ({}, []),
    ({"A": 0, "B": 0}, []),
    ({"A": -5, "B": 5}, [("A", "B", 5)]),
    # ties go to the smaller id
    ({"A": -5, "B": -5, "C": 5, "D": 5}, [("A", "C", 5), ("B", "D", 5)]),
    ({"A": -10, "B": 3, "C": 7}, [("A", "C", 7), ("A", "B", 3)]),
    ({"A": -3, "B": -7, "C": 10}, [("B", "C", 7), ("A", "C", 3)]),
])
def test_net_transfers(nets: dict[str, int], transfers: list[tuple[str, str, int]]) -> None:
    assert net_transfers(nets) == transfers


def test_payments_leave_what_is_outstanding() -> None:
    plan = instructions(statements(OBLIGATIONS, PERIOD), {"A": 3_333})
    statuses = outstanding(plan, [
        Payment("EUR-002-CASH", "SEPA-0001", 1_500),
        Payment("EUR-001-VOUCHER", "vouchers-issued-17", 1_266),
        Payment("EUR-002-CASH", "SEPA-0002", 500),
    ])
    assert statuses == (
        InstructionStatus("EUR-001-CASH", 2_534, 0, 2_534),
        InstructionStatus("EUR-001-VOUCHER", 1_266, 1_266, 0, ("vouchers-issued-17",)),
        InstructionStatus("EUR-002-CASH", 2_000, 2_000, 0, ("SEPA-0001", "SEPA-0002")),
        InstructionStatus("EUR-003-CASH", 667, 0, 667),
        InstructionStatus("EUR-003-VOUCHER", 333, 0, 333),
        InstructionStatus("USD-001-CASH", 1_334, 0, 1_334),
        InstructionStatus("USD-001-VOUCHER", 666, 0, 666),
    )


def test_an_overpayment_is_refused_naming_the_instruction_and_the_amounts() -> None:
    plan = instructions(statements(OBLIGATIONS, PERIOD))
    with pytest.raises(InvalidInput) as caught:
        outstanding(plan, [Payment("EUR-002-CASH", "SEPA-1", 1_500),
                           Payment("EUR-002-CASH", "SEPA-2", 501)])
    assert caught.value.field == "payments[1].amount_minor"
    assert caught.value.problem == ("overpays instruction EUR-002-CASH: 501 paid with 500 "
                                    "outstanding of 2000")
    status = InstructionStatus("EUR-001-CASH", 3_800, 0, 3_800)
    with pytest.raises(InvalidInput, match="overpays instruction EUR-001-CASH: 3801"):
        pay(status, Payment("EUR-001-CASH", "x", 3_801))
    assert pay(status, Payment("EUR-001-CASH", "x", 3_800)).outstanding_minor == 0


def test_a_payment_of_an_unknown_instruction_is_refused() -> None:
    plan = instructions(statements(OBLIGATIONS, PERIOD))
    with pytest.raises(InvalidInput) as caught:
        outstanding(plan, [Payment("EUR-009-CASH", "SEPA-1", 1)])
    assert caught.value.field == "payments[0].instruction_id"


def test_net_positions_equal_the_statements_and_check_the_cap() -> None:
    positions = NetPositions()
    for obligation in OBLIGATIONS:
        positions.apply(obligation)
    assert positions.items() == [
        (("A", "EUR"), 4_800), (("A", "USD"), 2_000), (("B", "EUR"), -3_000),
        (("C", "EUR"), -3_800), (("C", "USD"), -2_000), (("D", "EUR"), 2_000),
    ]
    result = statements(OBLIGATIONS, PERIOD)
    for statement in result.statements:
        assert positions.net_payable_minor(statement.entity_id, statement.currency) == \
            -statement.multilateral_net_minor
    # A's net payable is 48.00: under a cap of 50.00 it may add 2.00, not 2.01
    assert not positions.would_exceed("A", "EUR", 200, 5_000)
    assert positions.would_exceed("A", "EUR", 201, 5_000)
    # B is owed 30.00: it may spend 30.00 more at others' stores under a cap of zero
    assert not positions.would_exceed("B", "EUR", 3_000, 0)
    assert positions.would_exceed("B", "EUR", 3_001, 0)
    assert not positions.would_exceed("Z", "EUR", 0, 0)  # unknown: at zero
    assert NetPositions(OBLIGATIONS).items() == positions.items()


GOOD = {"currency": "EUR", "payer_id": "A", "payee_id": "B",
        "category": K.FEE, "amount_minor": 1, "reference": ""}


@pytest.mark.parametrize(("change", "field"), [
    ({"amount_minor": 0}, "amount_minor"),
    ({"amount_minor": -1}, "amount_minor"),
    ({"amount_minor": AMOUNT_MAX_MINOR + 1}, "amount_minor"),
    ({"amount_minor": 1.5}, "amount_minor"),
    ({"amount_minor": True}, "amount_minor"),
    ({"amount_minor": "1"}, "amount_minor"),
    ({"payee_id": "A"}, "payee_id"),
    ({"currency": ""}, "currency"),
    ({"currency": "XXX"}, "currency"),
    ({"currency": 978}, "currency"),
    ({"payer_id": ""}, "payer_id"),
    ({"payee_id": ""}, "payee_id"),
    ({"payer_id": "a b"}, "payer_id"),
    ({"payer_id": "x" * 33}, "payer_id"),
    ({"payer_id": None}, "payer_id"),
    ({"category": 0}, "category"),
    ({"category": 8}, "category"),
    ({"category": "FEE"}, "category"),
    ({"category": True}, "category"),
    ({"reference": "x" * 201}, "reference"),
    ({"reference": "line\nbreak"}, "reference"),
    ({"reference": None}, "reference"),
])
def test_a_bad_obligation_names_its_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Obligation(**{**GOOD, **change})  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_bad_obligation_cannot_be_made_by_replace_or_decode_either() -> None:
    good = Obligation(**GOOD)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="amount_minor"):
        msgspec.structs.replace(good, amount_minor=0)
    with pytest.raises(msgspec.ValidationError, match="payee_id"):
        msgspec.json.decode(msgspec.json.encode(GOOD | {"payee_id": "A"}), type=Obligation)


@pytest.mark.parametrize(("call", "field"), [
    (lambda: statements(OBLIGATIONS, ""), "period_id"),
    (lambda: statements(OBLIGATIONS, "2026/03"), "period_id"),
    (lambda: statements([*OBLIGATIONS, ("EUR", "A", "B", 7, 1)], PERIOD),  # type: ignore[list-item]
     "obligations[9]"),
    (lambda: instructions("not statements"), "statements"),  # type: ignore[arg-type]
    (lambda: instructions(statements(OBLIGATIONS, PERIOD), {"A": -1}),
     "voucher_share_bp_by_payer['A']"),
    (lambda: instructions(statements(OBLIGATIONS, PERIOD), {"A": 10_001}),
     "voucher_share_bp_by_payer['A']"),
    (lambda: instructions(statements(OBLIGATIONS, PERIOD), {"": 1}),
     "voucher_share_bp_by_payer['']"),
    (lambda: instructions(statements(OBLIGATIONS, PERIOD), {"A": 0.5}),  # type: ignore[dict-item]
     "voucher_share_bp_by_payer['A']"),
    (lambda: net_transfers({"A": -1, "B": 2}), "nets"),
    (lambda: Payment("EUR-001-CASH", "", 1), "reference"),
    (lambda: Payment("EUR-001-CASH", "r", 0), "amount_minor"),
    (lambda: Payment("", "r", 1), "instruction_id"),
    (lambda: NetPositions().would_exceed("A", "EUR", -1, 0), "extra_payable_minor"),
    (lambda: NetPositions().would_exceed("A", "EUR", 0, -1), "cap_minor"),
    (lambda: NetPositions().apply(("EUR", "A", "B")), "obligation"),  # type: ignore[arg-type]
])
def test_every_bad_input_names_its_field(call: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        call()  # type: ignore[operator]
    assert caught.value.field == field


def test_statements_whose_nets_do_not_sum_to_zero_give_no_instructions() -> None:
    good = statements(OBLIGATIONS, PERIOD)
    first = good.statements[0]
    tampered = msgspec.structs.replace(
        good, statements=(msgspec.structs.replace(first, multilateral_net_minor=0),
                          *good.statements[1:]))
    with pytest.raises(InvalidInput, match="the multilateral nets of EUR sum to 4800, not 0"):
        instructions(tampered)
    doubled = msgspec.structs.replace(good, statements=(first, *good.statements))
    with pytest.raises(InvalidInput) as caught:
        instructions(doubled)
    assert caught.value.field == "statements[1]"
