"""Settlement's invariants on random periods: the nets checked against a recomputation from
the obligations alone, the instructions against the nets, the running positions against the
statements, and the digest against reordering and regrouping of the same obligations."""

from __future__ import annotations

from collections import Counter, defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.common import AMOUNT_MAX_MINOR, InvalidInput
from domain.settlement.instructions import (
    BP_DENOMINATOR,
    Instrument,
    Payment,
    instructions,
    net_transfers,
    outstanding,
)
from domain.settlement.model import Category, Obligation
from domain.settlement.positions import NetPositions
from domain.settlement.statements import StatementSet, statements

ENTITIES = ["A", "B", "C", "D", "E", "F", "store-17"]
CURRENCIES = ["EUR", "USD", "JPY"]
PERIOD = "P1"

amounts = st.one_of(st.integers(1, 10_000), st.integers(1, AMOUNT_MAX_MINOR))


@st.composite
def obligations(draw: st.DrawFn) -> Obligation:
    payer, payee = draw(st.lists(st.sampled_from(ENTITIES), min_size=2, max_size=2,
                                 unique=True))
    return Obligation(draw(st.sampled_from(CURRENCIES)), payer, payee,
                      draw(st.sampled_from(list(Category))), draw(amounts),
                      draw(st.sampled_from(["", "mv-1", "mv-2"])))


periods = st.lists(obligations(), max_size=40)
shares = st.dictionaries(st.sampled_from(ENTITIES), st.integers(0, BP_DENOMINATOR))


def oracle_nets(period: list[Obligation]) -> dict[tuple[str, str], int]:
    """(currency, entity) -> receivable - payable, straight from the obligations."""
    nets: dict[tuple[str, str], int] = defaultdict(int)
    for o in period:
        nets[o.currency, o.payee_id] += o.amount_minor
        nets[o.currency, o.payer_id] -= o.amount_minor
    return dict(nets)


def nets_of(result: StatementSet) -> dict[tuple[str, str], int]:
    return {(s.currency, s.entity_id): s.multilateral_net_minor for s in result.statements}


@settings(max_examples=300, deadline=None)
@given(periods)
def test_nets_sum_to_zero_are_antisymmetric_and_equal_a_recomputation(
        period: list[Obligation]) -> None:
    result = statements(period, PERIOD)
    assert nets_of(result) == oracle_nets(period)
    for currency in CURRENCIES:
        assert sum(s.multilateral_net_minor for s in result.of_currency(currency)) == 0
    bilateral = {(s.currency, s.entity_id, n.counterparty_id): n.net_minor
                 for s in result.statements for n in s.bilateral}
    for (currency, a, b), net in bilateral.items():
        assert bilateral[currency, b, a] == -net
    for s in result.statements:
        assert s.multilateral_net_minor == sum(n.net_minor for n in s.bilateral)
        assert s.multilateral_net_minor == s.gross_receivable_minor - s.gross_payable_minor
        assert s.gross_receivable_minor == sum(line.receivable_minor for line in s.lines)
        assert s.gross_payable_minor == sum(line.payable_minor for line in s.lines)
        assert [(x.counterparty_id, x.category) for x in s.lines] == \
            sorted({(x.counterparty_id, x.category) for x in s.lines})
    assert [(s.currency, s.entity_id) for s in result.statements] == \
        sorted({(o.currency, e) for o in period for e in (o.payer_id, o.payee_id)})


@settings(max_examples=200, deadline=None)
@given(periods, st.data())
def test_the_digest_ignores_order_and_grouping(period: list[Obligation],
                                               data: st.DataObject) -> None:
    digest = statements(period, PERIOD).digest()
    shuffled = data.draw(st.permutations(period))
    assert statements(shuffled, PERIOD).digest() == digest
    # one obligation cut in two, or obligations of one key summed, change nothing either
    regrouped: list[Obligation] = []
    for o in shuffled:
        if o.amount_minor > 1 and data.draw(st.booleans()):
            cut = data.draw(st.integers(1, o.amount_minor - 1))
            regrouped += [Obligation(o.currency, o.payer_id, o.payee_id, o.category, cut),
                          Obligation(o.currency, o.payer_id, o.payee_id, o.category,
                                     o.amount_minor - cut, "other")]
        else:
            regrouped.append(o)
    assert statements(regrouped, PERIOD).digest() == digest
    sums: Counter[tuple[str, str, str, Category]] = Counter()
    for o in period:
        sums[o.currency, o.payer_id, o.payee_id, o.category] += o.amount_minor
    # (an Obligation holds at most AMOUNT_MAX_MINOR: a larger sum is given in parts)
    summed = [Obligation(c, p, q, k, part) for (c, p, q, k), amount in sums.items()
              for part in [*[AMOUNT_MAX_MINOR] * ((amount - 1) // AMOUNT_MAX_MINOR),
                           (amount - 1) % AMOUNT_MAX_MINOR + 1]]
    assert statements(summed, PERIOD).digest() == digest


@settings(max_examples=300, deadline=None)
@given(periods, shares)
def test_instructions_settle_every_net_exactly(period: list[Obligation],
                                               share_bp: dict[str, int]) -> None:
    result = statements(period, PERIOD)
    plan = instructions(result, share_bp)
    settled: dict[tuple[str, str], int] = defaultdict(int)
    payers: dict[str, set[str]] = defaultdict(set)
    payees: dict[str, set[str]] = defaultdict(set)
    transfers: dict[tuple[str, int], list[tuple[str, str, Instrument, int]]] = defaultdict(list)
    for i in plan:
        assert i.amount_minor > 0
        assert i.period_id == PERIOD
        settled[i.currency, i.payee_id] -= i.amount_minor  # received: the net owed shrinks
        settled[i.currency, i.payer_id] += i.amount_minor
        payers[i.currency].add(i.payer_id)
        payees[i.currency].add(i.payee_id)
        transfers[i.currency, i.transfer_no].append(
            (i.payer_id, i.payee_id, i.instrument, i.amount_minor))
    assert len({i.instruction_id for i in plan}) == len(plan)
    nets = nets_of(result)
    # every net paid or received exactly, to the minor unit
    for key, net in nets.items():
        assert net + settled.get(key, 0) == 0
    for currency in CURRENCIES:
        assert not payers[currency] & payees[currency]  # nobody both pays and receives
        nonzero = sum(1 for (c, _), net in nets.items() if c == currency and net)
        count = sum(1 for c, _ in transfers if c == currency)
        assert count <= max(nonzero - 1, 0)
    # one transfer: one payer, one payee, a CASH and/or a VOUCHER part, the voucher part
    # floor(total x share); recomputing without shares gives the same transfers, whole
    whole = {(i.currency, i.transfer_no): (i.payer_id, i.payee_id, i.amount_minor)
             for i in instructions(result)}
    assert set(whole) == set(transfers)
    for transfer, parts in transfers.items():
        payer, payee, total = whole[transfer]
        assert {(p, q) for p, q, _, _ in parts} == {(payer, payee)}
        by_instrument = {instrument: amount for _, _, instrument, amount in parts}
        assert len(by_instrument) == len(parts)
        assert sum(by_instrument.values()) == total
        voucher = total * share_bp.get(payer, 0) // BP_DENOMINATOR
        assert by_instrument.get(Instrument.VOUCHER, 0) == voucher
        assert by_instrument.get(Instrument.CASH, 0) == total - voucher


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(-AMOUNT_MAX_MINOR, AMOUNT_MAX_MINOR), max_size=12))
def test_net_transfers_on_any_zero_sum_nets(values: list[int]) -> None:
    nets = {f"E{index}": value for index, value in enumerate(values)}
    nets["LAST"] = -sum(values)
    transfers = net_transfers(nets)
    left = dict(nets)
    for payer, payee, amount in transfers:
        assert amount > 0 and nets[payer] < 0 < nets[payee]
        left[payer] += amount
        left[payee] -= amount
    assert set(left.values()) <= {0}
    assert len(transfers) <= max(sum(1 for v in nets.values() if v) - 1, 0)
    assert len({(p, q) for p, q, _ in transfers}) == len(transfers)


@settings(max_examples=300, deadline=None)
@given(periods)
def test_net_positions_equal_the_statements(period: list[Obligation]) -> None:
    positions = NetPositions()
    for obligation in period:
        positions.apply(obligation)
    assert {key: -value for (entity, currency), value in positions.items()
            for key in [(currency, entity)]} == nets_of(statements(period, PERIOD))


@settings(max_examples=200, deadline=None)
@given(periods, shares, st.data())
def test_paid_in_parts_nothing_is_outstanding_and_one_more_unit_is_refused(
        period: list[Obligation], share_bp: dict[str, int], data: st.DataObject) -> None:
    plan = instructions(statements(period, PERIOD), share_bp)
    payments: list[Payment] = []
    for i in plan:
        left = i.amount_minor
        for _ in range(2):  # in one to three parts
            if left > 1 and data.draw(st.booleans()):
                part = data.draw(st.integers(1, min(left - 1, AMOUNT_MAX_MINOR)))
                payments.append(Payment(i.instruction_id, f"ref-{len(payments)}", part))
                left -= part
        while left > AMOUNT_MAX_MINOR:  # a payment is at most 10^15; a net may be more
            payments.append(Payment(i.instruction_id, f"ref-{len(payments)}", AMOUNT_MAX_MINOR))
            left -= AMOUNT_MAX_MINOR
        payments.append(Payment(i.instruction_id, f"ref-{len(payments)}", left))
    order = data.draw(st.permutations(payments))
    statuses = outstanding(plan, order)
    assert [s.instruction_id for s in statuses] == [i.instruction_id for i in plan]
    assert all(s.outstanding_minor == 0 and s.paid_minor == s.amount_minor for s in statuses)
    if plan:
        target = data.draw(st.sampled_from(plan))
        try:
            outstanding(plan, [*order, Payment(target.instruction_id, "extra", 1)])
        except InvalidInput as refused:
            assert refused.field == f"payments[{len(order)}].amount_minor"
            assert target.instruction_id in refused.problem
        else:
            raise AssertionError("an overpayment was accepted")
