"""The finance read model (issue 9, section 6): balances per card and purse, and every
movement summed by UTC day, account, entity and kind, for the liability, roll-forward and
breakage reports (domain/liability) and for a finance team's own SQL.

One model on the runner (projections/runner.py): its rows and position are written in one
transaction per batch, so it is exactly once on SQLite and PostgreSQL, resumable, and
`rebuild()` gives the same rows (`digest`). It reads nothing of its own tables but facts that
never change once written (a card's number, issuer and currency; a lot's program and vesting
time; a program's definitions), kept in memory after the first read, so a batch costs one
decode per row, a few dictionary additions per leg, and one write per distinct sum.

Tables (plain SQL; amounts are integers, money in minor units of `currency`):

- `proj_fin_cards(stream_id, card_number, issuer, currency, available_minor, held_minor)`:
  each card's stored value as recorded in the log (a hold whose time is up counts as held
  until its release is recorded, by the card's next write or the hourly maintenance).
- `proj_fin_card_points(stream_id, program, points, debt)`: each card's points outstanding
  per program (vested and pending together) and the points it owes after returns.
- `proj_fin_lots(lot_id, stream_id, program, vests_at_us, pending)`: every points lot: its
  program, when it vests, and how many of its points are pending (earned, less what was
  taken back before it vested). A card's pending points at time T:
  `SELECT sum(pending) FROM proj_fin_lots WHERE stream_id = ? AND program = ? AND
  vests_at_us > T`; its vested points are `points` less that.
- `proj_fin_programs(program, position, valid_from_us, currency, point_value_micros)`: every
  definition of a points program (a point's value in millionths of a minor unit), by log
  position.
- `proj_fin_money(day, currency, account, entity, counterparty, kind, amount_minor)`: the
  legs of every movement (domain/postings.py) summed per UTC day ("YYYY-MM-DD" of the event's
  recorded time). `account` is the account's class: `card_available`, `card_held` (entity:
  the card's issuer), `partner_sv_funding` (entity: the issuer), `clearing` (entity: the
  issuer, counterparty: the partner whose store took the value), `coupons_funding`,
  `coupons_given`, and the points legs (`points_outstanding`, `points_sold`,
  `points_redeemed`, `points_breakage`, `exchange`, ...): `x:e:side` becomes class `x_side`,
  `x:e:o` class `x` with counterparty `o`, `x:e:o:side` class `x_side` (account_class).
  `kind` is the movement (KINDS: LOADED, LOAD_REVERSED, AUTHORIZED, CAPTURED, HOLD_VOIDED,
  HOLD_REVERSED, HOLD_EXPIRED, CAPTURE_REVERSED, REFUNDED, PURCHASE, RETURN, REPLACED,
  POINTS_EXPIRED, EXCHANGED; an event kind with legs this table does not name: its tag).
  Rows sum to zero per (day, currency, kind) as the legs do.
- `proj_fin_points(day, program, issuer, bucket, kind, points)`: points movements per UTC day,
  program and issuing partner of the card. Buckets `VESTED`, `PENDING` (outstanding),
  `DEBT` (owed by cards), `WRITTEN_OFF` (clawed back after being spent: the program's loss).
  Kinds EARNED, REDEEMED, RESTORED, CLAWED_BACK, EXPIRED, EXCHANGED_IN, EXCHANGED_OUT,
  DEBT_ADDED, DEBT_SETTLED, RETURN (a write-off), VESTING (pending to vested, on the day the
  lot vests: rows may be dated in the future; a report as of a day counts the vesting up to
  its end).

A lot's program: the program the card's issuer earned in when the lot was earned (its own
program, else the alliance's, as the registry stood at that row of the log), or the lot's own
`program` (points received by exchange). New kinds of movement: legs land in `proj_fin_money` with
no change here (kind = the event's tag); a new kind of points movement is one entry in
`_POINTS` (a function of the event that calls `take`/`earn`), and a roll-forward line for
either is one entry in domain/liability/reports.py's SV_LINES or POINTS_LINES.
"""

from __future__ import annotations

import gc
import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from domain.cards import events as ev
from domain.liability import days, reports
from domain.liability.reports import ProgramValue
from domain.points.program import ALLIANCE
from domain.registry.events import REGISTRY_EVENTS, ProgramDefined
from ledger import limits
from ledger.codec import EVENT_TYPES, REGISTRY_ID, card_stream_id, decode_event, lean_decoder
from ledger.store import EventStore, LogRow, Session
from projections.runner import ProjectionRunner, SharedLog, arrays, bulk

NAME = "finance"
TABLES = ("proj_fin_cards", "proj_fin_card_points", "proj_fin_lots", "proj_fin_programs",
          "proj_fin_money", "proj_fin_points")
# Facts kept in memory, then let go but for the batch at hand (a cache: what is let go is read
# back from the tables when needed): a card ~600 bytes (its number, accounts and row keys),
# a lot ~200 bytes, so at most ~60 MB and ~40 MB.
CARDS_KEPT = 100_000
LOTS_KEPT = 200_000

KINDS: dict[type, str] = {
    ev.ValueLoaded: "LOADED",
    ev.LoadReversed: "LOAD_REVERSED",
    ev.ValueAuthorized: "AUTHORIZED",
    ev.AuthorizationCaptured: "CAPTURED",
    ev.CaptureReversed: "CAPTURE_REVERSED",
    ev.ValueRefunded: "REFUNDED",
    ev.PurchaseMade: "PURCHASE",
    ev.PurchaseReturned: "RETURN",
    ev.CardReplaced: "REPLACED",
    ev.PointsExpired: "POINTS_EXPIRED",  # their value, points:{p}:outstanding -> breakage
    ev.PointsExchanged: "EXCHANGED",
}  # AuthorizationReleased: "HOLD_" + its reason


def _tag(event_type: Any) -> str:
    return event_type.__struct_config__.tag  # type: ignore[no-any-return]


_parsed: dict[str, tuple[str, str, str]] = {}
# The last part of an account that names its side rather than a counterparty.
SIDES = frozenset({"available", "held", "sv_funding", "funding", "given", "outstanding"})


def account_class(account: str) -> tuple[str, str, str]:
    """(class, entity, counterparty) of a non-card account of domain/postings.py:
    `kind:entity:side` -> (kind_side, entity, ""), `kind:entity:other` -> (kind, entity,
    other), `kind:entity:other:side` -> (kind_side, entity, other)."""
    found = _parsed.get(account)
    if found is None:
        head, _, rest = account.partition(":")
        parts = rest.split(":")
        if len(parts) == 1:
            found = (head, rest, "")
        elif len(parts) == 2 and parts[1] not in SIDES:
            found = (head, parts[0], parts[1])
        else:
            found = (f"{head}_{parts[-1]}", parts[0], ":".join(parts[1:-1]))
        if len(_parsed) > 100_000:
            _parsed.clear()
        _parsed[account] = found
    return found


# A card in memory: [number, issuer, currency, its available account, its held account, the
# key of each in a batch's money sums (`_card_key`), its row key, and what the batch being
# prepared moved on each account, and that batch] (a list: the sums are added in place, with
# no dictionary lookup per leg).
Card = list[Any]
AVAILABLE, HELD, MARK = 8, 9, 10  # the batch's sums and the batch, in a Card
Lot = tuple[str, int]  # (program, vests_at_us)
Stream = int  # a stream id as its 128-bit integer: hashed in C, unlike uuid.UUID


_CARD_SIDES = (":available", ":held")


# A batch sums money per (day, kind, currency) and then per key: the account itself for an
# account that is not a card's, or for every card of an issuer one key per side, made once
# (one string object, so its hash is computed once: a tuple's is computed at every lookup).
# The keys start with a NUL, which no account does.
_CARD_KEYS: dict[str, tuple[str, str, str]] = {}  # key -> (class, entity, counterparty)
_card_keys: dict[tuple[str, str], str] = {}


def _card_key(issuer: str, side: str) -> str:
    key = _card_keys.get((issuer, side))
    if key is None:
        key = _card_keys[(issuer, side)] = f"\0{side}\0{issuer}"
        _CARD_KEYS[key] = (f"card_{side}", issuer, "")
    return key


def _money_class(key: str) -> tuple[str, str, str]:
    return _CARD_KEYS.get(key) or account_class(key)


def _card(number: str, issuer: str, currency: str, stream: Stream | None = None) -> Card:
    if stream is None:
        stream = card_stream_id(number).int
    return [number, issuer, currency, f"card:{number}:available", f"card:{number}:held",
            _card_key(issuer, "available"), _card_key(issuer, "held"), _bytes(stream), 0, 0,
            None]


def _day(at_us: int, names: dict[int, str] = days.names) -> str:
    """days.day_of, from its memo when the day has been named (a batch spans a few days)."""
    return names.get(at_us // days.DAY_US) or days.day_of(at_us)


def _bytes(stream: Stream) -> bytes:
    return stream.to_bytes(16, "big")


class Batch:
    """One batch's sums, worked out outside the transaction."""

    def __init__(self, model: FinanceModel) -> None:
        self.model = model
        # (day, kind, currency) -> {an account, or a card key (_card_key): sum}
        self.money: dict[tuple[str, str, str], defaultdict[str, int]] = {}
        self.points: dict[tuple[str, str, str, str, str], int] = defaultdict(int)
        self.touched: set[Stream] = set()  # cards whose row this batch changes
        self.new: set[Stream] = set()  # of those, cards whose row may not be there yet
        self.identities: dict[Stream, tuple[str, str, str]] = {}  # new: number, issuer, cur
        self.available: dict[Stream, int] = {}  # new: the sums of the batch
        self.held: dict[Stream, int] = {}
        self.changed: list[tuple[bytes, int, int]] = []  # the others: row key, sums
        self.card_points: dict[tuple[Stream, str], list[int]] = {}
        self.lots: list[tuple[Any, ...]] = []
        self.pending: dict[str, int] = defaultdict(int)
        self.moved_lots: list[tuple[bytes, bytes]] = []
        self.replaced: list[tuple[bytes]] = []
        self.programs: list[tuple[Any, ...]] = []

    def purse(self, stream: Stream, program: str) -> list[int]:
        key = (stream, program)
        row = self.card_points.get(key)
        if row is None:
            row = self.card_points[key] = [0, 0]
        return row

    # ------------------------------------------------------------------ points

    def earn(self, stream: Stream, issuer: str, program: str, lot_id: str, amount: int,
             vests_at_us: int, at_us: int, kind: str = "EARNED") -> None:
        self.model.lots[lot_id] = (program, vests_at_us)
        self.purse(stream, program)[0] += amount
        pending = at_us < vests_at_us
        self.lots.append((lot_id, _bytes(stream), program, vests_at_us,
                          amount if pending else 0))
        day = _day(at_us)
        if pending:
            self.points[(day, program, issuer, "PENDING", kind)] += amount
            vest_day = _day(vests_at_us)
            self.points[(vest_day, program, issuer, "PENDING", "VESTING")] -= amount
            self.points[(vest_day, program, issuer, "VESTED", "VESTING")] += amount
        else:
            self.points[(day, program, issuer, "VESTED", kind)] += amount

    def lot(self, lot_id: str, owner: str | None) -> Lot:
        """A lot's program and vesting time. A lot this model never saw earned (a kind of
        event that adds lots and has no entry in _POINTS yet) counts as vested points of the
        card's own program, and is counted (`FinanceModel.unknown_lots`) rather than stopping
        the projector."""
        found = self.model.lots.get(lot_id)
        if found is None:
            self.model.unknown_lots += 1
            found = (owner or "", 0)
        return found

    def take(self, stream: Stream, issuer: str, lot_id: str, points: int, at_us: int,
             kind: str, owner: str | None = None) -> None:
        """Points into (+) or out of (-) a lot: pending until the lot vests, vested after."""
        program, vests_at_us = self.lot(lot_id, owner)
        self.purse(stream, program)[0] += points
        day = _day(at_us)
        if at_us < vests_at_us:
            self.points[(day, program, issuer, "PENDING", kind)] += points
            vest_day = _day(vests_at_us)  # what vests then changes by as much
            self.points[(vest_day, program, issuer, "PENDING", "VESTING")] -= points
            self.points[(vest_day, program, issuer, "VESTED", "VESTING")] += points
            self.pending[lot_id] += points
        else:
            self.points[(day, program, issuer, "VESTED", kind)] += points

    def debt(self, stream: Stream, issuer: str, program: str, points: int, at_us: int,
             kind: str) -> None:
        self.purse(stream, program)[1] += points
        self.points[(_day(at_us), program, issuer, "DEBT", kind)] += points


# ---------------------------------------------------------------------- points movements
# event type -> f(batch, stream, card, program of the issuer now, event, at)

def _purchase(b: Batch, stream: Stream, card: Card, program: str | None,
              e: ev.PurchaseMade, at: int) -> None:
    issuer = card[1]
    for lot_id, points in e.redeemed:
        b.take(stream, issuer, lot_id, -points, at, "REDEEMED", program)
    if e.lot is not None:
        lot = e.lot
        b.earn(stream, issuer, getattr(lot, "program", "") or program or "", lot.lot_id,
               lot.amount, lot.vests_at_us, at)
    if e.debt_settled:
        b.debt(stream, issuer, program or "", -e.debt_settled, at, "DEBT_SETTLED")


def _return(b: Batch, stream: Stream, card: Card, program: str | None,
            e: ev.PurchaseReturned, at: int) -> None:
    issuer = card[1]
    for lot_id, points in e.points_restored:
        b.take(stream, issuer, lot_id, points, at, "RESTORED", program)
    for lot_id, points in e.points_clawed:
        b.take(stream, issuer, lot_id, -points, at, "CLAWED_BACK", program)
    if e.points_written_off:
        b.points[(_day(at), program or "", issuer, "WRITTEN_OFF", "RETURN")] += (
            e.points_written_off)
    if e.points_debt_added:
        b.debt(stream, issuer, program or "", e.points_debt_added, at, "DEBT_ADDED")


def _expired(b: Batch, stream: Stream, card: Card, program: str | None,
             e: ev.PointsExpired, at: int) -> None:
    b.take(stream, card[1], e.lot_id, -e.amount, at, "EXPIRED", program)


def _replaced(b: Batch, stream: Stream, card: Card, program: str | None,
              e: ev.CardReplaced, at: int) -> None:
    # The purse moves whole to the replacement (CardIssuedAsReplacement.carried): the program
    # totals do not change; the old card's rows go to zero after this batch's sums.
    b.replaced.append((_bytes(stream),))


def _carried(b: Batch, stream: Stream, card: Card, program: str | None,
             e: ev.CardIssuedAsReplacement, at: int) -> None:
    if e.carried is None:
        return
    for lot in e.carried.lots:
        if lot.remaining:
            b.purse(stream, b.lot(lot.lot_id, program)[0])[0] += lot.remaining
    if e.carried.points_debt:
        b.purse(stream, program or "")[1] += e.carried.points_debt
    b.moved_lots.append((_bytes(stream), card_stream_id(e.replaces).bytes))


def _exchanged(b: Batch, stream: Stream, card: Card, program: str | None,
               e: ev.PointsExchanged, at: int) -> None:
    """Points exchanged between two of the card's purses: out of the lots taken, into a new
    lot of the destination program."""
    issuer = card[1]
    for lot_id, points in e.taken:
        b.take(stream, issuer, lot_id, -points, at, "EXCHANGED_OUT", program)
    lot = e.lot
    b.earn(stream, issuer, getattr(lot, "program", "") or program or "", lot.lot_id,
           lot.amount, lot.vests_at_us, at, "EXCHANGED_IN")


_POINTS: dict[type, Callable[..., None]] = {
    ev.PurchaseMade: _purchase,
    ev.PurchaseReturned: _return,
    ev.PointsExpired: _expired,
    ev.CardReplaced: _replaced,
    ev.CardIssuedAsReplacement: _carried,
    ev.PointsExchanged: _exchanged,
}


def _lot_ids(kind_of: type, event: Any) -> list[str]:
    """The existing lots an event (of type `kind_of`) takes from or gives back to (to look up
    their program)."""
    if kind_of is ev.PurchaseMade:
        return [lot_id for lot_id, _ in event.redeemed]
    if kind_of is ev.PurchaseReturned:
        return [lot_id for lot_id, _ in (*event.points_restored, *event.points_clawed)]
    if kind_of is ev.PointsExpired:
        return [event.lot_id]
    if kind_of is ev.CardIssuedAsReplacement and event.carried is not None:
        return [lot.lot_id for lot in event.carried.lots if lot.remaining]
    return [lot_id for lot_id, _ in getattr(event, "taken", ())]


def _money_rows(money: dict[tuple[str, str, str], defaultdict[str, int]],
                ) -> dict[tuple[str, str, tuple[str, str, str], str], int]:
    """A batch's money sums per row of proj_fin_money: (day, currency, (class, entity,
    counterparty), kind) -> amount."""
    rows: dict[tuple[str, str, tuple[str, str, str], str], int] = defaultdict(int)
    for (day, kind, currency), sums in money.items():
        for key, amount in sums.items():
            rows[(day, currency, _money_class(key), kind)] += amount
    return rows


# The fields of each kind of event the model reads besides `meta` and `legs` (what its points
# handlers, _lot_ids and the loop in FinanceModel._prepare use): events are decoded with
# these only (ledger.codec.lean_decoder). A handler that reads another field needs it here.
FIELDS: dict[type, tuple[str, ...]] = {
    ev.CardIssued: ("card_number", "issuing_partner_id", "currency"),
    ev.CardIssuedAsReplacement: ("card_number", "issuing_partner_id", "currency", "replaces",
                                 "carried"),
    ev.AuthorizationReleased: ("reason",),
    ev.PurchaseMade: ("redeemed", "lot", "debt_settled"),
    ev.PurchaseReturned: ("points_restored", "points_clawed", "points_written_off",
                          "points_debt_added"),
    ev.PointsExpired: ("lot_id", "amount"),
    ev.PointsExchanged: ("taken", "lot"),
}


def _reader(event_type: type) -> tuple[Callable[[bytes], Any], type] | None:
    """How the model decodes events of this type (and the type, to dispatch on), or None
    when it has no use for them: it reads a card's legs, points and issue, and a program's
    definition (every other registry event is passed over)."""
    if event_type in REGISTRY_EVENTS:
        return (decode_event, event_type) if event_type is ProgramDefined else None
    fields: tuple[str, ...] = ("legs",) if "legs" in event_type.__struct_fields__ else ()  # type: ignore[attr-defined]
    fields += FIELDS.get(event_type, ())
    if not fields:
        return None
    return lean_decoder(event_type, fields), event_type


# topic -> (decoder, event type) or None (passed over without decoding); a topic the codec does
# not know is decoded whole, and fails there as it would have.
_READERS = {topic: _reader(t) for topic, t in EVENT_TYPES.items()}
_UNKNOWN = (decode_event, type(None))


class FinanceModel:
    name = NAME
    # prepare reads of its tables only facts it also keeps in memory from the batches it
    # prepared: the runner may prepare a batch while the one before is being written.
    overlap = True

    def __init__(self) -> None:
        # Facts that never change once in the log: safe to keep whatever runner wrote them.
        self.cards: dict[Stream, Card] = {}
        self.lots: dict[str, Lot] = {}
        self.programs: dict[str, int] = {}  # program -> the log id of its first definition
        self.unknown_lots = 0  # lots taken from that no event known here earned

    def create(self, session: Session) -> None:
        blob = "BLOB" if session.dialect == "sqlite" else "BYTEA"
        # Every batch updates a thousand or more card rows in place: room on each page lets
        # PostgreSQL update them without touching the index (HOT updates).
        room = "" if session.dialect == "sqlite" else " WITH (fillfactor = 70)"
        for sql in (
            f"proj_fin_cards (stream_id {blob} PRIMARY KEY, card_number TEXT NOT NULL, "
            "issuer TEXT NOT NULL, currency TEXT NOT NULL, available_minor BIGINT NOT NULL, "
            "held_minor BIGINT NOT NULL)" + room,
            f"proj_fin_card_points (stream_id {blob} NOT NULL, program TEXT NOT NULL, "
            "points BIGINT NOT NULL, debt BIGINT NOT NULL, PRIMARY KEY (stream_id, program))"
            + room,
            f"proj_fin_lots (lot_id TEXT PRIMARY KEY, stream_id {blob} NOT NULL, "
            "program TEXT NOT NULL, vests_at_us BIGINT NOT NULL, pending BIGINT NOT NULL)",
            "proj_fin_programs (program TEXT NOT NULL, position BIGINT NOT NULL, "
            "valid_from_us BIGINT NOT NULL, currency TEXT NOT NULL, "
            "point_value_micros BIGINT NOT NULL, PRIMARY KEY (program, position))",
            "proj_fin_money (day TEXT NOT NULL, currency TEXT NOT NULL, account TEXT NOT NULL,"
            " entity TEXT NOT NULL, counterparty TEXT NOT NULL, kind TEXT NOT NULL, "
            "amount_minor BIGINT NOT NULL, "
            "PRIMARY KEY (day, currency, account, entity, counterparty, kind))",
            "proj_fin_points (day TEXT NOT NULL, program TEXT NOT NULL, issuer TEXT NOT NULL, "
            "bucket TEXT NOT NULL, kind TEXT NOT NULL, points BIGINT NOT NULL, "
            "PRIMARY KEY (day, program, issuer, bucket, kind))",
        ):
            session.execute("CREATE TABLE IF NOT EXISTS " + sql)
        session.execute("CREATE INDEX IF NOT EXISTS proj_fin_lots_stream ON proj_fin_lots "
                        "(stream_id)")

    def drop(self, session: Session) -> None:
        for table in TABLES:
            session.execute(f"DROP TABLE IF EXISTS {table}")

    # ------------------------------------------------------------------ prepare

    def _enter(self, stream: Stream, number: str, issuer: str, currency: str,
               b: Batch) -> Card:
        """A card into the cache (issued, or named by a replacement's legs), with what the
        batch has summed on it so far if it was there."""
        known = self.cards.get(stream)
        card = self.cards[stream] = _card(number, issuer, currency, stream)
        if known is not None and known[MARK] is b:
            card[AVAILABLE], card[HELD], card[MARK] = known[AVAILABLE], known[HELD], b
        return card

    def _look_up(self, store: EventStore, streams: set[Stream], lot_ids: set[str],
                 programs: bool = True) -> dict[str, int]:
        """Fill the caches for `streams` and `lot_ids`; every program's first position
        (with `programs`)."""
        found: dict[str, int] = {}
        with store.session(commit=False) as session:
            step = limits.PROJECTION_STATES_PER_QUERY
            ids = sorted(streams)
            for start in range(0, len(ids), step):
                chunk = [_bytes(i) for i in ids[start:start + step]]
                for stream_id, number, issuer, currency in session.query(
                        "SELECT stream_id, card_number, issuer, currency FROM proj_fin_cards "
                        f"WHERE stream_id IN ({', '.join('?' * len(chunk))})", chunk):
                    stream = int.from_bytes(bytes(stream_id), "big")
                    self.cards[stream] = _card(number, issuer, currency, stream)
            wanted = sorted(lot_ids)
            for start in range(0, len(wanted), step):
                lots = wanted[start:start + step]
                for lot_id, program, vests_at_us in session.query(
                        "SELECT lot_id, program, vests_at_us FROM proj_fin_lots "
                        f"WHERE lot_id IN ({', '.join('?' * len(lots))})", lots):
                    self.lots[lot_id] = (program, int(vests_at_us))
            if programs:
                found = {program: int(position) for program, position in session.query(
                    "SELECT program, min(position) FROM proj_fin_programs GROUP BY program")}
        for program, position in self.programs.items():  # the batch before may be unwritten
            found[program] = min(position, found.get(program, position))
        return found

    def prepare(self, store: EventStore, rows: Sequence[LogRow]) -> Batch:
        # A batch makes ~10 objects per row that all live until its end: the cyclic
        # collector would walk them again and again (measured: decoding runs at half speed
        # with it on). Nothing here makes a cycle, so it is off for the batch.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._prepare(store, rows)
        finally:
            if collecting:
                gc.enable()

    def _prepare(self, store: EventStore, rows: Sequence[LogRow]) -> Batch:
        # The hot loop of a catch-up, one pass: each row is decoded and summed at once (its
        # objects are still in the CPU's cache, and freed before the next); rows of topics
        # the model has no use for are never decoded; a card's own accounts are compared as
        # whole strings and summed in place in its cache entry, and under one key per issuer
        # in the money sums of the event's (day, kind, currency). Points movements, which
        # may need lots looked up, are applied after the pass, in log order.
        cards = self.cards
        registry = REGISTRY_ID.int
        streams = {row.originator_id.int for row in rows}
        streams.difference_update(cards.keys())
        streams.discard(registry)
        # Every program's first definition: from then on its owner's cards earn in it.
        first = self._look_up(store, streams, set())
        b = Batch(self)
        money, new = b.money, b.new
        touched: list[Stream] = []  # cards whose sums this batch adds to
        points: list[tuple[int, Stream, Card, type, Any]] = []
        readers, unknown = _READERS, _UNKNOWN
        kinds, points_handlers = KINDS, _POINTS
        day_names, day_us = days.names, days.DAY_US
        issued = (ev.CardIssued, ev.CardIssuedAsReplacement)
        for row in rows:
            reader = readers.get(row.topic, unknown)
            if reader is None:
                continue
            decode, kind_of = reader
            event = decode(row.state)
            stream = row.originator_id.int
            if stream == registry:
                if kind_of is ProgramDefined:
                    p = event.program
                    first.setdefault(p.owner, row.id)
                    self.programs.setdefault(p.owner, first[p.owner])
                    b.programs.append((p.owner, row.id, event.meta.recorded_at_us, p.currency,
                                       p.point_value_micros))
                continue
            if kind_of in issued:
                card = self._enter(stream, event.card_number,  # type: ignore[union-attr]
                                   event.issuing_partner_id, event.currency, b)  # type: ignore
                new.add(stream)
            else:
                card = cards[stream]
            legs = getattr(event, "legs", None)
            if legs:
                if card[MARK] is not b:
                    card[MARK] = b
                    touched.append(stream)
                kind = kinds.get(kind_of)
                if kind is None:
                    kind = ("HOLD_" + event.reason if kind_of is ev.AuthorizationReleased
                            else _tag(kind_of))
                at = event.meta.recorded_at_us
                day = day_names.get(at // day_us) or days.day_of(at)
                currency, own_available, own_held = card[2], card[3], card[4]
                sums = money.get((day, kind, currency))
                if sums is None:
                    sums = money[(day, kind, currency)] = defaultdict(int)
                for account, amount in legs:
                    if account == own_available:
                        card[AVAILABLE] += amount
                        sums[card[5]] += amount
                    elif account == own_held:
                        card[HELD] += amount
                        sums[card[6]] += amount
                    elif account.startswith("card:") and account.endswith(_CARD_SIDES):
                        # the replacement's side of a CardReplaced
                        number, _, side = account[5:].rpartition(":")
                        other = card_stream_id(number).int
                        replacement = self._enter(other, number, card[1], currency, b)
                        new.add(other)
                        if replacement[MARK] is not b:
                            replacement[MARK] = b
                            touched.append(other)
                        held_side = side == "held"
                        replacement[HELD if held_side else AVAILABLE] += amount
                        sums[replacement[6 if held_side else 5]] += amount
                    else:
                        sums[account] += amount
            if kind_of in points_handlers:
                points.append((row.id, stream, card, kind_of, event))
        if points:
            self._points(store, b, points, first)
        available, held, changed = b.available, b.held, b.changed
        for stream in touched:
            card = cards[stream]
            if stream in new:
                available[stream], held[stream] = card[AVAILABLE], card[HELD]
            else:
                changed.append((card[7], card[AVAILABLE], card[HELD]))
            card[AVAILABLE] = card[HELD] = 0
        b.touched = new.union(touched)
        # The rows of cards new to the table, named now: the memory below may be let go
        # while this batch is written.
        b.identities = {s: tuple(cards[s][:3]) for s in new}
        if len(cards) > CARDS_KEPT:  # keep this batch's: the next may need them before
            keep = b.touched | {row.originator_id.int for row in rows}  # it is written
            self.cards = {s: c for s, c in cards.items() if s in keep}
        return b

    def _points(self, store: EventStore, b: Batch,
                moves: list[tuple[int, Stream, Card, type, Any]], first: dict[str, int]) -> None:
        """The batch's points movements in log order, once the lots they take from are
        known (looked up when not in memory)."""
        lots = self.lots
        lot_ids = {lot_id for _, _, _, kind_of, event in moves
                   for lot_id in _lot_ids(kind_of, event) if lot_id not in lots}
        if lot_ids:
            self._look_up(store, set(), lot_ids, programs=False)
        handlers = _POINTS
        for row_id, stream, card, kind_of, event in moves:
            issuer = card[1]
            owner = issuer if first.get(issuer, row_id) < row_id else (
                ALLIANCE if first.get(ALLIANCE, row_id) < row_id else None)
            handlers[kind_of](b, stream, card, owner, event, event.meta.recorded_at_us)
        if len(lots) > LOTS_KEPT:
            keep_lots = {row[0] for row in b.lots} | lot_ids
            self.lots = {k: v for k, v in lots.items() if k in keep_lots}

    # ------------------------------------------------------------------ write

    def write(self, session: Session, b: Batch) -> None:
        identities, available, held = b.identities, b.available, b.held
        # Cards issued before this batch have their row: an UPDATE joined on the key (about
        # a third cheaper on PostgreSQL than INSERT ... ON CONFLICT for a thousand rows).
        bulk(session, "INSERT INTO proj_fin_cards (stream_id, card_number, issuer, currency, "
              "available_minor, held_minor)", ("bytea", "text", "text", "text", "bigint",
                                               "bigint"),
              [(_bytes(s), *identities[s], available.get(s, 0), held.get(s, 0))
               for s in b.new],
              "ON CONFLICT (stream_id) DO UPDATE SET available_minor = "
              "proj_fin_cards.available_minor + excluded.available_minor, held_minor = "
              "proj_fin_cards.held_minor + excluded.held_minor")
        changed = b.changed
        if session.dialect == "sqlite":
            session.executemany("UPDATE proj_fin_cards SET available_minor = available_minor "
                                "+ ?, held_minor = held_minor + ? WHERE stream_id = ?",
                                [(a, h, s) for s, a, h in changed])
        elif changed:
            marks, columns = arrays(("bytea", "bigint", "bigint"), changed)
            session.execute(
                "UPDATE proj_fin_cards AS c SET available_minor = c.available_minor + u.a, "
                f"held_minor = c.held_minor + u.h FROM unnest({marks}) AS u(s, a, h) "
                "WHERE c.stream_id = u.s", columns)
        bulk(session, "INSERT INTO proj_fin_card_points (stream_id, program, points, debt)",
              ("bytea", "text", "bigint", "bigint"),
              [(_bytes(stream), program, p, d) for (stream, program), (p, d)
               in b.card_points.items()],
              "ON CONFLICT (stream_id, program) DO UPDATE SET "
              "points = proj_fin_card_points.points + excluded.points, "
              "debt = proj_fin_card_points.debt + excluded.debt")
        bulk(session, "INSERT INTO proj_fin_lots (lot_id, stream_id, program, vests_at_us, "
              "pending)", ("text", "bytea", "text", "bigint", "bigint"), b.lots)
        session.executemany("UPDATE proj_fin_lots SET pending = pending + ? WHERE lot_id = ?",
                            [(p, lot_id) for lot_id, p in b.pending.items() if p])
        session.executemany("UPDATE proj_fin_lots SET stream_id = ? WHERE stream_id = ?",
                            b.moved_lots)
        session.executemany("UPDATE proj_fin_card_points SET points = 0, debt = 0 "
                            "WHERE stream_id = ?", b.replaced)
        session.executemany(
            "INSERT INTO proj_fin_programs (program, position, valid_from_us, currency, "
            "point_value_micros) VALUES (?, ?, ?, ?, ?)", b.programs)
        bulk(session, "INSERT INTO proj_fin_money (day, currency, account, entity, "
              "counterparty, kind, amount_minor)",
              ("text", "text", "text", "text", "text", "text", "bigint"),
              [(day, currency, *tail, kind, amount) for (day, currency, tail, kind), amount
               in _money_rows(b.money).items() if amount],
              "ON CONFLICT (day, currency, account, entity, counterparty, kind) DO UPDATE SET "
              "amount_minor = proj_fin_money.amount_minor + excluded.amount_minor")
        bulk(session, "INSERT INTO proj_fin_points (day, program, issuer, bucket, kind, "
              "points)", ("text", "text", "text", "text", "text", "bigint"),
              [(*key, points) for key, points in b.points.items() if points],
              "ON CONFLICT (day, program, issuer, bucket, kind) "
              "DO UPDATE SET points = proj_fin_points.points + excluded.points")


def finance_runner(store: EventStore, log: SharedLog | None = None) -> ProjectionRunner:
    return ProjectionRunner(store, FinanceModel(), log=log)


# Rows whose sum is zero say nothing (a batch that nets a day's kind to zero may leave one,
# a rebuild in other batches may not): the digest leaves them out.
_DIGEST_QUERIES = (
    "SELECT stream_id, card_number, issuer, currency, available_minor, held_minor "
    "FROM proj_fin_cards ORDER BY stream_id",
    "SELECT stream_id, program, points, debt FROM proj_fin_card_points "
    "WHERE points <> 0 OR debt <> 0 ORDER BY stream_id, program",
    "SELECT lot_id, stream_id, program, vests_at_us, pending FROM proj_fin_lots "
    "ORDER BY lot_id",
    "SELECT program, position, valid_from_us, currency, point_value_micros "
    "FROM proj_fin_programs ORDER BY program, position",
    "SELECT day, currency, account, entity, counterparty, kind, amount_minor "
    "FROM proj_fin_money WHERE amount_minor <> 0 "
    "ORDER BY day, currency, account, entity, counterparty, kind",
    "SELECT day, program, issuer, bucket, kind, points FROM proj_fin_points "
    "WHERE points <> 0 ORDER BY day, program, issuer, bucket, kind",
)


def digest(runner: ProjectionRunner) -> str:
    """blake2b-256 over every row of the model's tables in key order (hex): a model rebuilt
    from the log gives the digest of the model that followed it live."""
    h = hashlib.blake2b(b"loyalty-ledger/finance-read-model/v1\n", digest_size=32)
    with runner.store.session(commit=False) as session:
        for sql in _DIGEST_QUERIES:
            h.update(sql.encode() + b"\n")
            for row in session.query(sql):
                h.update(repr(tuple(bytes(v) if isinstance(v, bytes | memoryview) else v
                                    for v in row)).encode() + b"\n")
    return h.hexdigest()


# ------------------------------------------------------------------------------ reports

_CARD_ACCOUNTS = "account IN ('card_available', 'card_held')"
_OUTSTANDING = "bucket IN ('VESTED', 'PENDING')"


def _values(session: Session) -> list[ProgramValue]:
    return [ProgramValue(program, int(at), currency, int(value))
            for program, at, currency, value in session.query(
                "SELECT program, valid_from_us, currency, point_value_micros "
                "FROM proj_fin_programs ORDER BY position")]


def _entity(column: str, entity: str) -> tuple[str, tuple[str, ...]]:
    return (f" AND {column} = ?", (entity,)) if entity else ("", ())


def liability(runner: ProjectionRunner, as_of: str, entity: str = "") -> reports.Liability:
    """Stored value per issuer and points per program outstanding at the end of UTC day
    `as_of`, from the model brought up to the log's end; `entity`: that issuer's and that
    program's only."""
    runner.catch_up()
    sv_only, sv_args = _entity("entity", entity)
    pts_only, pts_args = _entity("program", entity)
    with runner.store.session(commit=False) as session:
        sv = {(e, c, a): int(s) for e, c, a, s in session.query(
            "SELECT entity, currency, account, sum(amount_minor) FROM proj_fin_money "
            f"WHERE day <= ? AND {_CARD_ACCOUNTS}{sv_only} GROUP BY entity, currency, account",
            (as_of, *sv_args))}
        points = {(p, bucket): int(s) for p, bucket, s in session.query(
            "SELECT program, bucket, sum(points) FROM proj_fin_points "
            f"WHERE day <= ?{pts_only} GROUP BY program, bucket", (as_of, *pts_args))}
        values = _values(session)
    return reports.liability(as_of, sv, points, values)


def roll_forward(runner: ProjectionRunner, from_day: str, to_day: str,
                 entity: str = "") -> tuple[reports.RollForward, ...]:
    """Each issuer's stored value and each program's points from the start of `from_day` to
    the end of `to_day` (UTC), line by line."""
    runner.catch_up()
    sv_only, sv_args = _entity("entity", entity)
    pts_only, pts_args = _entity("program", entity)
    before = days.previous(from_day)
    sv_open: dict[tuple[str, str], int] = {}
    sv_close: dict[tuple[str, str], int] = {}
    sv_moves: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    pts_open: dict[str, int] = {}
    pts_close: dict[str, int] = {}
    pts_moves: dict[str, dict[str, int]] = defaultdict(dict)
    memo: dict[str, dict[str, int]] = defaultdict(dict)
    with runner.store.session(commit=False) as session:
        for target, day in ((sv_open, before), (sv_close, to_day)):
            for e, c, s in session.query(
                    "SELECT entity, currency, sum(amount_minor) FROM proj_fin_money "
                    f"WHERE day <= ? AND {_CARD_ACCOUNTS}{sv_only} GROUP BY entity, currency",
                    (day, *sv_args)):
                target[e, c] = int(s)
        for e, c, kind, s in session.query(
                "SELECT entity, currency, kind, sum(amount_minor) FROM proj_fin_money "
                f"WHERE day >= ? AND day <= ? AND {_CARD_ACCOUNTS}{sv_only} "
                "GROUP BY entity, currency, kind", (from_day, to_day, *sv_args)):
            if int(s):
                sv_moves[e, c][kind] = int(s)
        for points_target, day in ((pts_open, before), (pts_close, to_day)):
            for p, s in session.query(
                    "SELECT program, sum(points) FROM proj_fin_points "
                    f"WHERE day <= ? AND {_OUTSTANDING}{pts_only} GROUP BY program",
                    (day, *pts_args)):
                points_target[p] = int(s)
        for p, bucket, kind, s in session.query(
                "SELECT program, bucket, kind, sum(points) FROM proj_fin_points "
                f"WHERE day >= ? AND day <= ?{pts_only} GROUP BY program, bucket, kind",
                (from_day, to_day, *pts_args)):
            if not int(s):
                continue
            if bucket in ("VESTED", "PENDING"):
                pts_moves[p][kind] = pts_moves[p].get(kind, 0) + int(s)
            else:
                memo[p][f"{bucket}_{kind}"] = int(s)
        values = _values(session)
    # Vesting moves points between the outstanding buckets: nothing on the total.
    for moves in pts_moves.values():
        if moves.get("VESTING") == 0:
            del moves["VESTING"]
    return reports.roll_forward(from_day, to_day, sv_open, sv_moves, sv_close, pts_open,
                                pts_moves, pts_close, memo, values)


def breakage(runner: ProjectionRunner, from_day: str, to_day: str,
             entity: str = "") -> tuple[reports.Breakage, ...]:
    """What expired per UTC month between the start of `from_day` and the end of `to_day`."""
    runner.catch_up()
    sv_only, sv_args = _entity("entity", entity)
    pts_only, pts_args = _entity("program", entity)
    sv_kinds = sorted(reports.SV_EXPIRED_KINDS) or [""]
    pts_kinds = sorted(reports.POINTS_EXPIRED_KINDS) or [""]
    with runner.store.session(commit=False) as session:
        sv = [(d, e, c, int(s)) for d, e, c, s in session.query(
            "SELECT day, entity, currency, sum(amount_minor) FROM proj_fin_money "
            f"WHERE day >= ? AND day <= ? AND {_CARD_ACCOUNTS}{sv_only} AND kind IN "
            f"({', '.join('?' * len(sv_kinds))}) GROUP BY day, entity, currency",
            (from_day, to_day, *sv_args, *sv_kinds))]
        pts = [(d, p, int(s)) for d, p, s in session.query(
            "SELECT day, program, sum(points) FROM proj_fin_points "
            f"WHERE day >= ? AND day <= ? AND {_OUTSTANDING}{pts_only} AND kind IN "
            f"({', '.join('?' * len(pts_kinds))}) GROUP BY day, program",
            (from_day, to_day, *pts_args, *pts_kinds))]
        posted = [(d, e, c, int(s)) for d, e, c, s in session.query(
            "SELECT day, entity, currency, sum(amount_minor) FROM proj_fin_money "
            f"WHERE day >= ? AND day <= ? AND account = 'points_breakage'{sv_only} "
            "GROUP BY day, entity, currency", (from_day, to_day, *sv_args))]
        values = _values(session)
    return reports.breakage(sv, pts, values, posted)


def card_balances(runner: ProjectionRunner, card_number: str, now_us: int,
                  ) -> tuple[int, int, dict[str, tuple[int, int, int]]] | None:
    """A card's (available, held, {program: (vested, pending, debt)}) from the balances
    tables, pending counted at `now_us` (None: no such card)."""
    runner.catch_up()
    stream = card_stream_id(card_number).bytes
    with runner.store.session(commit=False) as session:
        found = session.query("SELECT available_minor, held_minor FROM proj_fin_cards "
                              "WHERE stream_id = ?", (stream,))
        if not found:
            return None
        pending = dict(session.query(
            "SELECT program, sum(pending) FROM proj_fin_lots WHERE stream_id = ? AND "
            "vests_at_us > ? GROUP BY program", (stream, now_us)))
        purses = {program: (int(points) - int(pending.get(program) or 0),
                            int(pending.get(program) or 0), int(debt))
                  for program, points, debt in session.query(
                      "SELECT program, points, debt FROM proj_fin_card_points "
                      "WHERE stream_id = ?", (stream,))}
    return int(found[0][0]), int(found[0][1]), purses
