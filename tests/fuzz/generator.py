"""Requests generated from the proto descriptors, field by field, with a seeded generator.

Nothing here knows the RPCs by hand: a message is built (or mutated) by walking its
descriptor, so a field added to pos.proto is fuzzed without touching this file. What the
generator does know is which values are interesting for a field of a given type and, by the
field's name, which values are *nearly* valid (a known card number with one digit changed, an
authorization id of a real card with version 0, a time one second past the year 9999...). Those
come from a `Pools` object the world (world.py) fills with the ids it has created.

`random.Random(seed)` rather than hypothesis: the suite runs against one long-lived server per
store, under a time budget, and every call changes the server's state, so shrinking and
example replay would not mean much; a plain seeded generator makes the same sequence of
requests for the same seed on both stores.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from domain.common import luhn_complete

FD = FieldDescriptor

# ---------------------------------------------------------------------- scalar values

INT32_EDGES = [0, 1, -1, 2, 6, 7, 59, 60, 1439, 1440, 1441, 1000, 1001, 10_000, 86_400,
               2**31 - 1, -(2**31)]
UINT32_EDGES = [0, 1, 2, 499, 500, 501, 999, 1000, 1001, 10_000, 2**31 - 1, 2**32 - 1]
INT64_EDGES = [0, 1, -1, 2, 99, 100, 10_000, 10_001, 1_000_000, 1_000_001, 10**9, 10**9 + 1,
               10**12, 10**12 + 1, 10**15 + 1, 2**31 - 1, 2**31, 2**53 + 1, 2**62,
               2**63 - 1, -(2**63), -(2**62), 31 * 86_400, 31 * 86_400 + 1, 59]
UINT64_EDGES = [0, 1, 2, 3, 100, 1000, 2**31, 2**32, 2**62 - 1, 2**62, 2**63 - 1, 2**63,
                2**64 - 1]

_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1, INT32_EDGES),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1, INT32_EDGES),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1, INT32_EDGES),
    FD.TYPE_UINT32: (0, 2**32 - 1, UINT32_EDGES),
    FD.TYPE_FIXED32: (0, 2**32 - 1, UINT32_EDGES),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1, INT64_EDGES),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1, INT64_EDGES),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1, INT64_EDGES),
    FD.TYPE_UINT64: (0, 2**64 - 1, UINT64_EDGES),
    FD.TYPE_FIXED64: (0, 2**64 - 1, UINT64_EDGES),
}


def an_int(rng: random.Random, ftype: int) -> int:
    low, high, edges = _RANGES[ftype]
    roll = rng.random()
    if roll < 0.55:
        return rng.choice(edges)
    if roll < 0.85:  # a random magnitude, so values between the edges are seen too
        value = rng.randrange(10 ** rng.randint(0, 19))
        value = -value if low < 0 and rng.random() < 0.3 else value
    else:
        value = rng.randint(low, high)
    return max(low, min(high, value))


# RFC 3339 and almost-RFC 3339 times: the far past and future (the year 9999 moved past its
# end by a negative offset, the year 1 before the epoch by a positive one), leap days, local
# times without an offset, garbage.
TIMES = [
    "2026-06-01T00:00:00Z", "2026-01-01T00:00:00+08:00", "2099-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999+00:00",
    "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999999Z", "2024-02-29T12:00:00Z", "2025-02-29T12:00:00Z",
    "2026-06-01T00:00:00", "2026-06-01", "2026-06-01T25:00:00Z", "2026-13-01T00:00:00Z",
    "2026-06-01T00:00:00+24:00", "2026-06-01T00:00:00.123456789Z", "2262-04-11T23:47:16Z",
    "2038-01-19T03:14:08Z", "+2026-06-01T00:00:00Z", "2026-06-01T00:00:00z",
    "2026-06-01 00:00:00Z", "now", "tomorrow", "1e308",
]
LOCAL_TIMES = [
    "2026-06-01T12:30", "2026-06-01T12:30:00", "2026-06-07T23:59:59", "2026-06-01T00:00",
    "2024-02-29T10:00", "9999-12-31T23:59:59", "0001-01-01T00:00", "2026-02-30T12:30",
    "2026-06-01T24:00", "2026-06-01T12:30:00Z", "2026-06-01T12:30:00+08:00", "12:30",
    "2026-06-01T12:30:00.5",
]
CURRENCIES = ["USD", "EUR", "JPY", "BHD", "usd", "XXX", "US", "USDX", "BTC", "XAU", "EUR ",
              "€", "USD\x00"]
TIMEZONES = ["Asia/Shanghai", "UTC", "Europe/Paris", "Pacific/Kiritimati", "Etc/GMT+12",
             "America/St_Johns", "Mars/Olympus", "localtime", "posixrules", "../../etc/passwd",
             "Europe/" + "x" * 60, "Asia/Shanghai\x00", "asia/shanghai", "+08:00"]
SCOPES = ["alliance", "partner:P1", "partner:P2", "store:S1", "store:S2", "store:A1",
          "partner:", "store:S9", "partner:P1:S1", "ALLIANCE", "store:" + "S" * 33]
WEIRD = [
    "", " ", "  x  ", "x", "a b", "a/b", "a\tb", "a\nb", "\x00", "a\x00b", "\x7f", "\u2028",
    "é", "日本語", "🎉", "\u200b", "\u202eRTL", "Ω" * 40, "'; DROP TABLE ledger_events;--",
    "%s%s%n", "{0}", "${jndi:x}", "null", "NaN", "-0", "0", "-1", "1e309", "0x10",
    "../../etc/passwd", "\\", "\"", "llk_x_y",
]
MESSAGE_BYTES_MAX = 1_000_000  # what one generated field may add to a message
LENGTHS = [1, 12, 19, 20, 31, 32, 33, 47, 48, 49, 63, 64, 65, 128, 129, 200, 201, 500, 1025,
           4096, 16_384, 20_000]


def luhn_break(number: str) -> str:
    """The same number with its check digit wrong."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


@dataclass
class Pools:
    """Values the world has created; near-valid strings are made from them."""

    cards: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    purchases: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=lambda: ["P1", "P2"])
    stores: list[str] = field(default_factory=lambda: ["S1", "S2", "A1"])
    terminals: list[str] = field(default_factory=lambda: ["T1", "T2", "T3", "TA1"])
    # Only credentials the fuzzer created itself: revoking the world's own would end the run.
    credentials: list[str] = field(default_factory=list)
    campaigns: list[str] = field(default_factory=list)
    coupon_codes: list[str] = field(default_factory=list)
    rule_sets: list[str] = field(default_factory=list)
    card_classes: list[str] = field(default_factory=lambda: ["STANDARD", "VIP", "FUZZ_SHORT"])
    tokens: list[str] = field(default_factory=list)  # bearer tokens (override_token)
    breaks: list[str] = field(default_factory=list)  # reconciliation break ids
    quotes: list[str] = field(default_factory=list)  # exchange quote ids

    def remember(self, pool: list[str], value: str, cap: int = 2_000) -> None:
        """Keep a bounded pool (a long run must not grow without end)."""
        if value and value not in pool[-50:]:
            pool.append(value)
            if len(pool) > cap:
                del pool[: len(pool) - cap]


def _near(rng: random.Random, value: str) -> str:
    """A value one small step from a valid one."""
    match rng.randrange(9):
        case 0:
            return value + " "
        case 1:
            return " " + value
        case 2:
            return value.lower() if value != value.lower() else value.upper()
        case 3:
            return value[:-1]
        case 4:
            return value + value[-1:]
        case 5:
            return value * rng.choice([2, 50, 2_000])
        case 6:
            return value.replace(value[:1], "\u0660", 1)  # an Arabic-Indic zero
        case 7:
            return value + "\x00"
        case _:
            return value + "é"


def _card_like(rng: random.Random, pools: Pools) -> str:
    if pools.cards and rng.random() < 0.6:
        card = rng.choice(pools.cards)
        return rng.choice([card, card, luhn_break(card), _near(rng, card), card[:12],
                           card + "0", "-".join([card[:4], card[4:8], card[8:12], card[12:]])])
    digits = rng.choice([12, 13, 16, 19, 20, 64])
    return rng.choice([luhn_complete("6" + "".join(rng.choice("0123456789")
                                                 for _ in range(digits - 2))),
                       "0" * digits, "9" * digits])


def _authorization_like(rng: random.Random, pools: Pools) -> str:
    if pools.authorizations and rng.random() < 0.5:
        real = rng.choice(pools.authorizations)
        card, _, version = real.partition(".")
        return rng.choice([real, f"{card}.0", f"{card}.{int(version) + 1}", f"{card}.-1",
                           f"{card}.{2**63}", f"{card}.{2**64}", f"{card}.{version}.1",
                           f"{luhn_break(card)}.{version}", _near(rng, real), card])
    card = _card_like(rng, pools)
    return f"{card}.{rng.choice([0, 1, 2, 3, 99, 2**62, 2**63 - 1])}"


def _by_name(rng: random.Random, name: str, pools: Pools) -> str | None:
    """A near-valid value for a field named `name`, or None for "no idea"."""
    pick = rng.choice

    def from_pool(pool: list[str], fallback: str) -> str:
        value = pick(pool) if pool else fallback
        return value if rng.random() < 0.6 else _near(rng, value)

    if name in ("card_number", "new_card_number"):
        return _card_like(rng, pools)
    if name in ("authorization_id",):
        return _authorization_like(rng, pools)
    if name == "purchase_id":
        if pools.purchases and rng.random() < 0.6:
            real = pick(pools.purchases)
            card, _, version = real.partition(".")
            return pick([real, f"{card}.1", f"{card}.{int(version) + 1}", f"{card}.0"])
        return _authorization_like(rng, pools)
    if name in ("request_id", "original_request_id"):
        if pools.request_ids and rng.random() < 0.3:  # a retry, perhaps of another payload
            return pick(pools.request_ids)
        return pick([f"fz-{rng.randrange(10**9)}", "r" * 64, "r" * 65, "r 1", "réq", "",
                     "\x7f", "r\t1", "~!@#$%^&*()_+{}|:<>?", "-" * 64])
    if name in ("valid_from", "valid_to"):
        return pick(TIMES)
    if name in ("as_of", "from", "to"):  # the finance reports' UTC days
        return pick(["2026-06-01", "2024-02-29", "2025-02-29", "1970-01-01", "1969-12-31",
                     "9999-12-31", "2026-6-1", "2026-06-01T00:00:00Z", "", "0000-00-00"])
    if name == "local_time":
        return pick(LOCAL_TIMES)
    if name == "currency":
        return pick(CURRENCIES)
    if name == "timezone":
        return pick(TIMEZONES)
    if name == "scope":
        return pick(SCOPES)
    if name in ("payer_id", "payee_id", "entity_id"):
        return from_pool(pools.partners, "P1")
    if name == "break_id":
        return from_pool(pools.breaks, "0" * 16)
    if name == "type":  # a journal row's movement kind
        return pick(["CAPTURED", "REFUNDED", "PURCHASE", "RETURN", "LOADED", "LOAD_REVERSED",
                     "CAPTURE_REVERSED", "AUTHORIZED", "captured", ""])
    if name in ("partner_id", "owner", "funded_by"):
        return from_pool([*pools.partners, "alliance"], "P1")
    if name in ("store_id", "issuing_store_id", "stores"):
        return from_pool(pools.stores, "S1")
    if name == "terminal_id":
        return from_pool(pools.terminals, "T1")
    if name == "credential_id":
        return from_pool(pools.credentials, "c0123456789abcdef")
    if name in ("campaign_id", "coupon_campaign"):
        return from_pool(pools.campaigns, "fuzz-coupon")
    if name == "coupon_codes":
        return from_pool(pools.coupon_codes, "K1-" + "A" * 16)
    if name == "rule_set_id":
        return from_pool(pools.rule_sets, "fuzz-base")
    if name in ("card_class", "card_classes"):
        return from_pool(pools.card_classes, "STANDARD")
    if name in ("tiers", "name") and rng.random() < 0.5:
        return pick(["SILVER", "GOLD", "gold", "PLATINUM", "G" * 33])
    if name == "cap_period":
        return pick(["", "DAY", "WEEK", "MONTH", "YEAR", "day", "HOUR"])
    if name in ("sku", "skus", "category", "categories"):
        return pick(["tea-2", "jacket-7", "apparel", "grocery", "gift-card", "x" * 48,
                     "x" * 49, "a:b.c_d-e", "a/b", "a b", "é"])
    if name == "quote_id":
        return from_pool(pools.quotes, "A" * 40 + "." + "B" * 22)
    if name in ("from_program", "to_program"):
        return from_pool([*pools.partners, "alliance"], "P1")
    if name == "override_token":
        return from_pool(pools.tokens, "llk_nope_nope")
    if name in ("stan",):
        return pick(["000001", "1" * 32, "1" * 33, "12\x0034"])
    return None


def a_string(rng: random.Random, name: str, pools: Pools) -> str:
    roll = rng.random()
    if roll < 0.55:
        hinted = _by_name(rng, name, pools)
        if hinted is not None:
            return hinted
    if roll < 0.8:
        return rng.choice(WEIRD)
    # A long one: plain, made of a near-valid value (what an echo in an error message would
    # carry), or of multibyte characters (the byte length is what gRPC limits).
    length = rng.choice(LENGTHS)
    unit = rng.choice(["x", "9", "é", "🎉", _by_name(rng, name, pools) or "ab"]) or "x"
    return (unit * (length // len(unit) + 1))[:length]


# ---------------------------------------------------------------------- messages


def _enum_value(rng: random.Random, fd: FieldDescriptor) -> int:
    known = [v.number for v in fd.enum_type.values]
    if rng.random() < 0.75:
        return rng.choice(known)
    return rng.choice([max(known) + 1, 99, -1, 2**31 - 1, -(2**31)])  # proto3 enums are open


def scalar(rng: random.Random, fd: FieldDescriptor, pools: Pools) -> Any:
    if fd.type == FD.TYPE_BOOL:
        return rng.random() < 0.5
    if fd.type == FD.TYPE_ENUM:
        return _enum_value(rng, fd)
    if fd.type == FD.TYPE_STRING:
        return a_string(rng, fd.name, pools)
    if fd.type == FD.TYPE_BYTES:
        return rng.choice([b"", b"\x00", b"x" * 20_000])
    if fd.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return rng.choice([0.0, -0.0, 1e308, float("nan"), float("inf")])
    return an_int(rng, fd.type)


def _repeat_count(rng: random.Random) -> int:
    # Mostly small; sometimes past the documented limits (10 coupons, 500 lines, 1000 values).
    return rng.choice([0, 1, 1, 2, 3, 5, 11, 501, 1_001]) if rng.random() < 0.9 else 0


def fill(rng: random.Random, message: Message, pools: Pools, depth: int = 0) -> Message:
    """Set a random subset of `message`'s fields to random values, recursively."""
    descriptor: Descriptor = message.DESCRIPTOR
    oneofs_done: set[str] = set()
    for fd in descriptor.fields:
        if rng.random() < 0.35:
            continue  # left at its default, as a real client often does
        oneof = fd.containing_oneof
        if oneof is not None:
            if oneof.name in oneofs_done:
                continue
            oneofs_done.add(oneof.name)
            fd = rng.choice(oneof.fields)
        _fill_field(rng, message, fd, pools, depth)
    return message


def _fill_field(rng: random.Random, message: Message, fd: FieldDescriptor, pools: Pools,
                depth: int) -> None:
    if fd.is_repeated:
        count = _repeat_count(rng)
        container = getattr(message, fd.name)
        if fd.type == FD.TYPE_MESSAGE:
            # Nested repeated messages: many copies of one random element (cheap to build).
            if depth < 3 and count:
                element = fill(rng, GetMessageClass(fd.message_type)(), pools, depth + 1)
                # Keep a message well under the server's 8 MB limit: past it gRPC answers
                # RESOURCE_EXHAUSTED by itself, before the ledger sees anything.
                count = min(count, max(1, MESSAGE_BYTES_MAX // max(1, element.ByteSize())))
                for _ in range(count):
                    container.add().CopyFrom(element)
        else:
            size = 0
            for _ in range(count):
                value = scalar(rng, fd, pools)
                size += len(value) if isinstance(value, str | bytes) else 8
                if size > MESSAGE_BYTES_MAX // 4:
                    break
                container.append(value)
    elif fd.type == FD.TYPE_MESSAGE:
        if depth < 3:
            fill(rng, getattr(message, fd.name), pools, depth + 1)
            if not getattr(message, fd.name).ListFields():
                getattr(message, fd.name).SetInParent()
    else:
        setattr(message, fd.name, scalar(rng, fd, pools))


def random_message(rng: random.Random, cls: type[Message], pools: Pools) -> Message:
    return fill(rng, cls(), pools)


# A place in a message: (the message holding the field, the field, the index in a repeated
# field or None). Found by walking what the valid request holds plus every field it could hold.
Place = tuple[Message, FieldDescriptor, int | None]


def places(message: Message, depth: int = 0) -> list[Place]:
    found: list[Place] = []
    for fd in message.DESCRIPTOR.fields:
        found.append((message, fd, None))
        if fd.type != FD.TYPE_MESSAGE or depth >= 3:
            continue
        if fd.is_repeated:
            for index, element in enumerate(getattr(message, fd.name)):
                found.extend(places(element, depth + 1))
                found.append((message, fd, index))
        elif message.HasField(fd.name):
            found.extend(places(getattr(message, fd.name), depth + 1))
    return found


def path_of(place: Place) -> str:
    holder, fd, index = place
    return f"{holder.DESCRIPTOR.name}.{fd.name}" + ("" if index is None else f"[{index}]")


def mutate_one(rng: random.Random, message: Message, pools: Pools) -> str:
    """Change ONE field of `message` (in place, anywhere in it); returns what was changed."""
    place = rng.choice(places(message))
    holder, fd, index = place
    where = path_of(place)
    if fd.is_repeated:
        container = getattr(holder, fd.name)
        action = rng.choice(["clear", "append", "duplicate", "many", "element"])
        if action == "clear":
            holder.ClearField(fd.name)
        elif action == "duplicate" and len(container):
            if fd.type == FD.TYPE_MESSAGE:
                container.add().CopyFrom(container[index or 0])
            else:
                container.append(container[index or 0])
        elif action == "many" and len(container):
            count = rng.choice([11, 257, 501, 1_001, 5_000])
            if fd.type == FD.TYPE_MESSAGE:
                first = container[0]
                for _ in range(count):
                    container.add().CopyFrom(first)
            else:
                container.extend([container[0]] * count)
        elif action == "element" and len(container) and fd.type != FD.TYPE_MESSAGE:
            container[rng.randrange(len(container))] = scalar(rng, fd, pools)
        elif fd.type == FD.TYPE_MESSAGE:
            fill(rng, container.add(), pools, 2)
        else:
            container.append(scalar(rng, fd, pools))
        return f"{where} {action}"
    if fd.type == FD.TYPE_MESSAGE:
        if rng.random() < 0.5:
            holder.ClearField(fd.name)
            return f"{where} cleared"
        getattr(holder, fd.name).Clear()
        fill(rng, getattr(holder, fd.name), pools, 2)
        return f"{where} replaced"
    value = scalar(rng, fd, pools)
    setattr(holder, fd.name, value)
    shown = repr(value)
    return f"{where}={shown[:60]}{'...' if len(shown) > 60 else ''}"


def describe(message: Message, limit: int = 400) -> str:
    """A request for a report: the text format, on one line, truncated."""
    from google.protobuf import text_format

    text = text_format.MessageToString(message, as_one_line=True, as_utf8=True)
    # A 20 KB value is shown as its unit and how many times it repeats.
    text = re.sub(r"(.{1,6}?)\1{9,}",
                  lambda m: f"{m.group(1)}<x{len(m.group(0)) // len(m.group(1))}>", text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


Factory = Callable[[random.Random], tuple[Message, str]]
