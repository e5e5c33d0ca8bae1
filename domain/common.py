"""Types shared by every bounded context: results, roles, the event envelope, input checks."""

from __future__ import annotations

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


class InvalidInput(ValueError):
    """Malformed input; `field` is the name the wire contract gives the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
CLASS_PATTERN = re.compile(r"[A-Z0-9_]{1,32}")
REQUEST_ID_PATTERN = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII without space
CARD_NUMBER_PATTERN = re.compile(r"[0-9]{12,19}")
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
    if any(ord(ch) < 0x20 for ch in value):
        raise InvalidInput(field, "contains control characters")
    return value


def check_amount(value: int, field: str = "amount_minor", *, zero_ok: bool = False) -> int:
    if value < 0 or (value == 0 and not zero_ok):
        problem = "must not be negative" if zero_ok else "must be greater than 0"
        raise InvalidInput(field, problem)
    if value > AMOUNT_MAX_MINOR:
        raise InvalidInput(field, f"must be at most {AMOUNT_MAX_MINOR}")
    return value


def luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


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
