"""How the ledger refuses a request, in its own words; `grpc_api` maps each refusal to a gRPC
status. A refused request wrote nothing."""

from __future__ import annotations

import enum
import logging
import secrets

import msgspec

log = logging.getLogger("ledger")


class Refusal(enum.Enum):
    INVALID_INPUT = "invalid input"  # malformed or unknown references; names the field
    DENIED = "denied"  # outside the caller's scope
    UNAUTHENTICATED = "unauthenticated"  # unknown or revoked credential
    NOT_FOUND = "not found"  # a read of something that does not exist (rule sets)
    NOT_CONFIGURED = "not configured"  # this server lacks what the operation needs
    OVERLOADED = "overloaded"  # the queue is full, or the log stayed busy
    DEADLINE_PASSED = "deadline passed"  # before the ledger decided
    DATABASE_DOWN = "database down"  # the database could not be reached
    BUG = "bug"  # an exception nobody expected: see the logged reference


class Failure(msgspec.Struct, frozen=True):
    """A request that was not decided: why, and a message for the caller."""

    code: Refusal
    message: str


class Denied(Exception):
    """Raised by a handler: the caller may not do this (Refusal.DENIED)."""


class NotFound(Exception):
    """Raised by a handler: the thing read does not exist (Refusal.NOT_FOUND)."""


class StillWriting(Exception):
    """Raised by a handler: the state it needs is still being written; retry
    (Refusal.OVERLOADED, nothing written)."""


class Unconfigured(Exception):
    """Raised by a handler: the operation needs configuration this server does not have."""


def check(denial: str | None) -> None:
    """Raise Denied for a denial of domain/access.py (None: allowed)."""
    if denial is not None:
        raise Denied(denial)


def internal_failure(what: str) -> Failure:
    """For an unexpected exception (a bug): log it with its traceback under a short reference
    and answer with only that reference, never the exception's class or text. Call it inside
    the `except` block."""
    reference = secrets.token_hex(4)
    log.exception("internal error %s: %s", reference, what)
    return Failure(Refusal.BUG, f"internal error (reference {reference}); nothing was written "
                   "for this request unless a retry with the same request_id says so")
