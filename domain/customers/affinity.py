"""Store affinity over a period: where customers spend.

- Per store and per partner: customers with a row there, net spend, share of the scope's net
  spend (basis points).
- Per customer: share of their net spend per store and per partner (those with positive net
  spend; a list that stays inside the caller's scope).
- Customers at two or more partners: how many, and their net spend. In a partner's scope,
  the partner's customers who also bought at another partner in the period are counted
  (`elsewhere`), and nothing of what they did there is shown.
- Flows (alliance scope): for each ordered pair of partners (A, B), the customers whose first
  visit in the period was at A and who later visited B (in a later hour; the same hour does
  not count), and their net spend at B in the period. A first visit at two partners in the
  same hour counts at the smaller partner id. "Later" compares `when(row)`, an hour number
  the caller gives: the UTC hour of the row's local day and hour in its store's timezone
  (stores in different timezones), by default the local day x 24 + hour.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from typing import Any, NamedTuple

import msgspec

from domain.customers.activity import Activity, Period, share_bps


class Place(msgspec.Struct, frozen=True):
    kind: str  # "store" or "partner"
    id: str
    partner_id: str
    customers: int
    spend_minor: int
    share_bps: int


class CustomerShare(msgspec.Struct, frozen=True):
    customer: str
    spend_minor: int
    partners: int
    stores: list[tuple[str, int]]  # (store, share bps), largest first
    partner_shares: list[tuple[str, int]]


class Flow(msgspec.Struct, frozen=True):
    from_partner: str
    to_partner: str
    customers: int
    spend_minor: int  # at to_partner


class Affinity(msgspec.Struct, frozen=True):
    first_day: str
    last_day: str
    customers: int
    spend_minor: int
    places: list[Place]
    multi_partner_customers: int
    multi_partner_spend_minor: int
    elsewhere_customers: int  # in a partner's scope: its customers also seen at another
    flows: list[Flow]
    customers_top: list[CustomerShare]


def _shares(spend: dict[str, int]) -> list[tuple[str, int]]:
    total = sum(spend.values())
    return sorted(((k, share_bps(v, total)) for k, v in spend.items()),
                  key=lambda item: (-item[1], item[0]))


def local_hour(r: Activity) -> int:
    return r.day * 24 + r.hour


class StoreFigures(NamedTuple):
    """A customer's period at one store: net spend, and the first and last hour with a
    visit (in the hours of `when`; None without a visit)."""

    customer: str
    store_id: str
    partner_id: str
    spend_minor: int
    first_visit: int | None
    last_visit: int | None


def store_figures(rows: Iterable[Activity], period: Period,
                  when: Callable[[Activity], int] = local_hour) -> list[StoreFigures]:
    found: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        if not period.first <= r.day <= period.last:
            continue
        f = found.setdefault((r.customer, r.store_id), [r.partner_id, 0, None, None])
        f[1] += r.spend_minor
        if r.visits:
            hour = when(r)
            f[2] = hour if f[2] is None else min(f[2], hour)
            f[3] = hour if f[3] is None else max(f[3], hour)
    return [StoreFigures(c, s, *f) for (c, s), f in found.items()]


def affinity(rows: Iterable[Activity], period: Period, elsewhere: Collection[str] = (),
             flows: bool = True, top: int = 20,
             when: Callable[[Activity], int] = local_hour) -> Affinity:
    return from_figures(store_figures(rows, period, when), period, elsewhere, flows, top)


def from_figures(figures: Iterable[StoreFigures], period: Period,
                 elsewhere: Collection[str] = (), flows: bool = True,
                 top: int = 20) -> Affinity:
    by_store: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_partner: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    store_partner: dict[str, str] = {}
    first_seen: dict[str, tuple[int, str]] = {}
    last_at: dict[str, dict[str, int]] = defaultdict(dict)  # customer -> partner -> hour
    for f in figures:
        by_store[f.customer][f.store_id] += f.spend_minor
        by_partner[f.customer][f.partner_id] += f.spend_minor
        store_partner[f.store_id] = f.partner_id
        if f.first_visit is not None and f.last_visit is not None:
            at = (f.first_visit, f.partner_id)
            if f.customer not in first_seen or at < first_seen[f.customer]:
                first_seen[f.customer] = at
            latest = last_at[f.customer]
            latest[f.partner_id] = max(latest.get(f.partner_id, f.last_visit), f.last_visit)
    total = sum(sum(s.values()) for s in by_store.values())
    places: list[Place] = []
    for kind, table in (("partner", by_partner), ("store", by_store)):
        spend: dict[str, int] = defaultdict(int)
        customers: dict[str, int] = defaultdict(int)
        for amounts in table.values():
            for place, amount in amounts.items():
                spend[place] += amount
                customers[place] += 1
        places += [Place(kind, p, p if kind == "partner" else store_partner[p], customers[p],
                         spend[p], share_bps(spend[p], total)) for p in sorted(spend)]
    multi = [c for c, partners in by_partner.items() if len(partners) >= 2]
    found_flows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    if flows:
        for customer, start in first_seen.items():
            later = {p for p, hour in last_at[customer].items() if hour > start[0]} - {
                start[1]}
            for partner in sorted(later):
                row = found_flows[(start[1], partner)]
                row[0] += 1
                row[1] += by_partner[customer][partner]
    ranked = sorted(((c, sum(f.values())) for c, f in by_store.items()),
                    key=lambda item: (-item[1], item[0]))
    top_rows = [CustomerShare(c, s, len(by_partner[c]), _shares(dict(by_store[c])),
                              _shares(dict(by_partner[c])))
                for c, s in ranked[:top] if s > 0]
    first, last = period.names()
    return Affinity(first, last, len(by_store), total, places, len(multi),
                    sum(sum(by_partner[c].values()) for c in multi),
                    sum(1 for c in by_store if c in elsewhere),
                    [Flow(a, b, n, s) for (a, b), (n, s) in sorted(found_flows.items())],
                    top_rows)
