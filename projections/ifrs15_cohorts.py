"""The cohort table IFRS 15 for points needs (domain/finance), read from the log: per program
and month of earning (UTC), the points sales earned, their face value, the transaction price of
those sales, and what became of the points in each later month (redeemed, expired), traced lot
by lot, so the cohorts are exact rather than assigned oldest-first.

Rules, for the report's reader:
- a purchase that earns points is a sale of goods and points; its transaction price is what
  the customer paid for it other than with points (total - discounts - points redeemed: paying
  with points is a redemption of an earlier cohort, not new consideration);
- a return takes its clawed points off the cohort they were earned in and its stored-value
  refund off that cohort's sales; points it restores are taken off the redemptions of the
  month they were redeemed in, the latest first;
- points that arrived by exchange came from no sale: they are not a cohort, and their
  redemptions are left out (the exchange moved a liability, IFRS 15's allocation does not
  apply to it).

It is a scan of the whole log up to `as_of` (a report for finance, not a live read model): at
the log rates measured in the README, seconds per million events.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from domain.cards import events as ev
from domain.finance.cohorts import Cohort
from domain.registry.events import ProgramDefined
from ledger.codec import REGISTRY_ID, decode_event
from ledger.store import EventStore
from projections.runner import log_rows

_TOPICS = frozenset(t.__struct_config__.tag for t in (  # type: ignore[attr-defined]
    ev.PurchaseMade, ev.PurchaseReturned, ev.PointsExpired, ProgramDefined))


def month_of(at_us: int) -> str:
    moment = dt.datetime.fromtimestamp(at_us / 1_000_000, tz=dt.UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def months_between(first: str, last: str) -> list[str]:
    year, month = map(int, first.split("-"))
    found = []
    while f"{year:04d}-{month:02d}" <= last:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


@dataclass
class _Building:
    currency: str
    earned: int = 0
    face_micros: int = 0
    sales: int = 0
    redeemed: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # month -> pts
    expired: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def cohorts_from_log(store: EventStore, as_of_us: int,
                     ) -> tuple[list[Cohort], list[str]]:
    """(the cohorts, the months from the first cohort's to `as_of_us`'s), oldest first."""
    currency_of: dict[str, str] = {}
    building: dict[tuple[str, str], _Building] = {}
    lot_cohort: dict[str, tuple[str, str, int]] = {}  # lot id -> (program, month, micros)
    purchase_lot: dict[str, str] = {}  # purchase id -> the lot it earned
    redeemed_at: dict[str, list[tuple[str, str, int]]] = {}  # purchase -> (lot, month, pts)
    for row in log_rows(store, _TOPICS):
        event = decode_event(row.state)
        at_us = event.meta.recorded_at_us
        if at_us > as_of_us:
            continue
        if row.originator_id == REGISTRY_ID:
            if isinstance(event, ProgramDefined):
                currency_of.setdefault(event.program.owner, event.program.currency)
            continue
        month = month_of(at_us)
        if isinstance(event, ev.PurchaseMade):
            _purchased(event, month, currency_of, building, lot_cohort, purchase_lot,
                       redeemed_at)
        elif isinstance(event, ev.PurchaseReturned):
            _returned(event, building, lot_cohort, purchase_lot, redeemed_at)
        elif isinstance(event, ev.PointsExpired) and event.lot_id in lot_cohort:
            program, earned_in, _ = lot_cohort[event.lot_id]
            building[(program, earned_in)].expired[month] += event.amount
    if not building:
        return [], []
    months = months_between(min(m for _, m in building), month_of(as_of_us))
    cohorts = []
    for (program, month), b in sorted(building.items()):
        later = months[months.index(month):]
        cohorts.append(Cohort(
            program, b.currency, month, b.earned, b.face_micros, max(0, b.sales),
            tuple(b.redeemed.get(m, 0) for m in later), tuple(b.expired.get(m, 0) for m in later)))
    return cohorts, months


def _purchased(event: ev.PurchaseMade, month: str, currency_of: dict[str, str],
               building: dict[tuple[str, str], _Building],
               lot_cohort: dict[str, tuple[str, str, int]], purchase_lot: dict[str, str],
               redeemed_at: dict[str, list[tuple[str, str, int]]]) -> None:
    taken = []
    for lot_id, points in event.redeemed:
        if lot_id in lot_cohort:
            program, earned_in, _ = lot_cohort[lot_id]
            building[(program, earned_in)].redeemed[month] += points
            taken.append((lot_id, month, points))
    if taken:
        redeemed_at[event.purchase_id] = taken
    lot = event.lot
    if lot is None or not event.points_owner:
        return
    program = event.points_owner
    key = (program, month)
    if key not in building:
        building[key] = _Building(currency_of.get(program, ""))
    b = building[key]
    b.earned += lot.amount
    b.face_micros += lot.amount * lot.value_micros_per_point
    b.sales += event.total_minor - event.discount_minor - event.points_redeemed_value_minor
    lot_cohort[lot.lot_id] = (program, month, lot.value_micros_per_point)
    purchase_lot[event.purchase_id] = lot.lot_id


def _returned(event: ev.PurchaseReturned, building: dict[tuple[str, str], _Building],
              lot_cohort: dict[str, tuple[str, str, int]], purchase_lot: dict[str, str],
              redeemed_at: dict[str, list[tuple[str, str, int]]]) -> None:
    for lot_id, points in event.points_clawed:
        if lot_id in lot_cohort:
            program, earned_in, micros = lot_cohort[lot_id]
            b = building[(program, earned_in)]
            b.earned -= points
            b.face_micros -= points * micros
    own = purchase_lot.get(event.purchase_id)
    if own is not None and event.sv_refunded_minor:
        program, earned_in, _ = lot_cohort[own]
        building[(program, earned_in)].sales -= event.sv_refunded_minor
    restored = dict(event.points_restored)
    for lot_id, month, points in reversed(redeemed_at.get(event.purchase_id, [])):
        back = min(points, restored.get(lot_id, 0))
        if back:
            program, earned_in, _ = lot_cohort[lot_id]
            building[(program, earned_in)].redeemed[month] -= back
            restored[lot_id] -= back
