"""The customer read model's rows in memory, as columns, for view queries in milliseconds
(issue 10, section 3).

Summing a year of `proj_cust_activity` rows in the database and scoring the customers in
Python took seconds for 25,000 customers. Here the rows of the table are loaded once (with the
model's position, in one statement: one snapshot) into numpy columns sorted by (customer, day),
and then follow the log on their own: each query first reads the rows the model has applied
since (the same `CustomersModel.prepare` the runner uses, nothing written) and merges their
sums in, so the columns are always the table at the model's position (rows of one key may be
split in several: every view sums them). Each view is then one pass of a numba kernel over
the columns (per-customer sums, visit days, store and partner figures) and numpy sorts of the
customers, giving the very structs of domain/customers (the plain-Python twins, which the
tests compare them with).

Memory: about 60 bytes per activity row (2,000,000 rows: ~120 MB), in the process that serves
the queries (InsightsService, the report commands), never in the authorization path.

The split log (ledger/partitioned.py): the model keeps a position per lane, and so does the
index (`positions`), following each lane in its own order up to the model's position there.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numba
import numpy as np

from domain.customers import affinity as af
from domain.customers import lifecycle as lc
from domain.customers import matrix as mx
from domain.customers import pyramid as pm
from domain.customers import rfm as rf
from domain.customers import views
from domain.customers import visits as vt
from domain.customers.activity import Activity, Period, day_name, share_bps
from ledger.store import EventStore
from projections import customers as cm
from projections.runner import ProjectionRunner

DAY_BITS = 21  # the sort key is customer << DAY_BITS | day (days up to the year 7700)
LOG_PAGE = 5_000  # log rows read per step when following
# Rows merged in before the index sums rows of one key together (see Columns.merge).
COMPACT_MIN = 50_000

I64 = np.int64
I32 = np.int32


class Columns:
    """Activity rows as columns, sorted by (customer, day)."""

    NAMES = ("key", "cust", "store", "partner", "day", "hour", "utc", "visits", "spend",
             "margin")

    def __init__(self) -> None:
        self.key = np.empty(0, I64)
        self.cust = np.empty(0, I32)
        self.store = np.empty(0, I32)
        self.partner = np.empty(0, I32)
        self.day = np.empty(0, I32)
        self.hour = np.empty(0, I32)
        self.utc = np.empty(0, I64)  # the row's local day and hour as hours since 1970, UTC
        self.visits = np.empty(0, I64)
        self.spend = np.empty(0, I64)
        self.margin = np.empty(0, I64)
        self.merged_since_compact = 0

    SUMMED = ("visits", "spend", "margin")

    def merge(self, new: dict[str, np.ndarray]) -> None:
        """Insert rows (a column per name, any order) where their keys sort. A row for a
        (customer, day, store, hour) already held goes beside it; once the rows merged in
        since the last compaction reach a tenth of the index (at least COMPACT_MIN), rows of
        one (customer, day, store, hour) are summed into one, so the index stays the size of
        the model's table however long the process follows the log."""
        order = np.argsort(new["key"], kind="stable")
        at = np.searchsorted(self.key, new["key"][order], side="right")
        for name in self.NAMES:
            setattr(self, name, np.insert(getattr(self, name), at, new[name][order]))
        self.merged_since_compact += len(order)
        if self.merged_since_compact >= max(COMPACT_MIN, len(self.key) // 10):
            self.compact()

    def compact(self) -> None:
        """One row per (customer, day, store, hour): the summed columns added up, the others
        (functions of the key) kept. Still sorted by key."""
        self.merged_since_compact = 0
        if len(self.key) < 2:
            return
        order = np.lexsort((self.hour, self.store, self.key))
        k, s, h = self.key[order], self.store[order], self.hour[order]
        starts = np.flatnonzero(np.r_[True, (k[1:] != k[:-1]) | (s[1:] != s[:-1])
                                      | (h[1:] != h[:-1])])
        for name in self.NAMES:
            column = getattr(self, name)[order]
            setattr(self, name, np.add.reduceat(column, starts) if name in self.SUMMED
                    else column[starts])


class Codes:
    """Names <-> dense integer codes (customers, stores, partners), and each code's rank in
    the names' sorted order (ties between customers are broken by name, as the views order
    them)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.codes: dict[str, int] = {}
        self._sorted = np.empty(0, np.str_)  # the ranked names, in order
        self._rank = np.empty(0, I64)  # code -> rank, for the first len(_rank) codes

    def code(self, name: str) -> int:
        found = self.codes.get(name)
        if found is None:
            found = self.codes[name] = len(self.names)
            self.names.append(name)
        return found

    def encode(self, names: Sequence[str]) -> np.ndarray:
        """The codes of `names` (new names get the next codes, in sorted order)."""
        for name in sorted(set(names) - self.codes.keys()):
            self.code(name)
        codes = self.codes
        return np.array([codes[name] for name in names], I32)

    def rank(self) -> np.ndarray:
        """code -> position of its name in sorted order. The names coded since the last call
        are merged in (a live log brings a few new customers at a time: no full re-sort)."""
        ranked = len(self._rank)
        if ranked == len(self.names):
            return self._rank
        new = np.array(self.names[ranked:], np.str_)
        order = np.argsort(new, kind="stable")
        at = np.searchsorted(self._sorted, new[order])  # where each new name goes
        # an old name moves down by the new names before it; a new one sits after the old
        # names before it and the new names before it
        rank = np.empty(len(self.names), I64)
        rank[:ranked] = self._rank + np.searchsorted(at, self._rank, side="right")
        rank[ranked + order] = at + np.arange(len(new))
        wide = np.promote_types(self._sorted.dtype, new.dtype)  # the longest name's width
        self._sorted = np.insert(self._sorted.astype(wide), at, new[order])
        self._rank = rank
        return rank


class ActivityIndex:
    """The model's rows at its log positions (`positions`: per lane, {0: p} on one log), in
    memory (see the module's doc)."""

    def __init__(self, rows: Iterable[Activity] = (), zones: Mapping[str, str] | None = None,
                 position: int | Mapping[int, int] = 0) -> None:
        self.columns = Columns()
        self.customers, self.stores, self.partners = Codes(), Codes(), Codes()
        self.store_partner: dict[int, int] = {}
        self.zones: dict[str, str] = dict(zones or {})
        self._utc: dict[tuple[str, int], int] = {}  # (timezone, local hour) -> UTC hour
        self.positions: dict[int, int] = (dict(position) if isinstance(position, Mapping)
                                          else {0: position})
        self.lock = threading.Lock()
        self.model: cm.CustomersModel | None = None
        self.add(rows)

    # ------------------------------------------------------------------ filling

    def add(self, rows: Iterable[Activity]) -> None:
        """Merge rows (customer, store, partner, day, hour, visits, spend, margin) in."""
        self.add_columns(list(zip(*rows, strict=False)))

    def add_columns(self, columns: Sequence[Sequence[Any]]) -> None:
        """add() of the rows in these eight columns."""
        if not columns or not columns[0]:
            return
        cust, store, partner = (codes.encode(column) for codes, column in zip(
            (self.customers, self.stores, self.partners), columns[:3], strict=True))
        for s, p in set(zip(store.tolist(), partner.tolist(), strict=True)):
            self.store_partner.setdefault(s, p)
        day, hour = np.array(columns[3], I32), np.array(columns[4], I32)
        new = {"cust": cust, "store": store, "partner": partner, "day": day, "hour": hour,
               "visits": np.array(columns[5], I64), "spend": np.array(columns[6], I64),
               "margin": np.array(columns[7], I64),
               "key": (cust.astype(I64) << DAY_BITS) | day.astype(I64),
               "utc": self._utc_hours(store, day, hour)}
        self.columns.merge(new)

    def _utc_hours(self, store: np.ndarray, day: np.ndarray, hour: np.ndarray) -> np.ndarray:
        """Each row's local day and hour in its store's timezone -> UTC hours (the model's
        `utc_hour`, called once per distinct store, day and hour)."""
        local = day.astype(I64) * 24 + hour
        keys, back = np.unique(store.astype(I64) << 32 | local, return_inverse=True)
        found = np.empty(len(keys), I64)
        for i, key in enumerate(keys.tolist()):
            zone = self.zones.get(self.stores.names[key >> 32], "UTC")
            at = key & 0xFFFFFFFF
            hit = self._utc.get((zone, at))
            if hit is None:
                hit = self._utc[(zone, at)] = cm.utc_hour(at // 24, at % 24, zone)
            found[i] = hit
        return found[back.reshape(-1)]

    @property
    def position(self) -> int:
        """One log: the log position; split: the sum over the lanes (it grows with every
        row followed, and is no position)."""
        return sum(self.positions.values())

    def follow(self, store: EventStore, target: int | Mapping[int, int]) -> None:
        """Merge in the model's rows of the log after `positions` up to `target` (the model's
        own positions, per lane: its tables hold every card and store those rows name),
        lane 0 first."""
        targets = target if isinstance(target, Mapping) else {0: target}
        for lane in sorted(targets):
            self._follow_lane(store, lane, targets[lane])

    def _follow_lane(self, store: EventStore, lane: int, target: int) -> None:
        if self.model is None:
            self.model = cm.CustomersModel()
        while (at := self.positions.get(lane, 0)) < target:
            rows = [r for r in store.read_lane(lane, at + 1, LOG_PAGE) if r.id <= target]
            if not rows:
                break
            batch = self.model.prepare(store, rows)
            for store_id, partner, zone in batch.stores:
                self.zones.setdefault(store_id, zone)
                self.store_partner.setdefault(self.stores.code(store_id),
                                              self.partners.code(partner))
            self.add((c, s, p, d, h, v, sp, m)
                     for (c, s, d, h), (p, v, sp, m) in batch.activity.items())
            self.positions[lane] = rows[-1].id

    # ------------------------------------------------------------------ scopes

    def scope(self, partner: str, store_id: str) -> tuple[int, int]:
        """(partner code, store code): -1 = any, -2 = one this index has no row of."""
        return (self.partners.codes.get(partner, -2) if partner else -1,
                self.stores.codes.get(store_id, -2) if store_id else -1)

    def totals(self, period: Period, partner: int, store: int) -> Totals:
        c = self.columns
        return Totals(*_totals(c.cust, c.store, c.partner, c.day, c.visits, c.spend, c.margin,
                               partner, store, period.first, period.last,
                               len(self.customers.names)))


class Totals:
    """Per customer code: a row in the period (`has`), visits, spend, margin, first and last
    day with a visit (0 when none): activity.totals as columns."""

    def __init__(self, has: np.ndarray, visits: np.ndarray, spend: np.ndarray,
                 margin: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
        self.has, self.visits, self.spend, self.margin, self.first, self.last = (
            has, visits, spend, margin, first, last)


# ------------------------------------------------------------------------------ kernels


@numba.njit(cache=True, nogil=True)
def _in_scope(partner: int, store: int, want_partner: int, want_store: int) -> bool:
    return ((want_partner == -1 or partner == want_partner)
            and (want_store == -1 or store == want_store))


@numba.njit(cache=True, nogil=True)
def _totals(cust, store, partner, day, visits, spend, margin, want_partner, want_store,
            first, last, customers):  # type: ignore[no-untyped-def]
    has = np.zeros(customers, np.bool_)
    v = np.zeros(customers, np.int64)
    s = np.zeros(customers, np.int64)
    m = np.zeros(customers, np.int64)
    f = np.zeros(customers, np.int64)
    lt = np.zeros(customers, np.int64)
    for i in range(cust.shape[0]):
        d = day[i]
        if d < first or d > last or not _in_scope(partner[i], store[i], want_partner,
                                                   want_store):
            continue
        c = cust[i]
        has[c] = True
        v[c] += visits[i]
        s[c] += spend[i]
        m[c] += margin[i]
        if visits[i] > 0:
            if f[c] == 0 or d < f[c]:
                f[c] = d
            if d > lt[c]:
                lt[c] = d
    return has, v, s, m, f, lt


@numba.njit(cache=True, nogil=True)
def _grid(store, partner, day, hour, visits, spend, want_partner, want_store, first, last):  # type: ignore[no-untyped-def]
    rows = np.zeros(7 * 24, np.int64)
    v = np.zeros(7 * 24, np.int64)
    s = np.zeros(7 * 24, np.int64)
    for i in range(day.shape[0]):
        d = day[i]
        if d < first or d > last or not _in_scope(partner[i], store[i], want_partner,
                                                   want_store):
            continue
        cell = ((d + 3) % 7) * 24 + hour[i]
        rows[cell] += 1
        v[cell] += visits[i]
        s[cell] += spend[i]
    return rows, v, s


@numba.njit(cache=True, nogil=True)
def _interval(days, n, gaps, min_visits, min_interval):  # type: ignore[no-untyped-def]
    """lifecycle.usual_interval of days[:n] (0 = None); `gaps` is scratch space."""
    if n < min_visits:
        return 0
    m = n - 1
    for k in range(m):
        gaps[k] = days[k + 1] - days[k]
    if m > 32:
        gaps[:m].sort()
    else:  # most customers have a few visits: numba's sort costs more to call than this
        for k in range(1, m):
            g = gaps[k]
            j = k - 1
            while j >= 0 and gaps[j] > g:
                gaps[j + 1] = gaps[j]
                j -= 1
            gaps[j + 1] = g
    return max(gaps[(n - 2) // 2], min_interval)


@numba.njit(cache=True, nogil=True)
def _status(days, n, as_of, interval, constants):  # type: ignore[no-untyped-def]
    """lifecycle.status of days[:n] (all <= as_of, n > 0) with their usual interval (0:
    none): 0 NEW, 1 ACTIVE, 2 AT_RISK, 3 LAPSED."""
    at_risk_factor, lapsed_factor, at_risk_days, lapsed_days, new_days = constants[2:]
    gap = as_of - days[n - 1]
    if interval == 0:
        at_risk, lapsed = at_risk_days, lapsed_days
    else:
        at_risk, lapsed = at_risk_factor * interval, lapsed_factor * interval
    if gap > lapsed:
        return 3
    if gap > at_risk:
        return 2
    if as_of - days[0] <= new_days:
        return 0
    return 1


@numba.njit(cache=True, nogil=True)
def _lifecycle(cust, store, partner, day, visits, want_partner, want_store, as_of, week,
               customers, constants):  # type: ignore[no-untyped-def]
    """Per customer: status as of `as_of` and a week before (-1: no visit yet), last visit
    day and usual interval (0: too few visits) as of `as_of`. Rows sorted by (cust, day)."""
    now = np.full(customers, -1, np.int8)
    before = np.full(customers, -1, np.int8)
    last = np.zeros(customers, np.int64)
    interval = np.zeros(customers, np.int64)
    days = np.empty(cust.shape[0] + 1, np.int64)
    gaps = np.empty(cust.shape[0] + 1, np.int64)
    n = cust.shape[0]
    i = 0
    while i < n:
        c = cust[i]
        k = 0
        j = i
        while j < n and cust[j] == c:
            d = day[j]
            if (visits[j] > 0 and d <= as_of and (k == 0 or days[k - 1] != d)
                    and _in_scope(partner[j], store[j], want_partner, want_store)):
                days[k] = d
                k += 1
            j += 1
        if k > 0:
            usual = _interval(days, k, gaps, constants[0], constants[1])
            now[c] = _status(days, k, as_of, usual, constants)
            last[c] = days[k - 1]
            interval[c] = usual
            earlier = k
            while earlier > 0 and days[earlier - 1] > as_of - week:
                earlier -= 1
            if earlier > 0:
                before[c] = _status(days, earlier, as_of - week, _interval(
                    days, earlier, gaps, constants[0], constants[1]), constants)
        i = j
    return now, before, last, interval


@numba.njit(cache=True, nogil=True)
def _affinity(cust, store, partner, day, utc, visits, spend, want_partner, want_store,
              first, last, elsewhere_partner, partner_rank, stores, partners, customers,
              flows):  # type: ignore[no-untyped-def]
    """affinity.from_figures's sums, one customer at a time (rows sorted by customer)."""
    cust_has = np.zeros(customers, np.bool_)
    cust_spend = np.zeros(customers, np.int64)
    store_customers = np.zeros(stores, np.int64)
    store_spend = np.zeros(stores, np.int64)
    partner_customers = np.zeros(partners, np.int64)
    partner_spend = np.zeros(partners, np.int64)
    flow_customers = np.zeros((partners, partners), np.int64)
    flow_spend = np.zeros((partners, partners), np.int64)
    totals = np.zeros(3, np.int64)  # multi-partner customers, their spend, elsewhere
    s_seen = np.zeros(stores, np.bool_)
    s_spend = np.zeros(stores, np.int64)
    p_seen = np.zeros(partners, np.bool_)
    p_spend = np.zeros(partners, np.int64)
    p_last = np.full(partners, -(1 << 62), np.int64)
    s_list = np.empty(stores, np.int64)
    p_list = np.empty(partners, np.int64)
    n = cust.shape[0]
    i = 0
    while i < n:
        c = cust[i]
        ns = 0
        np_ = 0
        has = False
        at_mine = False
        at_other = False
        start_hour = 1 << 62
        start_rank = 1 << 62
        start_partner = -1
        j = i
        while j < n and cust[j] == c:
            d = day[j]
            if d < first or d > last:
                j += 1
                continue
            pt = partner[j]
            if elsewhere_partner >= 0:
                if pt == elsewhere_partner:
                    at_mine = True
                else:
                    at_other = True
            st = store[j]
            if _in_scope(pt, st, want_partner, want_store):
                has = True
                if not s_seen[st]:
                    s_seen[st] = True
                    s_list[ns] = st
                    ns += 1
                s_spend[st] += spend[j]
                if not p_seen[pt]:
                    p_seen[pt] = True
                    p_list[np_] = pt
                    np_ += 1
                p_spend[pt] += spend[j]
                if visits[j] > 0:
                    hour = utc[j]
                    if hour < start_hour or (hour == start_hour
                                             and partner_rank[pt] < start_rank):
                        start_hour, start_rank, start_partner = hour, partner_rank[pt], pt
                    if hour > p_last[pt]:
                        p_last[pt] = hour
            j += 1
        if has:
            cust_has[c] = True
            total = 0
            for k in range(ns):
                st = s_list[k]
                store_customers[st] += 1
                store_spend[st] += s_spend[st]
                total += s_spend[st]
            cust_spend[c] = total
            for k in range(np_):
                pt = p_list[k]
                partner_customers[pt] += 1
                partner_spend[pt] += p_spend[pt]
            if np_ >= 2:
                totals[0] += 1
                totals[1] += total
            if at_mine and at_other:
                totals[2] += 1
            if flows and start_partner >= 0:
                for k in range(np_):
                    pt = p_list[k]
                    if pt != start_partner and p_last[pt] > start_hour:
                        flow_customers[start_partner, pt] += 1
                        flow_spend[start_partner, pt] += p_spend[pt]
        for k in range(ns):
            st = s_list[k]
            s_seen[st] = False
            s_spend[st] = 0
        for k in range(np_):
            pt = p_list[k]
            p_seen[pt] = False
            p_spend[pt] = 0
            p_last[pt] = -(1 << 62)
        i = j
    return (cust_has, cust_spend, store_customers, store_spend,
            partner_customers, partner_spend, flow_customers, flow_spend, totals)


LIFECYCLE = np.array([lc.MIN_VISITS, lc.MIN_INTERVAL_DAYS, lc.AT_RISK_FACTOR, lc.LAPSED_FACTOR,
                      lc.AT_RISK_DAYS, lc.LAPSED_DAYS, lc.NEW_DAYS], I64)


def warm_up() -> None:
    """Compile the kernels (or load them from numba's cache) before the first query."""
    index = ActivityIndex([Activity("a", "s", "p", 1, 1, 1, 1, 1),
                           Activity("b", "s", "p", 9, 1, 1, 1, 1)])
    for name in cm.VIEWS:
        compute(index, name, 10, 1)


# ------------------------------------------------------------------------------ views


def levels(spend: np.ndarray) -> np.ndarray:
    """pyramid.levels of the spend array: level index 0..3 (A..D) per element."""
    n = len(spend)
    order = np.argsort(-spend, kind="stable")
    ranked = spend[order]
    starts = np.ones(n, np.bool_)
    starts[1:] = ranked[1:] != ranked[:-1]
    group = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    bounds = np.array([pm.quota(n, bps) for bps in pm.QUOTAS_BPS], I64)
    level = np.searchsorted(bounds, group, side="right")
    level[ranked <= 0] = 3
    found = np.empty(n, I64)
    found[order] = level
    return found


def pyramid(index: ActivityIndex, now: Totals, before: Totals, period: Period) -> pm.Pyramid:
    mine = np.flatnonzero(now.has)
    spend = now.spend[mine]
    current = levels(spend)
    total = int(spend.sum())
    rows = []
    for i, name in enumerate(pm.LEVELS):
        members = spend[current == i]
        rows.append(pm.Level(name, len(members), int(members.sum()),
                             share_bps(int(members.sum()), total),
                             int(members.min()) if len(members) else 0,
                             int(members.max()) if len(members) else 0))
    none = len(pm.LEVELS)
    codes_now = np.full(len(now.has), none, I64)
    codes_now[mine] = current
    theirs = np.flatnonzero(before.has)
    codes_before = np.full(len(now.has), none, I64)
    codes_before[theirs] = levels(before.spend[theirs])
    either = now.has | before.has
    moved = np.bincount(codes_before[either] * (none + 1) + codes_now[either],
                        minlength=(none + 1) ** 2)
    names = (*pm.LEVELS, pm.NONE)
    movement = [pm.Move(names[a], names[b], int(moved[a * (none + 1) + b]))
                for a in range(none + 1) for b in range(none + 1)
                if moved[a * (none + 1) + b]]
    return pm.Pyramid(*period.names(), len(mine), total, rows, movement)


def matrix(now: Totals, period: Period, sales_split: int | None,
           margin_split: int | None) -> mx.Matrix:
    mine = np.flatnonzero(now.has)
    sales, margin = now.spend[mine], now.margin[mine]
    if sales_split is None:
        sales_split = _lower_median(sales)
    if margin_split is None:
        margin_split = _lower_median(margin)
    high_sales, high_margin = sales > sales_split, margin > margin_split
    masks = (high_sales & high_margin, ~high_sales & high_margin, high_sales & ~high_margin,
             ~high_sales & ~high_margin)
    return mx.Matrix(*period.names(), sales_split, margin_split,
                     [mx.Quadrant(q, int(m.sum()), int(sales[m].sum()), int(margin[m].sum()))
                      for q, m in zip(mx.QUADRANTS, masks, strict=True)])


def _lower_median(values: np.ndarray) -> int:
    if not len(values):
        return 0
    return int(np.partition(values, (len(values) - 1) // 2)[(len(values) - 1) // 2])


def buckets(values: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """rfm.buckets and rfm.thresholds over an array: (score per element, thresholds)."""
    n = len(values)
    if not n:
        return np.empty(0, I64), ()
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.ones(n, np.bool_)
    starts[1:] = ordered[1:] != ordered[:-1]
    first = np.flatnonzero(starts)  # each group of equal values: its first and last index
    last = np.append(first[1:], n) - 1
    middle = first + last + 1  # a + b - 1 with 1-based ranks a, b
    group_score = 1 + sum((5 * middle > 2 * k * n).astype(I64) for k in range(1, 5))
    ranked = group_score[np.cumsum(starts) - 1]
    score = np.empty(n, I64)
    score[order] = ranked
    below = np.searchsorted(ranked, np.arange(1, 5), side="right")  # scores <= k
    low = int(ordered[0]) - 1
    return score, tuple(int(ordered[i - 1]) if i else low for i in below.tolist())


SEGMENT_OF = np.array([[[rf.SEGMENT_NAMES.index(rf.segment(r, f, m)) for m in range(1, 6)]
                        for f in range(1, 6)] for r in range(1, 6)], I64)


class Scores:
    """rfm.scores as columns over the customers with a visit (codes `who`)."""

    def __init__(self, found: Totals, as_of: int) -> None:
        self.who = np.flatnonzero(found.visits > 0)
        self.recency = as_of - found.last[self.who]
        self.visits = found.visits[self.who]
        self.spend = found.spend[self.who]
        self.r, self.r_cuts = buckets(-self.recency)
        self.f, self.f_cuts = buckets(self.visits)
        self.m, self.m_cuts = buckets(self.spend)
        self.score = 100 * self.r + 10 * self.f + self.m
        self.segment = (SEGMENT_OF[self.r - 1, self.f - 1, self.m - 1] if len(self.who)
                        else np.empty(0, I64))


def _sums(codes: np.ndarray, values: np.ndarray, n: int) -> list[int]:
    found = np.zeros(n, I64)
    np.add.at(found, codes, values)
    return [int(v) for v in found]


def rfm(index: ActivityIndex, now: Totals, as_of: int, period: Period,
        listed: int | None = None) -> rf.Rfm:
    s = Scores(now, as_of)
    names = len(rf.SEGMENT_NAMES)
    counts = np.bincount(s.segment, minlength=names)
    spend = _sums(s.segment, s.spend, names)
    order = np.lexsort((index.customers.rank()[s.who], -s.score))[:listed]
    customers = index.customers.names
    segments = rf.SEGMENT_NAMES
    rows = [rf.Scored(customers[c], rec, v, sp, r, f, m, score, segments[g])
            for c, rec, v, sp, r, f, m, score, g in zip(
                *(a[order].tolist() for a in (s.who, s.recency, s.visits, s.spend, s.r, s.f,
                                              s.m, s.score, s.segment)), strict=True)]
    return rf.Rfm(*period.names(), [-c for c in s.r_cuts], list(s.f_cuts), list(s.m_cuts),
                  [rf.SegmentRow(name, int(counts[i]), spend[i])
                   for i, name in enumerate(rf.SEGMENT_NAMES)], rows)


def churn(index: ActivityIndex, partner: int, store: int, as_of: int, months: int,
          then: Totals, now: Totals, listed: int | None = None) -> lc.Churn:
    c = index.columns
    status, before, last, interval = _lifecycle(
        c.cust, c.store, c.partner, c.day, c.visits, partner, store, as_of, lc.WEEK_DAYS,
        len(index.customers.names), LIFECYCLE)
    counts = np.bincount(status[status >= 0], minlength=len(lc.STATUSES))
    flagged = np.flatnonzero((status == 2) & ((before == 0) | (before == 1)))
    gap, usual = as_of - last[flagged], interval[flagged]
    overdue = gap * 1_000 // np.where(usual > 0, usual, lc.AT_RISK_DAYS)
    flagged = flagged[np.lexsort((index.customers.rank()[flagged], -overdue))][:listed]
    names = index.customers.names
    found = [(names[who], day, as_of - day, days)
             for who, day, days in zip(flagged.tolist(), last[flagged].tolist(),
                                       interval[flagged].tolist(), strict=True)]
    _, previous = views.periods(as_of, months)
    scored = Scores(then, previous.last)
    n = len(rf.SEGMENT_NAMES)
    spend = [lc.SegmentSpend(name, people, before_minor, now_minor, now_minor - before_minor,
                             now_minor < before_minor)
             for name, people, before_minor, now_minor in zip(
                 rf.SEGMENT_NAMES, np.bincount(scored.segment, minlength=n).tolist(),
                 _sums(scored.segment, then.spend[scored.who], n),
                 _sums(scored.segment, now.spend[scored.who], n), strict=True)]
    return lc.Churn(day_name(as_of), [lc.StatusCount(s, int(counts[i]))
                                      for i, s in enumerate(lc.STATUSES)],
                    [lc.AtRisk(who, day_name(day), gap, usual) for who, day, gap, usual in found],
                    spend)


def visit_times(index: ActivityIndex, partner: int, store: int,
                period: Period) -> vt.VisitTimes:
    c = index.columns
    rows, visits, spend = _grid(c.store, c.partner, c.day, c.hour, c.visits, c.spend, partner,
                                store, period.first, period.last)
    return vt.from_grid({(cell // 24, cell % 24): [int(visits[cell]), int(spend[cell])]
                         for cell in np.flatnonzero(rows).tolist()}, period)


def _shares(pairs: dict[str, int]) -> list[tuple[str, int]]:
    total = sum(pairs.values())
    return sorted(((k, share_bps(v, total)) for k, v in pairs.items()),
                  key=lambda item: (-item[1], item[0]))


def affinity(index: ActivityIndex, partner_name: str, partner: int, store: int,
             period: Period, flows: bool, top: int) -> af.Affinity:
    c = index.columns
    elsewhere = index.partners.codes.get(partner_name, -2) if partner_name else -1
    stores, partners = len(index.stores.names), len(index.partners.names)
    (has, spend, store_customers, store_spend, partner_customers,
     partner_spend, flow_customers, flow_spend, totals) = _affinity(
        c.cust, c.store, c.partner, c.day, c.utc, c.visits, c.spend, partner, store,
        period.first, period.last, elsewhere, index.partners.rank(), stores, partners,
        len(index.customers.names), flows)
    total = int(store_spend.sum())
    places: list[af.Place] = []
    for kind, codes, counts, sums in (
            ("partner", index.partners, partner_customers, partner_spend),
            ("store", index.stores, store_customers, store_spend)):
        for i in sorted(np.flatnonzero(counts).tolist(), key=codes.names.__getitem__):
            owner = (codes.names[i] if kind == "partner"
                     else index.partners.names[index.store_partner[i]])
            places.append(af.Place(kind, codes.names[i], owner, int(counts[i]), int(sums[i]),
                                   share_bps(int(sums[i]), total)))
    found_flows = [af.Flow(index.partners.names[a], index.partners.names[b],
                           int(flow_customers[a, b]), int(flow_spend[a, b]))
                   for a, b in zip(*np.nonzero(flow_customers), strict=True)]
    found_flows.sort(key=lambda f: (f.from_partner, f.to_partner))
    mine = np.flatnonzero(has)
    ranked = mine[np.lexsort((index.customers.rank()[mine], -spend[mine]))][:top]
    customers_top = [_customer_share(index, int(who), partner, store, period)
                     for who in ranked.tolist() if spend[who] > 0]
    return af.Affinity(*period.names(), len(mine), total, places, int(totals[0]),
                       int(totals[1]), int(totals[2]), found_flows, customers_top)


def _customer_share(index: ActivityIndex, who: int, partner: int, store: int,
                    period: Period) -> af.CustomerShare:
    c = index.columns
    lo, hi = np.searchsorted(c.cust, [who, who + 1])  # rows sorted by customer
    by_store: dict[str, int] = {}
    by_partner: dict[str, int] = {}
    for st, pt, d, sp in zip(c.store[lo:hi].tolist(), c.partner[lo:hi].tolist(),
                             c.day[lo:hi].tolist(), c.spend[lo:hi].tolist(), strict=True):
        if period.first <= d <= period.last and (partner < 0 or pt == partner) and (
                store < 0 or st == store):
            s, p = index.stores.names[st], index.partners.names[pt]
            by_store[s] = by_store.get(s, 0) + sp
            by_partner[p] = by_partner.get(p, 0) + sp
    return af.CustomerShare(index.customers.names[who], sum(by_store.values()),
                            len(by_partner), _shares(by_store), _shares(by_partner))


def compute(index: ActivityIndex, name: str, as_of: int, months: int = 12, partner: str = "",
            store_id: str = "", *, sales_split: int | None = None,
            margin_split: int | None = None, top: int = 20, listed: int | None = None) -> Any:
    """One view from the index: equal to domain/customers/views.py over its rows, with
    RFM's customers and churn's became-at-risk cut to their first `listed` (None: all)."""
    now, before = views.periods(as_of, months)
    p, s = index.scope(partner, store_id)
    if name == "pyramid":
        return pyramid(index, index.totals(now, p, s), index.totals(before, p, s), now)
    if name == "matrix":
        return matrix(index.totals(now, p, s), now, sales_split, margin_split)
    if name == "rfm":
        return rfm(index, index.totals(now, p, s), as_of, now, listed)
    if name == "churn":
        return churn(index, p, s, as_of, months, index.totals(before, p, s),
                     index.totals(now, p, s), listed)
    if name == "visits":
        return visit_times(index, p, s, now)
    if name == "affinity":
        return affinity(index, partner, p, s, now, flows=not partner and not store_id,
                        top=top)
    raise ValueError(name)


# ------------------------------------------------------------------------------ per runner

_indexes: weakref.WeakKeyDictionary[ProjectionRunner, ActivityIndex] = (
    weakref.WeakKeyDictionary())
_indexes_lock = threading.Lock()


_POSITIONS = {"sqlite": "group_concat(log_partition || ':' || position, ',')",
              "postgres": "string_agg(log_partition || ':' || position, ',')"}


def _load(store: EventStore) -> ActivityIndex:
    """The table's rows and the model's positions (every lane's, as "lane:position,..."),
    read in one statement (one snapshot)."""
    with store.session(commit=False) as session:
        zones = dict(session.query("SELECT store_id, timezone FROM proj_cust_stores"))
        rows = session.query(
            f"SELECT (SELECT {_POSITIONS[session.dialect]} FROM projection_positions "
            "WHERE name = p.name), a.customer, a.store_id, a.partner_id, a.day, a.hour, "
            "a.visits, a.spend_minor, a.margin_minor FROM projection_positions p "
            "LEFT JOIN proj_cust_activity a ON 1 = 1 WHERE p.name = ? AND p.log_partition = 0",
            (cm.NAME,))
    positions = {int(lane): int(at) for lane, at in (
        pair.split(":") for pair in str(rows[0][0]).split(","))} if rows else {}
    index = ActivityIndex(zones=zones, position=positions)
    if rows and rows[0][1] is not None:  # else the table is empty: one row of NULLs
        index.add_columns(list(zip(*rows, strict=True))[1:])
    return index


def model_positions(store: EventStore) -> dict[int, int]:
    """The model's position in each lane of the log ({0: p} on one log)."""
    with store.session(commit=False) as session:
        found = session.query("SELECT log_partition, position FROM projection_positions "
                              "WHERE name = ?", (cm.NAME,))
    return {int(lane): int(at) for lane, at in found}


def index_of(runner: ProjectionRunner) -> ActivityIndex:
    """The runner's model in memory, at the model's positions as they are now."""
    with _indexes_lock:
        index = _indexes.get(runner)
    targets = model_positions(runner.store)
    if index is None or any(at < index.positions.get(lane, 0)  # new, or the model was
                            for lane, at in targets.items()):  # rebuilt since
        index = _load(runner.store)
        with _indexes_lock:
            _indexes[runner] = index
    with index.lock:
        index.follow(runner.store, targets)
    return index


def query(runner: ProjectionRunner, name: str, as_of: int, months: int = 12,
          partner: str = "", store_id: str = "", **options: Any) -> Any:
    index = index_of(runner)
    with index.lock:
        return compute(index, name, as_of, months, partner, store_id, **options)


def rows_of(index: ActivityIndex) -> Sequence[tuple[Any, ...]]:
    """The index's rows as (customer, store, partner, day, hour, visits, spend, margin)."""
    c = index.columns
    return list(zip([index.customers.names[i] for i in c.cust.tolist()],
                    [index.stores.names[i] for i in c.store.tolist()],
                    [index.partners.names[i] for i in c.partner.tolist()], c.day.tolist(),
                    c.hour.tolist(), c.visits.tolist(), c.spend.tolist(), c.margin.tolist(),
                    strict=True))
