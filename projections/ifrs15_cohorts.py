"""IFRS 15 for points from the log: the cohort table domain/finance reads, the points that
arrived by exchange (kept apart, see below), and `ifrs15_from_log`, the one function that
`loyalty-ledger report ifrs15` and FinanceService.GetIfrs15 both call.

The cohort table: per program and month of earning (UTC), the points sales earned, their face
value, the transaction price of those sales, and what became of the points in each later
month (redeemed, expired), traced lot by lot, so the cohorts are exact rather than assigned
oldest-first.

Rules, for the report's reader:
- a purchase that earns points is a sale of goods and points; its transaction price is what
  the customer paid for it other than with points (total - discounts - points redeemed: paying
  with points is a redemption of an earlier cohort, not new consideration);
- a return takes its clawed points off the cohort they were earned in and its stored-value
  refund off that cohort's sales; points it restores are taken off the redemptions of the
  month they were redeemed in, the latest first;
- points of a sales cohort exchanged into another program count as redeemed in the month of
  the exchange: the customer exercised the right the cohort's allocation paid for (the owner
  settles it by paying the receiving program's owner: the exchange legs move the liability at
  each program's point value), so the obligation is discharged and recognised like any
  redemption, and the exchange counts as a redemption in the estimates too. The report shows
  how many of a month's redemptions were exchanges (`cohort_exchanged_out_points`);
- points that arrived by exchange carry no transaction price of a sale of the receiving
  program's owner: no customer bought goods from it, so there is nothing to allocate by
  relative stand-alone selling prices and they are not a cohort. What the receiving owner
  holds is a contract liability for consideration received from the other owner (the value the
  exchange moved: points given x the receiving program's point value), recognised when the
  points are redeemed or exchanged on (revenue) or expire (breakage), at that value. The
  report lists them apart (`ExchangedPoints`, per program and month), so that no point of the
  log is left out: every lot is either a sales cohort's or an exchange's.

It is a scan of the whole log up to `as_of` (a report for finance, not a live read model): at
the log rates measured in the README, seconds per million events.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.cards import events as ev
from domain.common import InvalidInput, shown
from domain.finance.cohorts import PERIODS_MAX, Cohort
from domain.finance.estimates import Method, PublishedEstimate, check_method
from domain.finance.ifrs15 import Ifrs15Report, ifrs15_report
from domain.liability import days
from domain.registry.events import ProgramDefined
from ledger.codec import REGISTRY_ID, decode_event
from ledger.store import EventStore
from projections.runner import log_rows

MICROS = 1_000_000
BP = 10_000
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_TOPICS = frozenset(t.__struct_config__.tag for t in (  # type: ignore[attr-defined]
    ev.PurchaseMade, ev.PurchaseReturned, ev.PointsExpired, ev.PointsExchanged, ProgramDefined))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def month_of(at_us: int) -> str:
    moment = _EPOCH + dt.timedelta(microseconds=at_us)  # exact: no float near 9999-12-31
    return f"{moment.year:04d}-{moment.month:02d}"


def month_count(first: str, last: str) -> int:
    """Months from `first` to `last`, both counted."""
    (y1, m1), (y2, m2) = map(int, first.split("-")), map(int, last.split("-"))
    return (y2 - y1) * 12 + m2 - m1 + 1


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


@dataclass
class _Exchanged:
    """One program's points received by exchange, and what became of them, in one month."""

    received: int = 0
    received_micros: int = 0
    redeemed: int = 0
    redeemed_micros: int = 0
    exchanged_out: int = 0
    exchanged_out_micros: int = 0
    expired: int = 0
    expired_micros: int = 0
    cohort_exchanged_out: int = 0  # points of sales cohorts exchanged out (their redemptions)


@dataclass(frozen=True)
class ExchangedPoints:
    """Points a program received by exchange, per month: not a cohort (no sale of the owner's
    to allocate), a liability at the value the exchange moved, recognised when they are
    redeemed or exchanged on (revenue) or expire (breakage). Money is rounded down from
    millionths of a minor unit, as the exchange legs round it."""

    program: str
    currency: str
    period: str
    opening_points: int
    received_points: int
    redeemed_points: int
    exchanged_out_points: int
    expired_points: int
    closing_points: int
    opening_minor: int
    received_minor: int
    revenue_minor: int  # redeemed and exchanged on, at the value they were received at
    breakage_minor: int  # expired, at that value
    closing_minor: int
    cohort_exchanged_out_points: int  # memo: of the sales cohorts' redemptions, exchanges

    def row(self) -> dict[str, int | str]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class Traced:
    cohorts: list[Cohort]
    months: list[str]  # from the first cohort's month to as_of's, oldest first
    exchanged: list[ExchangedPoints]  # per program, then month


def cohorts_from_log(store: EventStore, as_of_us: int,
                     ) -> tuple[list[Cohort], list[str]]:
    """(the cohorts, the months from the first cohort's to `as_of_us`'s), oldest first."""
    traced = trace_log(store, as_of_us)
    return traced.cohorts, traced.months


class _Trace:
    def __init__(self) -> None:
        self.currency_of: dict[str, str] = {}
        self.building: dict[tuple[str, str], _Building] = {}
        self.lot_cohort: dict[str, tuple[str, str, int]] = {}  # lot -> (program, month, micros)
        self.lot_exchanged: dict[str, tuple[str, int]] = {}  # lot -> (program, micros)
        self.exchanged: dict[tuple[str, str], _Exchanged] = defaultdict(_Exchanged)
        self.purchase_lot: dict[str, str] = {}  # purchase id -> the lot it earned
        # purchase -> (lot, month, points) it redeemed, of a cohort's or an exchange's lot
        self.redeemed_at: dict[str, list[tuple[str, str, int]]] = {}

    def purchased(self, event: ev.PurchaseMade, month: str) -> None:
        taken = []
        for lot_id, points in event.redeemed:
            if lot_id in self.lot_cohort:
                program, earned_in, _ = self.lot_cohort[lot_id]
                self.building[(program, earned_in)].redeemed[month] += points
            elif lot_id in self.lot_exchanged:
                program, micros = self.lot_exchanged[lot_id]
                x = self.exchanged[(program, month)]
                x.redeemed += points
                x.redeemed_micros += points * micros
            else:
                continue
            taken.append((lot_id, month, points))
        if taken:
            self.redeemed_at[event.purchase_id] = taken
        lot = event.lot
        if lot is None or not event.points_owner:
            return
        program = event.points_owner
        key = (program, month)
        if key not in self.building:
            self.building[key] = _Building(self.currency_of.get(program, ""))
        b = self.building[key]
        b.earned += lot.amount
        b.face_micros += lot.amount * lot.value_micros_per_point
        b.sales += event.total_minor - event.discount_minor - event.points_redeemed_value_minor
        self.lot_cohort[lot.lot_id] = (program, month, lot.value_micros_per_point)
        self.purchase_lot[event.purchase_id] = lot.lot_id

    def returned(self, event: ev.PurchaseReturned, month: str) -> None:
        restored = dict(event.points_restored)
        for lot_id, redeemed_in, points in reversed(self.redeemed_at.get(event.purchase_id, [])):
            back = min(points, restored.get(lot_id, 0))
            if not back:
                continue
            restored[lot_id] -= back
            if lot_id in self.lot_cohort:
                program, earned_in, _ = self.lot_cohort[lot_id]
                self.building[(program, earned_in)].redeemed[redeemed_in] -= back
            else:
                program, micros = self.lot_exchanged[lot_id]
                x = self.exchanged[(program, redeemed_in)]
                x.redeemed -= back
                x.redeemed_micros -= back * micros
        for lot_id, points in event.points_clawed:
            if lot_id in self.lot_cohort:
                program, earned_in, micros = self.lot_cohort[lot_id]
                b = self.building[(program, earned_in)]
                b.earned -= points
                b.face_micros -= points * micros
            elif lot_id in self.lot_exchanged:
                # Points received by exchange, given back to a purchase that had redeemed
                # them and taken again by the same return: they leave the card as the
                # redemption they were, in the month of the return.
                program, micros = self.lot_exchanged[lot_id]
                x = self.exchanged[(program, month)]
                x.redeemed += points
                x.redeemed_micros += points * micros
        own = self.purchase_lot.get(event.purchase_id)
        if own is not None and event.sv_refunded_minor:
            program, earned_in, _ = self.lot_cohort[own]
            self.building[(program, earned_in)].sales -= event.sv_refunded_minor

    def exchanged_points(self, event: ev.PointsExchanged, month: str) -> None:
        for lot_id, points in event.taken:
            if lot_id in self.lot_cohort:
                program, earned_in, _ = self.lot_cohort[lot_id]
                self.building[(program, earned_in)].redeemed[month] += points
                self.exchanged[(program, month)].cohort_exchanged_out += points
            elif lot_id in self.lot_exchanged:
                program, micros = self.lot_exchanged[lot_id]
                x = self.exchanged[(program, month)]
                x.exchanged_out += points
                x.exchanged_out_micros += points * micros
        lot = event.lot
        micros = lot.value_micros_per_point
        self.lot_exchanged[lot.lot_id] = (event.to_program, micros)
        x = self.exchanged[(event.to_program, month)]
        x.received += lot.amount
        x.received_micros += lot.amount * micros

    def expired(self, event: ev.PointsExpired, month: str) -> None:
        if event.lot_id in self.lot_cohort:
            program, earned_in, _ = self.lot_cohort[event.lot_id]
            self.building[(program, earned_in)].expired[month] += event.amount
        elif event.lot_id in self.lot_exchanged:
            program, micros = self.lot_exchanged[event.lot_id]
            x = self.exchanged[(program, month)]
            x.expired += event.amount
            x.expired_micros += event.amount * micros


def trace_log(store: EventStore, as_of_us: int) -> Traced:
    """The cohorts and the points received by exchange, from the log up to `as_of_us`."""
    trace = _Trace()
    # by time on a split log: a lot may move to a replacement card, in another lane
    for row in log_rows(store, _TOPICS, by_time=True):
        event = decode_event(row.state)
        at_us = event.meta.recorded_at_us
        if at_us > as_of_us:
            continue
        if row.originator_id == REGISTRY_ID:
            if isinstance(event, ProgramDefined):
                trace.currency_of.setdefault(event.program.owner, event.program.currency)
            continue
        month = month_of(at_us)
        if isinstance(event, ev.PurchaseMade):
            trace.purchased(event, month)
        elif isinstance(event, ev.PurchaseReturned):
            trace.returned(event, month)
        elif isinstance(event, ev.PointsExchanged):
            trace.exchanged_points(event, month)
        elif isinstance(event, ev.PointsExpired):
            trace.expired(event, month)
    last = month_of(as_of_us)
    building = trace.building
    started = [m for _, m in building] + [m for _, m in trace.exchanged]
    if started and month_count(min(started), last) > PERIODS_MAX:
        raise InvalidInput("as_of", f"{month_count(min(started), last)} months after the "
                           f"first points ({min(started)}): a report covers at most "
                           f"{PERIODS_MAX}")
    exchanged = _exchanged_rows(trace, last)
    if not building:
        return Traced([], [], exchanged)
    months = months_between(min(m for _, m in building), last)
    cohorts = []
    for (program, month), b in sorted(building.items()):
        later = months[months.index(month):]
        cohorts.append(Cohort(
            program, b.currency, month, b.earned, b.face_micros, max(0, b.sales),
            tuple(b.redeemed.get(m, 0) for m in later), tuple(b.expired.get(m, 0) for m in later)))
    return Traced(cohorts, months, exchanged)


def _exchanged_rows(trace: _Trace, last: str) -> list[ExchangedPoints]:
    """Per program, every month from its first exchange (in or out) to `last`."""
    rows: list[ExchangedPoints] = []
    for program in sorted({p for p, _ in trace.exchanged}):
        first = min(m for p, m in trace.exchanged if p == program)
        points = micros = 0
        for month in months_between(first, last):
            x = trace.exchanged.get((program, month), _Exchanged())
            out = x.redeemed + x.exchanged_out + x.expired
            out_micros = x.redeemed_micros + x.exchanged_out_micros + x.expired_micros
            closing, closing_micros = points + x.received - out, micros + x.received_micros \
                - out_micros
            rows.append(ExchangedPoints(
                program, trace.currency_of.get(program, ""), month, points, x.received,
                x.redeemed, x.exchanged_out, x.expired, closing, micros // MICROS,
                x.received_micros // MICROS,
                (x.redeemed_micros + x.exchanged_out_micros) // MICROS,
                x.expired_micros // MICROS, closing_micros // MICROS, x.cohort_exchanged_out))
            points, micros = closing, closing_micros
    return rows


# -- the report: one function for the command and the RPC --------------------------------------


@dataclass(frozen=True)
class Ifrs15Found:
    as_of: str
    method: Method
    report: Ifrs15Report | None  # None: no points earned by sales in scope
    exchanged: list[ExchangedPoints]

    @property
    def periods(self) -> list[str]:
        return list(self.report.periods) if self.report else []

    def allocation_rows(self) -> list[dict[str, int | str]]:
        return self.report.allocation_rows() if self.report else []

    def schedule_rows(self) -> list[dict[str, int | str]]:
        return self.report.schedule_rows() if self.report else []

    def estimate_rows(self) -> list[dict[str, int | str]]:
        return self.report.estimate_rows() if self.report else []

    def age_rate_rows(self) -> list[dict[str, int | str]]:
        return self.report.age_rate_rows() if self.report else []

    def exchanged_rows(self) -> list[dict[str, int | str]]:
        return [x.row() for x in self.exchanged]

    def as_json(self) -> dict[str, Any]:
        """What `report ifrs15 --format json` prints."""
        return {"as_of": self.as_of, "method": self.method.name, "periods": self.periods,
                "allocations": self.allocation_rows(), "schedule": self.schedule_rows(),
                "estimates": self.estimate_rows(), "age_rates": self.age_rate_rows(),
                "exchanged": self.exchanged_rows()}


def check_rates(rates: Sequence[tuple[str, int]], field: str = "estimates",
                ) -> list[tuple[str, int]]:
    """Published expected redemption rates as (month "YYYY-MM" or "" = from each program's
    first cohort, basis points), checked; sorted by month."""
    seen: set[str] = set()
    for i, (month, bp) in enumerate(rates):
        if month and not _MONTH.fullmatch(month):
            raise InvalidInput(f"{field}[{i}].effective_from",
                               f"must be a month YYYY-MM (UTC) or empty, not {shown(month)}")
        if month in seen:
            raise InvalidInput(f"{field}[{i}].effective_from",
                               f"a second rate from {shown(month or 'the first cohort')}")
        seen.add(month)
        if isinstance(bp, bool) or not isinstance(bp, int) or not 0 <= bp <= BP:
            raise InvalidInput(f"{field}[{i}].redemption_rate_bp",
                               f"must be 0..{BP} basis points, not {shown(bp)}")
    return sorted(rates)


def published_estimates(cohorts: Sequence[Cohort], months: Sequence[str],
                        rates: Sequence[tuple[str, int]],
                        field: str = "estimates") -> list[PublishedEstimate]:
    """Each program's estimates from the rates (checked, sorted): a rate dated before the
    program's first cohort is in force from that cohort (the latest such one); a program needs
    one in force from its first cohort."""
    found: list[PublishedEstimate] = []
    for i, (month, _) in enumerate(rates):
        if month and month > months[-1]:
            raise InvalidInput(f"{field}[{i}].effective_from",
                               f"{month} is after the report's last month {months[-1]}")
    for program in sorted({c.program for c in cohorts}):
        first = min(c.period for c in cohorts if c.program == program)
        by_month: dict[str, int] = {}
        for month, bp in rates:  # sorted: a later rate dated before `first` replaces one
            by_month[max(month, first)] = bp
        if first not in by_month:
            raise InvalidInput(field, f"no rate in force for program {shown(program)} from "
                               f"its first cohort ({first}): give one dated {first} or before")
        found += [PublishedEstimate(program, month, bp) for month, bp in sorted(by_month.items())]
    return found


def ifrs15_from_log(store: EventStore, as_of: str, program: str, method: Method,
                    rates: Sequence[tuple[str, int]] = (),
                    rates_field: str = "estimates") -> Ifrs15Found:
    """IFRS 15 for points to the end of the UTC day `as_of` ("YYYY-MM-DD", checked by the
    caller), for one program ("" = every one): cohorts traced from the log, then allocation,
    recognition and the liability schedule per program and month (domain/finance), with the
    points received by exchange apart. `method` PUBLISHED reads `rates` (see check_rates);
    COHORT_RUNOFF estimates from the cohorts' history and takes none. InvalidInput naming
    the field (`method`, `estimates[0].effective_from`, `as_of`...; the rates are named
    `rates_field`) for a bad input."""
    method = check_method(method)
    rates = check_rates(rates, rates_field)
    if method == Method.PUBLISHED and not rates:
        raise InvalidInput(rates_field, "the PUBLISHED method needs a published rate")
    if method == Method.COHORT_RUNOFF and rates:
        raise InvalidInput(rates_field, "only the PUBLISHED method reads published rates")
    traced = trace_log(store, days.end_us(as_of) - 1)
    cohorts = [c for c in traced.cohorts if not program or c.program == program]
    exchanged = [x for x in traced.exchanged if not program or x.program == program]
    if not cohorts:
        return Ifrs15Found(as_of, method, None, exchanged)
    months = traced.months[traced.months.index(min(c.period for c in cohorts)):]
    estimates = published_estimates(cohorts, months, rates, rates_field) \
        if method == Method.PUBLISHED else []
    return Ifrs15Found(as_of, method, ifrs15_report(cohorts, months, method, estimates),
                       exchanged)
