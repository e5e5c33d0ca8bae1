"""A period's statements: per currency and entity, what it is owed and owes, line by line,
netted per counterparty (bilateral) and against the whole alliance (multilateral).

Signs: from the entity's side, a receivable is what a counterparty owes it, a payable what it
owes a counterparty; a net is receivable - payable, so a positive net is owed to the entity.
Per currency, every obligation is one entity's payable and another's receivable, hence:
- net(a, b) = -net(b, a) (bilateral nets are antisymmetric),
- an entity's multilateral net is the sum of its bilateral nets,
- the multilateral nets of a currency sum to exactly zero.
Currencies are never netted against each other (there is no rate in a statement).

A statement depends only on the sums per (currency, payer, payee, category): the order the
obligations come in, and whether they come one by one or summed beforehand, change nothing.
Everything is sorted by id (and category number), so the same period recomputed any time
later gives the same bytes; `StatementSet.digest()` shows it in 64 hex characters.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

import msgspec

from domain.common import InvalidInput, check_id, shown
from domain.settlement.model import Category, Obligation, check_str

# Names the encoding the digest is taken over; a change of the statement's fields or of
# their order is a new version (old digests then stay checkable with the old code).
DIGEST_DOMAIN = b"loyalty-ledger/settlement/statement-set/v1\n"
DIGEST_BYTES = 32


class StatementLine(msgspec.Struct, frozen=True):
    """The entity's gross flows with one counterparty for one category."""

    counterparty_id: str
    category: Category
    receivable_minor: int  # the counterparty owes the entity
    payable_minor: int  # the entity owes the counterparty


class BilateralNet(msgspec.Struct, frozen=True):
    counterparty_id: str
    receivable_minor: int
    payable_minor: int
    net_minor: int  # receivable - payable; > 0: the counterparty owes the entity on balance


class Statement(msgspec.Struct, frozen=True):
    period_id: str
    currency: str
    entity_id: str
    lines: tuple[StatementLine, ...]  # by (counterparty_id, category)
    bilateral: tuple[BilateralNet, ...]  # by counterparty_id, one per counterparty with a line
    gross_receivable_minor: int
    gross_payable_minor: int
    multilateral_net_minor: int  # gross receivable - gross payable = sum of the bilateral nets


class StatementSet(msgspec.Struct, frozen=True):
    """Every statement of a period: one per (currency, entity) that has an obligation in that
    currency, by (currency, entity_id)."""

    period_id: str
    statements: tuple[Statement, ...]

    def encode(self) -> bytes:
        """The canonical bytes: msgspec JSON (a Struct's fields in declared order, categories
        as their numbers, integers exact whatever their size, no whitespace)."""
        return msgspec.json.encode(self)

    def digest(self) -> str:
        """blake2b-256 of DIGEST_DOMAIN + encode(), hex."""
        return hashlib.blake2b(DIGEST_DOMAIN + self.encode(),
                               digest_size=DIGEST_BYTES).hexdigest()

    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({statement.currency for statement in self.statements}))

    def of_currency(self, currency: str) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.currency == currency)

    def statement(self, currency: str, entity_id: str) -> Statement | None:
        for candidate in self.statements:
            if candidate.currency == currency and candidate.entity_id == entity_id:
                return candidate
        return None


def statements(obligations: Iterable[Obligation], period_id: str) -> StatementSet:
    """The statements of period `period_id` from its obligations (any order, any
    granularity). O(n + k log k) for n obligations summing to k distinct lines."""
    check_id(check_str(period_id, "period_id"), "period_id")
    # (currency, payer, payee, category) -> amount; Obligations validated themselves
    sums: dict[tuple[str, str, str, Category], int] = defaultdict(int)
    for index, obligation in enumerate(obligations):
        if not isinstance(obligation, Obligation):
            raise InvalidInput(f"obligations[{index}]",
                               f"must be an Obligation, not {shown(obligation)}")
        sums[obligation.currency, obligation.payer_id, obligation.payee_id,
             Category(obligation.category)] += obligation.amount_minor

    # (currency, entity) -> (counterparty, category) -> [receivable, payable]
    books: dict[tuple[str, str], dict[tuple[str, Category], list[int]]] = defaultdict(dict)
    for (currency, payer, payee, category), amount in sums.items():
        books[currency, payer].setdefault((payee, category), [0, 0])[1] += amount
        books[currency, payee].setdefault((payer, category), [0, 0])[0] += amount

    result: list[Statement] = []
    net_by_currency: dict[str, int] = defaultdict(int)
    for currency, entity in sorted(books):
        lines = tuple(StatementLine(counterparty, category, receivable, payable)
                      for (counterparty, category), (receivable, payable)
                      in sorted(books[currency, entity].items()))
        per_counterparty: dict[str, list[int]] = {}
        for line in lines:
            pair = per_counterparty.setdefault(line.counterparty_id, [0, 0])
            pair[0] += line.receivable_minor
            pair[1] += line.payable_minor
        bilateral = tuple(BilateralNet(counterparty, receivable, payable, receivable - payable)
                          for counterparty, (receivable, payable)
                          in per_counterparty.items())  # lines are sorted: so is this
        receivable = sum(net.receivable_minor for net in bilateral)
        payable = sum(net.payable_minor for net in bilateral)
        result.append(Statement(period_id, currency, entity, lines, bilateral,
                                receivable, payable, receivable - payable))
        net_by_currency[currency] += receivable - payable
    # Each sum above was added once to a payer's payable and once to a payee's receivable.
    assert all(total == 0 for total in net_by_currency.values()), net_by_currency
    return StatementSet(period_id, tuple(result))
