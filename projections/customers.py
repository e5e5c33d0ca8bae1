"""The customer read model (issue 10, section 1): each customer's purchases and returns summed
per store, local day and local hour, from which domain/customers computes the pyramid, value
matrix, RFM, churn warning, visit times and store affinity as of any day.

One model on the runner (projections/runner.py): rows and position in one transaction per
batch, so it is exactly once on SQLite and PostgreSQL, resumable, and `rebuild()` gives the
same rows (`digest`). It holds references and figures only: customer references (or
`card:<number>` for a card without one, domain/customers/identity.py), store and partner ids,
day numbers and integer sums; no personal data.

Tables (dropped and rebuilt from the log by `ProjectionRunner.rebuild`):

- `proj_cust_activity(customer, store_id, partner_id, day, hour, visits, spend_minor,
  margin_minor)`, keyed by (customer, store_id, day, hour): `day` the store's local date as
  days since 1970-01-01 and `hour` its local hour, as the purchase recorded them
  (`PurchaseMade.local_date`, `minute_of_day`); `visits` the purchases; `spend_minor` their
  net spend: total less discounts and coupons (what the customer paid in stored value, points
  and other tenders), less returns; `margin_minor` the lines' recorded margin (per unit x
  quantity) less the returned units'. A return is counted at the purchase's store and partner,
  on the local day and hour (the store's timezone) when it was recorded, with no visit: it
  takes back the purchase's spend in proportion to the returned lines' value (rounded down)
  and the returned units' margin. First and last visit, per-store and per-partner spend and
  weekday/hour counts are sums and min/max over these rows.
- `proj_cust_cards(stream_id, customer)`: the customer of every card (a replacement card's is
  the replaced card's).
- `proj_cust_stores(store_id, partner_id, timezone)`: from the registry, for returns.

Cost per batch: one decode per log row, dictionary sums, one bulk upsert of the touched
(customer, store, day, hour) rows, the new cards and stores; a return reads its purchase's
event back from the log (one indexed read) unless the purchase is in the same batch.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Notification

from domain.cards import events as ev
from domain.customers import identity
from domain.customers.activity import (
    EPOCH_ORDINAL,
    Activity,
    day_number,
)
from domain.registry.events import StoreRegistered
from ledger import limits
from ledger.codec import REGISTRY_ID, card_stream_id, decode_event
from ledger.store import EventStore, Session
from projections.runner import ProjectionRunner, SharedLog

NAME = "customers"
# The kinds of event the model reads (a log row's topic is its event's tag).
TOPICS = frozenset(kind.__struct_config__.tag for kind in (
    ev.PurchaseMade, ev.PurchaseReturned, ev.CardIssued, ev.CardIssuedAsReplacement,
    StoreRegistered))
TABLES = ("proj_cust_activity", "proj_cust_cards", "proj_cust_stores")
CARDS_KEPT = 200_000  # card -> customer kept in memory (~150 bytes each), then let go
Stream = int

# (customer, store, day, hour) -> [partner, visits, spend, margin]
Key = tuple[str, str, int, int]


# A purchase as a return needs it: (store, partner, net spend, ((quantity, unit price,
# unit margin), ...)).
Purchase = tuple[str, str, int, tuple[tuple[int, int, int], ...]]


def purchase_spend(e: ev.PurchaseMade) -> int:
    """What the customer paid: total less discounts and coupons (stored value, points and
    other tenders together)."""
    return e.total_minor - e.discount_minor - sum(u.amount_minor for u in e.coupons_used)


def returned(lines: Sequence[tuple[int, int, int]], spend: int,
             back: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """(spend, margin) a return of `back` ((line index, quantity), ...) takes back."""
    gross = sum(q * price for q, price, _ in lines)
    value = sum(q * lines[i][1] for i, q in back)
    margin = sum(q * lines[i][2] for i, q in back)
    return (spend * value // gross if gross > 0 else 0), margin


_days: dict[str, int] = {}
_zones: dict[str, ZoneInfo] = {}


def _day(local_date: str) -> int:
    found = _days.get(local_date)
    if found is None:
        if len(_days) > 100_000:
            _days.clear()
        found = _days[local_date] = day_number(local_date)
    return found


def _zone_of(timezone: str) -> ZoneInfo:
    zone = _zones.get(timezone)
    if zone is None:
        try:
            zone = ZoneInfo(timezone or "UTC")
        except (ValueError, KeyError):
            zone = ZoneInfo("UTC")
        _zones[timezone] = zone
    return zone


def local_day_hour(at_us: int, timezone: str) -> tuple[int, int]:
    zone = _zone_of(timezone)
    local = dt.datetime.fromtimestamp(at_us // 1_000_000, zone)
    return day_number(local.date().isoformat()), local.hour


def _bulk(session: Session, head: str, types: Sequence[str], rows: Sequence[Sequence[Any]],
          tail: str = "") -> None:
    if not rows:
        return
    if session.dialect == "sqlite":
        session.executemany(f"{head} VALUES ({', '.join('?' * len(types))}) {tail}", rows)
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    session.execute(f"{head} SELECT * FROM unnest({', '.join(f'%b::{t}[]' for t in types)}) "
                    f"{tail}", columns)


class Batch:
    def __init__(self) -> None:
        self.activity: dict[Key, list[Any]] = {}
        self.cards: list[tuple[bytes, str]] = []
        self.stores: list[tuple[str, str, str]] = []
        self.unknown_cards = 0


class CustomersModel:
    name = NAME
    # prepare reads of its tables only facts that never change once written (a card's
    # customer, a store's partner and timezone), kept in memory from the batches it prepared:
    # the runner may prepare a batch while the one before is being written.
    overlap = True

    def __init__(self) -> None:
        self.cards: dict[Stream, str] = {}
        self.stores: dict[str, tuple[str, str]] = {}  # store -> (partner, timezone)
        self.stores_loaded = False
        self.unknown_cards = 0  # purchases on cards this model never saw issued

    def create(self, session: Session) -> None:
        blob = "BLOB" if session.dialect == "sqlite" else "BYTEA"
        room = "" if session.dialect == "sqlite" else " WITH (fillfactor = 80)"
        for sql in (
            "proj_cust_activity (customer TEXT NOT NULL, store_id TEXT NOT NULL, "
            "partner_id TEXT NOT NULL, day INTEGER NOT NULL, hour INTEGER NOT NULL, "
            "visits BIGINT NOT NULL, spend_minor BIGINT NOT NULL, margin_minor BIGINT NOT NULL,"
            " PRIMARY KEY (customer, store_id, day, hour))" + room,
            f"proj_cust_cards (stream_id {blob} PRIMARY KEY, customer TEXT NOT NULL)",
            "proj_cust_stores (store_id TEXT PRIMARY KEY, partner_id TEXT NOT NULL, "
            "timezone TEXT NOT NULL)",
        ):
            session.execute("CREATE TABLE IF NOT EXISTS " + sql)
        session.execute("CREATE INDEX IF NOT EXISTS proj_cust_activity_partner ON "
                        "proj_cust_activity (partner_id, day)")

    def drop(self, session: Session) -> None:
        for table in TABLES:
            session.execute(f"DROP TABLE IF EXISTS {table}")
        self.cards.clear()
        self.stores.clear()
        self.stores_loaded = False

    # ------------------------------------------------------------------ prepare

    def _look_up(self, store: EventStore, streams: set[Stream]) -> None:
        with store.session(commit=False) as session:
            if not self.stores_loaded:
                for store_id, partner, timezone in session.query(
                        "SELECT store_id, partner_id, timezone FROM proj_cust_stores"):
                    self.stores.setdefault(store_id, (partner, timezone))
                self.stores_loaded = True
            ids = sorted(streams)
            step = limits.PROJECTION_STATES_PER_QUERY
            for start in range(0, len(ids), step):
                chunk = [i.to_bytes(16, "big") for i in ids[start:start + step]]
                for stream_id, customer in session.query(
                        "SELECT stream_id, customer FROM proj_cust_cards "
                        f"WHERE stream_id IN ({', '.join('?' * len(chunk))})", chunk):
                    self.cards[int.from_bytes(bytes(stream_id), "big")] = customer

    def _zone(self, store: EventStore, store_id: str) -> str:
        """A store's timezone; read again from the table when not in memory (another runner
        may have applied the batch that registered it)."""
        found = self.stores.get(store_id)
        if found is None:
            with store.session(commit=False) as session:
                for row in session.query("SELECT partner_id, timezone FROM proj_cust_stores "
                                         "WHERE store_id = ?", (store_id,)):
                    found = self.stores[store_id] = (row[0], row[1])
        return found[1] if found is not None else "UTC"

    def prepare(self, store: EventStore, rows: Sequence[Notification]) -> Batch:
        collecting = gc.isenabled()
        gc.disable()  # as in the finance model: nothing here makes a cycle
        try:
            return self._prepare(store, rows)
        finally:
            if collecting:
                gc.enable()

    def _prepare(self, store: EventStore, rows: Sequence[Notification]) -> Batch:
        # Only the rows of the kinds this model reads are decoded: the topic is the event's
        # tag, so authorizations, loads and the rest cost a set look-up each.
        topics = TOPICS
        registry = REGISTRY_ID.int
        decode = decode_event
        decoded = [(row.originator_id.int, decode(row.state)) for row in rows
                   if row.topic in topics]
        cards = self.cards
        issued = (ev.CardIssued, ev.CardIssuedAsReplacement)
        missing = {s for s, e in decoded
                   if s != registry and s not in cards and type(e) not in issued}
        missing |= {card_stream_id(e.replaces).int for _, e in decoded
                    if type(e) is ev.CardIssuedAsReplacement}
        missing -= cards.keys()
        if missing or not self.stores_loaded:
            self._look_up(store, missing)
        b = Batch()
        activity = b.activity
        made: dict[str, ev.PurchaseMade] = {}  # this batch's purchases, for its returns
        days = _days
        for stream, event in decoded:
            kind = type(event)
            if kind is ev.PurchaseMade:
                customer = cards.get(stream)
                if customer is None:
                    self.unknown_cards += 1
                    b.unknown_cards += 1
                    continue
                store_id, partner = event.meta.store_id, event.acquirer_partner_id
                spend = event.total_minor - event.discount_minor
                for use in event.coupons_used:
                    spend -= use.amount_minor
                margin = 0
                for line in event.lines:
                    margin += line.quantity * line.margin_minor
                made[event.purchase_id] = event
                local_date = event.local_date
                if local_date:
                    day = days.get(local_date)
                    if day is None:
                        day = _day(local_date)
                    hour = event.minute_of_day // 60
                else:
                    day, hour = local_day_hour(event.meta.recorded_at_us,
                                               self._zone(store, store_id))
                key = (customer, store_id, day, hour)
                row = activity.get(key)
                if row is None:
                    activity[key] = [partner, 1, spend, margin]
                else:
                    row[1] += 1
                    row[2] += spend
                    row[3] += margin
            elif kind is ev.PurchaseReturned:
                customer = cards.get(stream)
                if customer is None:
                    self.unknown_cards += 1
                    b.unknown_cards += 1
                    continue
                bought = made.get(event.purchase_id)
                original = (_facts(bought) if bought is not None
                            else _purchase(store, event.purchase_id))
                if original is None:
                    continue  # a purchase the log does not hold (never: returns need one)
                store_id, partner, spend, lines = original
                back_spend, back_margin = returned(lines, spend, event.lines)
                day, hour = local_day_hour(event.meta.recorded_at_us,
                                           self._zone(store, store_id))
                key = (customer, store_id, day, hour)
                row = activity.get(key)
                if row is None:
                    activity[key] = [partner, 0, -back_spend, -back_margin]
                else:
                    row[2] -= back_spend
                    row[3] -= back_margin
            elif kind is ev.CardIssued:
                customer = identity.own_customer(event.card_number, event.customer_ref)
                cards[stream] = customer
                b.cards.append((stream.to_bytes(16, "big"), customer))
            elif kind is ev.CardIssuedAsReplacement:
                customer = identity.replacement_customer(
                    event.replaces, event.customer_ref,
                    lambda number: cards.get(card_stream_id(number).int))
                cards[stream] = customer
                b.cards.append((stream.to_bytes(16, "big"), customer))
            elif kind is StoreRegistered and stream == registry:
                self.stores.setdefault(event.store_id, (event.partner_id, event.timezone))
                b.stores.append((event.store_id, event.partner_id, event.timezone))
        if len(cards) > CARDS_KEPT:  # keep this batch's: the next may need them unwritten
            keep = {s for s, _ in decoded}
            self.cards = {s: c for s, c in cards.items() if s in keep}
        return b

    # ------------------------------------------------------------------ write

    def write(self, session: Session, b: Batch) -> None:
        _bulk(session, "INSERT INTO proj_cust_cards (stream_id, customer)", ("bytea", "text"),
              b.cards, "ON CONFLICT (stream_id) DO NOTHING")
        _bulk(session, "INSERT INTO proj_cust_stores (store_id, partner_id, timezone)",
              ("text", "text", "text"), b.stores, "ON CONFLICT (store_id) DO NOTHING")
        _bulk(session, "INSERT INTO proj_cust_activity (customer, store_id, partner_id, day, "
              "hour, visits, spend_minor, margin_minor)",
              ("text", "text", "text", "integer", "integer", "bigint", "bigint", "bigint"),
              [(c, s, p, d, h, v, sp, m) for (c, s, d, h), (p, v, sp, m)
               in b.activity.items()],
              "ON CONFLICT (customer, store_id, day, hour) DO UPDATE SET "
              "visits = proj_cust_activity.visits + excluded.visits, "
              "spend_minor = proj_cust_activity.spend_minor + excluded.spend_minor, "
              "margin_minor = proj_cust_activity.margin_minor + excluded.margin_minor")


def _facts(event: ev.PurchaseMade) -> Purchase:
    return (event.meta.store_id, event.acquirer_partner_id, purchase_spend(event),
            tuple((line.quantity, line.unit_price_minor, line.margin_minor)
                  for line in event.lines))


def _purchase(store: EventStore, purchase_id: str) -> Purchase | None:
    """A purchase's store, partner, spend and lines, read back from its card's stream."""
    number, _, version = purchase_id.rpartition(".")
    if not number or not version.isdigit():
        return None
    found = store.stream(card_stream_id(number), gt=int(version) - 1, lte=int(version))
    if not found:
        return None
    event = decode_event(found[0].state)
    if not isinstance(event, ev.PurchaseMade):
        return None
    return _facts(event)


def customers_runner(store: EventStore, log: SharedLog | None = None) -> ProjectionRunner:
    return ProjectionRunner(store, CustomersModel(), log=log)


_DIGEST_QUERIES = (
    "SELECT customer, store_id, partner_id, day, hour, visits, spend_minor, margin_minor "
    "FROM proj_cust_activity WHERE visits <> 0 OR spend_minor <> 0 OR margin_minor <> 0 "
    "ORDER BY customer, store_id, day, hour",
    "SELECT stream_id, customer FROM proj_cust_cards ORDER BY stream_id",
    "SELECT store_id, partner_id, timezone FROM proj_cust_stores ORDER BY store_id",
)


def digest(runner: ProjectionRunner) -> str:
    """blake2b-256 over every row of the model's tables in key order (hex): a model rebuilt
    from the log gives the digest of the model that followed it live."""
    h = hashlib.blake2b(b"loyalty-ledger/customers-read-model/v1\n", digest_size=32)
    # Every row read in one transaction, hashed after it: hashing a million rows inside it
    # would outlast PostgreSQL's idle-in-transaction timeout (5 s on these connections).
    with runner.store.session(commit=False) as session:
        tables = [(sql, session.query(sql)) for sql in _DIGEST_QUERIES]
    for sql, rows in tables:
        h.update(sql.encode() + b"\n")
        for row in rows:
            h.update(repr(tuple(bytes(v) if isinstance(v, bytes | memoryview) else v
                                for v in row)).encode() + b"\n")
    return h.hexdigest()


# ------------------------------------------------------------------------------ reading


def activity(runner: ProjectionRunner, last_day: int, first_day: int = 0, partner: str = "",
             store_id: str = "") -> list[Activity]:
    """The rows of the scope from `first_day` to `last_day` (local day numbers)."""
    sql, params = _scoped("SELECT customer, store_id, partner_id, day, hour, visits, "
                          "spend_minor, margin_minor FROM proj_cust_activity", first_day,
                          last_day, partner, store_id)
    with runner.store.session(commit=False) as session:
        rows = session.query(sql, params)
    return [Activity(*row) for row in rows]


def utc_hour(day: int, hour: int, timezone: str) -> int:
    """Local day number and hour in `timezone` -> hours since the epoch, UTC (the earlier
    of two in a repeated hour; a skipped hour as if the clock had not jumped)."""
    _zone_of(timezone)
    local = dt.datetime.fromordinal(day + EPOCH_ORDINAL).replace(hour=hour,
                                                                 tzinfo=_zones[timezone])
    return int(local.timestamp()) // 3_600


VIEWS = ("pyramid", "matrix", "rfm", "churn", "visits", "affinity")


def _scoped(sql: str, first_day: int, last_day: int, partner: str, store_id: str,
            tail: str = "") -> tuple[str, list[Any]]:
    sql += " WHERE day >= ? AND day <= ?"
    params: list[Any] = [first_day, last_day]
    if partner:
        sql += " AND partner_id = ?"
        params.append(partner)
    if store_id:
        sql += " AND store_id = ?"
        params.append(store_id)
    return sql + tail, params


def view(runner: ProjectionRunner, name: str, as_of: int, months: int = 12,
         partner: str = "", store_id: str = "", *, sales_split: int | None = None,
         margin_split: int | None = None, top: int = 20, listed: int | None = None,
         current: bool = True) -> Any:
    """One view of the scope (a partner's stores, one store, or "" for the alliance) as of
    local day `as_of`, as the plain struct of domain/customers (equal to
    domain/customers/views.py over the scope's rows), computed from the model's rows held in
    memory (projections/customer_index.py) at the model's position. `top`: affinity's
    customers; `listed`: RFM's customers and churn's became-at-risk cut to their first
    `listed` (None: every one; building 100,000 scored rows takes longer than scoring them).
    With `current` the model first catches up with the log's end as it is now."""
    # imported here: customer_index builds on this module (the model, its tables)
    from projections import customer_index

    if name not in VIEWS:
        raise ValueError(name)
    if current:
        runner.catch_up()
    return customer_index.query(runner, name, as_of, months, partner, store_id,
                                sales_split=sales_split, margin_split=margin_split, top=top,
                                listed=listed)
