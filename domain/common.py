"""Types shared by every bounded context: results, roles, the event envelope, input checks."""

from __future__ import annotations

import datetime as dt
import enum
import re

import msgspec


class Result(enum.IntEnum):
    """Outcomes of a command; the numbers are the wire contract's and never change."""

    RESULT_UNSPECIFIED = 0
    APPROVED = 1
    PARTIALLY_APPROVED = 2
    DECLINED_INSUFFICIENT_FUNDS = 3
    DECLINED_CARD_NOT_FOUND = 4
    DECLINED_CARD_NOT_ACTIVE = 5
    DECLINED_CURRENCY_MISMATCH = 6
    DECLINED_LIMIT_EXCEEDED = 7
    DECLINED_AUTHORIZATION_NOT_FOUND = 8
    DECLINED_AUTHORIZATION_NOT_PENDING = 9
    DECLINED_AMOUNT_EXCEEDS_AUTHORIZATION = 10
    DECLINED_REFUND_EXCEEDS_CAPTURED = 11
    DUPLICATE_REQUEST_MISMATCH = 12
    DECLINED_CARD_EXISTS = 13
    DECLINED_INVALID_STATE = 14
    DECLINED_REQUEST_REVERSED = 15
    # Added by the project (stage 2: points and purchases)
    DECLINED_INSUFFICIENT_POINTS = 16
    DECLINED_NO_POINTS_PROGRAM = 17
    DECLINED_TENDER_EXCEEDS_DUE = 18
    DECLINED_PURCHASE_NOT_FOUND = 19
    DECLINED_RETURN_EXCEEDS_PURCHASE = 20
    DECLINED_COUPON_NOT_USABLE = 21
    DECLINED_REFUND_WINDOW_CLOSED = 22
    DECLINED_RETURN_WINDOW_CLOSED = 23
    # Stage 3: the card's issuing entity is over its net debit cap in the open settlement
    # period; spending its value at another entity's stores waits for settlement.
    DECLINED_NET_DEBIT_CAP = 24
    # Added by the project (issue 9: points exchange)
    DECLINED_QUOTE_EXPIRED = 25
    DECLINED_QUOTE_USED = 26
    DECLINED_QUOTE_FOREIGN = 27  # another card's, another partner's, or not made by this ledger
    DECLINED_EXCHANGE_LIMIT = 28  # below the minimum, above the maximum or the daily limit
    DECLINED_NO_EXCHANGE_RATE = 29
    # Added by the project (issue 9: redeeming another program's points at a partner): no
    # agreement in force links the program's owner and the store's accounting entity.
    DECLINED_NO_AGREEMENT = 30


APPROVALS = frozenset({Result.APPROVED, Result.PARTIALLY_APPROVED})


class CardStatus(enum.IntEnum):
    CARD_STATUS_UNSPECIFIED = 0
    ISSUED = 1
    ACTIVE = 2
    BLOCKED = 3
    CLOSED = 4
    REPLACED = 5


class Role(enum.IntEnum):
    ROLE_UNSPECIFIED = 0
    ADMIN = 1
    PARTNER_MANAGER = 2
    STORE_MANAGER = 3
    TERMINAL = 4
    GATEWAY = 5
    AUDITOR = 6
    FINANCE = 7


class Principal(msgspec.Struct, frozen=True, array_like=True):
    """Who acts: a role and its scope. Empty strings where the role has no such scope."""

    role: Role
    partner_id: str = ""
    store_id: str = ""
    terminal_id: str = ""


class Meta(msgspec.Struct, frozen=True, array_like=True):
    """The envelope every event carries: who, which request, when recorded (UTC)."""

    request_id: str
    credential_id: str
    role: int
    partner_id: str
    store_id: str
    terminal_id: str
    recorded_at_us: int  # microseconds since the Unix epoch, UTC


# How much of a caller's value an error message repeats. Messages travel as gRPC trailers,
# whose size is limited (a 16 KB value echoed whole came back RESOURCE_EXHAUSTED, a status
# clients retry); naming the field and a short prefix is enough to find the mistake.
SHOWN_CHARS_MAX = 40
# The whole problem text of an InvalidInput, whatever went into it.
PROBLEM_CHARS_MAX = 300
FIELD_CHARS_MAX = 120


def shown(value: object) -> str:
    """`repr(value)`, cut to a short prefix when long (for error messages)."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS_MAX:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str | bytes) else ""
    return f"{text[:SHOWN_CHARS_MAX - 8]}...{size}"


class InvalidInput(ValueError):
    """Malformed input; `field` is the name the wire contract gives the field."""

    def __init__(self, field: str, problem: str) -> None:
        if len(problem) > PROBLEM_CHARS_MAX:
            problem = problem[:PROBLEM_CHARS_MAX - 3] + "..."
        if len(field) > FIELD_CHARS_MAX:
            field = field[:FIELD_CHARS_MAX - 3] + "..."
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# Instants a request may name (valid_from, valid_to, as_of): from the Unix epoch to
# 9999-12-30T00:00:00Z. Shown in any offset (at most 24 h either way) such an instant is still
# a date of the years 1..9999, which RFC 3339, Python's datetime and every client library can
# write; "9999-12-31T23:59:59-23:59" (year 10000 in UTC) was accepted before this bound and then
# broke every reply that showed it.
TIME_MIN_US = 0
TIME_MAX_US = 253_402_128_000_000_000
FOREVER_US = 2**62  # "no end" (an empty valid_to): never shown as a time
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def check_time_us(value_us: int, field: str, *, forever_ok: bool = False) -> int:
    if forever_ok and value_us == FOREVER_US:
        return value_us
    if not TIME_MIN_US <= value_us <= TIME_MAX_US:
        raise InvalidInput(field, "must be between 1970-01-01T00:00:00Z and "
                           "9999-12-30T00:00:00Z")
    return value_us


def parse_time_us(value: str, field: str, empty_us: int) -> int:
    """RFC 3339 with an offset ("2026-03-01T00:00:00Z") -> microseconds since the epoch, within
    TIME_MIN_US..TIME_MAX_US; `empty_us` for "" (not range-checked: FOREVER_US is allowed)."""
    if not value:
        return empty_us
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field, f"{shown(value)} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise InvalidInput(field, "needs an offset, e.g. 2026-03-01T00:00:00Z")
    delta = moment - _EPOCH
    return check_time_us((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,
                         field)


def format_time_us(value_us: int) -> str:
    """Microseconds since the epoch as RFC 3339 in UTC; "" for 0 (unset) and FOREVER_US and
    beyond. Total: a value outside datetime's range (only data stored before TIME_MAX_US was
    enforced can hold one) is written from integer arithmetic, never an exception."""
    if value_us <= 0 or value_us >= FOREVER_US:
        return ""
    days, micros = divmod(value_us, 86_400_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    year, month, day = _civil_from_days(days)
    clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    fraction = f".{micros:06d}" if micros else ""
    return f"{year:04d}-{month:02d}-{day:02d}T{clock}{fraction}Z"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number since 1970-01-01 in the proleptic Gregorian calendar
    (H. Hinnant's algorithm, valid for any integer)."""
    days += 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524
                   - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    mp = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return year_of_era + era * 400 + (month <= 2), month, day


ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
CLASS_PATTERN = re.compile(r"[A-Z0-9_]{1,32}")
REQUEST_ID_PATTERN = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII without space
CARD_NUMBER_PATTERN = re.compile(r"[0-9]{12,19}")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f]")  # a search in C, not a loop per character
TEXT_MAX = 200
AMOUNT_MAX_MINOR = 10**15  # far above any balance; keeps sums inside int64


def check_request_id(value: str, field: str = "request_id") -> str:
    if not REQUEST_ID_PATTERN.fullmatch(value):
        raise InvalidInput(field, "must be 1..64 printable ASCII characters without spaces")
    return value


def check_id(value: str, field: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise InvalidInput(field, "must be 1..32 of [A-Za-z0-9_-]")
    return value


def check_text(value: str, field: str, *, required: bool = False, limit: int = TEXT_MAX) -> str:
    if required and not value.strip():
        raise InvalidInput(field, "is required")
    if len(value) > limit:
        raise InvalidInput(field, f"is longer than {limit} characters")
    if _CONTROL_CHARACTER.search(value):
        raise InvalidInput(field, "contains control characters")
    return value


def check_amount(value: int, field: str = "amount_minor", *, zero_ok: bool = False) -> int:
    if value < 0 or (value == 0 and not zero_ok):
        problem = "must not be negative" if zero_ok else "must be greater than 0"
        raise InvalidInput(field, problem)
    if value > AMOUNT_MAX_MINOR:
        raise InvalidInput(field, f"must be at most {AMOUNT_MAX_MINOR}")
    return value


# Luhn's doubled digit (2d, less 9 when over 9) as the byte of its digit: "7" -> "5".
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def luhn_valid(number: str) -> bool:
    """Does the string of ASCII digits pass the Luhn check? (False for anything else.) Sums
    the bytes in C rather than looping per character in Python: it runs on every card number
    of every request (benchmarks/bench_decisions.py::test_luhn)."""
    if not (number.isascii() and number.isdigit()):
        return False
    digits = number[::-1].encode()
    total = sum(digits[::2]) + sum(digits[1::2].translate(_LUHN_DOUBLED))
    return (total - 48 * len(digits)) % 10 == 0


def luhn_complete(prefix: str) -> str:
    """Append the Luhn check digit to `prefix`."""
    for check in "0123456789":
        if luhn_valid(prefix + check):
            return prefix + check
    raise AssertionError("a Luhn check digit always exists")


def check_card_number(value: str, field: str = "card_number") -> str:
    if not CARD_NUMBER_PATTERN.fullmatch(value):
        raise InvalidInput(field, "must be 12..19 digits")
    if not luhn_valid(value):
        raise InvalidInput(field, "fails the Luhn check")
    return value
