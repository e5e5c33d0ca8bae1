"""What the audit replay (projections/audit.py) reads, in bulk: a share of the log a page at a
time, and each page's stored replies in one query, decoded into the few fields the replay
compares.

A share is the registry's rows (every share needs the rule sets) and the cards whose stream
falls in it, so that shares can be replayed side by side in processes of their own, each
card whole in one of them. On PostgreSQL the database leaves the other shares' rows out; on
SQLite each share reads every row and passes over the others' before decoding them.

Stored replies are read without the key strings coming back (the page's index of each event
instead) and in binary: the key rows of `EventStore.find_keys` (text, a dict per row, every
reply decoded whole) cost more than reading and decoding the events themselves.

The split log (ledger/partitioned.py): a lane is read from its own schema's table through
that lane's store (its database may be another server); stored replies go through
`find_keys`, which looks in every lane's key table (a request's key is in the lane of the
server its rows committed on last)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
from psycopg.rows import tuple_row
from psycopg.sql import SQL

from domain.common import Meta, Role
from domain.registry.events import RegistryEvent
from ledger.codec import EVENT_TYPES, REGISTRY_ID, CardView, Outcome
from ledger.store import EVENTS_TABLE, KEYS_TABLE, EventStore, PostgresStore

REGISTRY_TOPICS = sorted(t for t, kind in EVENT_TYPES.items() if issubclass(kind, RegistryEvent))
_REGISTRY_TOPICS = frozenset(REGISTRY_TOPICS)
_REGISTRY_BYTES = REGISTRY_ID.bytes
_new_row = tuple.__new__  # a Row from a row tuple, in C


class Row(NamedTuple):
    """A log row as the replay reads it: the stream id as its 16 bytes (a dict key as good
    as the UUID, without building one per row: uuid.UUID's constructor is Python)."""

    stream: bytes
    topic: str
    state: bytes
    position: int


class Share(NamedTuple):
    """Share `number` of `of`: the card streams whose id's last byte is `number` modulo `of`
    (card streams are uuid5: their last bytes are spread evenly), and the registry."""

    number: int = 0
    of: int = 1

    def keeps_stream(self, stream: bytes) -> bool:
        return self.of == 1 or stream[15] % self.of == self.number

    def keeps_row(self, row: Row) -> bool:
        """The row may be this share's: the registry's stream or topics, or its cards' (a
        registry event is kept by every share, a card event by its stream's share, once
        decoded: a row's topic could say otherwise)."""
        return (self.of == 1 or row.stream == _REGISTRY_BYTES
                or row.topic in _REGISTRY_TOPICS or row.stream[15] % self.of == self.number)


# The log from a position on PostgreSQL: all of it, or a share's rows (get_byte(..., 15) is
# the last byte of the id, as Share.keeps_stream takes it); `{table}`: the events table (a
# split log's lane: its schema's).
_LOG_SQL = ("SELECT uuid_send(originator_id), topic, state, notification_id FROM {table}"
            " WHERE notification_id >= %s{share} ORDER BY notification_id LIMIT %s")
_SHARE_FILTER = (" AND (originator_id = %s OR topic = ANY(%s) OR get_byte(uuid_send("
                 "originator_id), 15) %% %s = %s)")


def _log_sql(table: str, share: bool) -> SQL:
    return SQL(_LOG_SQL.format(table=table, share=_SHARE_FILTER if share else ""))


_ALL_SQL = _log_sql(EVENTS_TABLE, False)
_SHARE_SQL = _log_sql(EVENTS_TABLE, True)

# A page's stored replies: each one's index in the arrays asked with, and the reply (keys
# reversed before they were seen, with an empty hash, have none). An index probe per key,
# kept so by the LIMIT (the key is the primary key): planned as a join, PostgreSQL sorted the
# whole table for each page (external merge, ~0.2 s a page at 200,000 keys).
_REPLIES_SQL = SQL(
    "SELECT n.i, k.outcome FROM unnest(%b::text[], %b::text[]) WITH ORDINALITY AS n(s, r, i) "
    f"CROSS JOIN LATERAL (SELECT outcome FROM {KEYS_TABLE} WHERE key_space = n.s "
    "AND request_id = n.r AND length(payload_hash) > 0 AND length(outcome) > 0 LIMIT 1) k")


def read_share(store: EventStore, share: Share, start: int, limit: int, lane: int = 0
               ) -> tuple[list[Row], int] | None:
    """The share's rows among the next `limit` of the log (of `lane`: a split log's, in its
    own schema and database) from position `start`, in log order, and the position to read
    from next; None at the end."""
    if store.split:
        lane_store = store.lane_store(lane)  # type: ignore[attr-defined]
        table = lane_store.tables.events
        return _read_postgres(lane_store, _log_sql(table, False), _log_sql(table, True),
                              share, start, limit)
    if isinstance(store, PostgresStore):
        return _read_postgres(store, _ALL_SQL, _SHARE_SQL, share, start, limit)
    page = store.read_lane(lane, start, limit)
    if not page:
        return None
    rows = [Row(r.originator_id.bytes, r.topic, r.state, r.id) for r in page]
    if share.of > 1:
        rows = [row for row in rows if share.keeps_row(row)]
    return rows, page[-1].id + 1


def _read_postgres(store: PostgresStore, all_sql: SQL, share_sql: SQL, share: Share,
                   start: int, limit: int) -> tuple[list[Row], int] | None:
    if share.of == 1:
        sql, params = all_sql, (start, limit)
    else:
        sql, params = share_sql, (start, REGISTRY_ID, REGISTRY_TOPICS, share.of,
                                  share.number, limit)
    with (store.datastore.get_connection() as conn,
          conn.cursor(row_factory=tuple_row, binary=True) as c):
        c.execute(sql, params, prepare=True)
        rows = [_new_row(Row, row) for row in c.fetchall()]
    return (rows, rows[-1].position + 1) if rows else None


def key_of(meta: Meta) -> tuple[str, str]:
    """The request key an event's request was stored under (ledger.work.key_space_of)."""
    if meta.role == Role.TERMINAL or (meta.role == Role.GATEWAY and meta.terminal_id):
        return "t:" + meta.terminal_id, meta.request_id
    return "c:" + meta.credential_id, meta.request_id


def _lean(struct: type, kept: dict[str, Any], name: str) -> type:
    """`struct` (an array-like msgspec Struct) with only the `kept` fields decoded (as the
    types given), the fields before the last of them left as msgspec.Raw, and those after it
    not read at all."""
    declared = msgspec.structs.fields(struct)
    last = max(i for i, f in enumerate(declared) if f.name in kept)
    spec: list[tuple[Any, ...]] = []
    for f in declared[:last + 1]:
        kind = kept.get(f.name, msgspec.Raw)
        if f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT:
            spec.append((f.name, kind))
        elif f.name in kept:
            spec.append((f.name, kind, f.default))
        else:
            spec.append((f.name, msgspec.Raw, None))
    return msgspec.defstruct(name, spec, array_like=True, frozen=True, gc=False)


# What the replay compares of a stored reply: the card it showed (CardView's fields by name)
ShownCard = _lean(CardView, {"card_number": str, "status": int, "balance_minor": int,
                             "version": int, "tier": str}, "ShownCard")
_Reply = _lean(Outcome, {"card": ShownCard | None}, "Reply")  # type: ignore[operator]
_decode_reply = msgspec.msgpack.Decoder(_Reply).decode


def shown_cards(store: EventStore, events: Sequence[Any]) -> list[Any]:
    """For each of `events`, the card its stored reply showed (a ShownCard), or None: no
    request id (registry events are not asked for), no reply kept (past the retry window),
    no card in it, or a reply that does not decode (it is not compared)."""
    shown: list[Any] = [None] * len(events)
    asked = [i for i, e in enumerate(events) if not isinstance(e, RegistryEvent)
             and e.meta.request_id]
    if not asked:
        return shown
    pairs = [key_of(events[i].meta) for i in asked]
    for index, outcome in _stored_replies(store, pairs):
        try:
            card = _decode_reply(outcome).card
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        shown[asked[index]] = card
    return shown


def _stored_replies(store: EventStore, pairs: list[tuple[str, str]]
                    ) -> list[tuple[int, bytes]]:
    """(index in `pairs`, stored reply) for the pairs whose key holds a reply."""
    if isinstance(store, PostgresStore):
        spaces, ids = zip(*pairs, strict=True)
        with (store.datastore.get_connection() as conn,
              conn.cursor(row_factory=tuple_row, binary=True) as c):
            c.execute(_REPLIES_SQL, (list(spaces), list(ids)), prepare=True)
            return [(i - 1, outcome) for i, outcome in c.fetchall()]
    found = store.find_keys(pairs)
    replies = []
    for index, pair in enumerate(pairs):
        key = found.get(pair)
        if key is not None and key.payload_hash and key.outcome:
            replies.append((index, key.outcome))
    return replies


def reopenable_url(store: EventStore) -> str | None:
    """A URL another process can open the same database with (PostgresStore.url hides the
    password; the store's own connection settings have it), or None. A split store's is its
    global database's: opening it finds the placement of the lanes."""
    connect = store.connect_params
    if (isinstance(store, PostgresStore) or store.split) and connect is not None:
        return postgres_url(connect)
    url = getattr(store, "url", None)
    return url if isinstance(url, str) and url.startswith("sqlite:///") else None


def postgres_url(connect: dict[str, Any]) -> str:
    """The URL of psycopg.connect() arguments (user, password, host, port, dbname)."""
    quote = urllib.parse.quote
    user = quote(str(connect.get("user") or "postgres"), safe="")
    password = str(connect.get("password") or "")
    auth = user + (":" + quote(password, safe="") if password else "")
    host = str(connect["host"])
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    database = quote(str(connect["dbname"]), safe="")
    return f"postgresql://{auth}@{host}:{connect['port']}/{database}"
