"""Running net positions of the open settlement period, for the net debit cap.

When an entity's net payable in the open period would pass its cap, spending its cards'
value or its program's points at other entities' stores is declined. That check runs on the
authorization hot path, so it must not grow with the period: `NetPositions` keeps one integer
per (entity, currency), the entity's net payable (payable - receivable, i.e. minus its
multilateral net), and every call is O(1) (a dict lookup or two and integer arithmetic).
After `apply` of every obligation of the period, `net_payable_minor(e, c)` equals
`-statement(c, e).multilateral_net_minor` of `statements()` over the same obligations.

A period's close starts a new, empty NetPositions (or one rebuilt from the open period's
obligations when a process starts); this object does not know about periods.
Not thread-safe, like the rest of the decider's state: the single decider thread owns it.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.common import InvalidInput, shown
from domain.settlement.model import Obligation, check_minor


class NetPositions:
    """(entity, currency) -> net payable in minor units (> 0: it owes the alliance on
    balance); absent means 0."""

    __slots__ = ("_net_payable",)

    def __init__(self, obligations: Iterable[Obligation] = ()) -> None:
        self._net_payable: dict[tuple[str, str], int] = {}
        for obligation in obligations:
            self.apply(obligation)

    def apply(self, obligation: Obligation) -> None:
        """Add one obligation: its payer owes more, its payee is owed more. O(1)."""
        if not isinstance(obligation, Obligation):
            raise InvalidInput("obligation", f"must be an Obligation, not {shown(obligation)}")
        amount = obligation.amount_minor
        positions = self._net_payable
        payer = (obligation.payer_id, obligation.currency)
        payee = (obligation.payee_id, obligation.currency)
        positions[payer] = positions.get(payer, 0) + amount
        positions[payee] = positions.get(payee, 0) - amount

    def add(self, payer_id: str, payee_id: str, currency: str, amount_minor: int) -> None:
        """A signed flow from the legs (negative: it came back), unchecked: the writer's hot
        path calls this for every cross-entity movement it decides. O(1)."""
        positions = self._net_payable
        payer, payee = (payer_id, currency), (payee_id, currency)
        positions[payer] = positions.get(payer, 0) + amount_minor
        positions[payee] = positions.get(payee, 0) - amount_minor

    def net_payable_minor(self, entity_id: str, currency: str) -> int:
        """O(1)."""
        return self._net_payable.get((entity_id, currency), 0)

    def would_exceed(self, entity_id: str, currency: str, extra_payable_minor: int,
                     cap_minor: int) -> bool:
        """Whether adding `extra_payable_minor` to the entity's net payable would take it
        beyond `cap_minor` (reaching the cap exactly is allowed). O(1)."""
        check_minor(extra_payable_minor, "extra_payable_minor", zero_ok=True)
        check_minor(cap_minor, "cap_minor", zero_ok=True)
        return self._net_payable.get((entity_id, currency), 0) + extra_payable_minor > cap_minor

    def items(self) -> list[tuple[tuple[str, str], int]]:
        """((entity, currency), net payable) sorted, zeros included (for tests and reports;
        O(n log n), not for the hot path)."""
        return sorted(self._net_payable.items())
