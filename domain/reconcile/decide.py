"""Recording reconciliation runs and resolving their breaks: the commands, who may, and the
registry's book of runs (pure; the matching itself is done by the reader, matching.py, and the
writer records its result).

A run is a ReconciliationRecorded registry event: the file's digest, the number of rows on
each side, the counts per class and the ids of the breaks (8 bytes each; no rows, no personal
data). The same file for the same partner and period finds the same result (a closed period
never changes) and the run says it repeats the first one (`repeat_of`). A break of the latest
run can be resolved with a reason (ReconciliationBreakResolved); break ids are stable from run
to run (matching.py), so a resolved break that comes back shows as resolved.

Who: ADMIN and the alliance's FINANCE for every partner, a FINANCE credential of a partner for
its own; AUDITOR (and those) read the runs.
"""

from __future__ import annotations

import msgspec

from domain.common import InvalidInput, Meta, Principal, Result, Role, check_id, check_text, shown
from domain.reconcile.matching import BREAK_ID_BYTES, MatchClass, Matching
from domain.registry.events import ReconciliationBreakResolved, ReconciliationRecorded

DIGEST_HEX = 64
REASON_MAX = 200


def _check_period(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput("period_id", f"must be a period id >= 1, not {shown(value)}")
    return value


class RecordReconciliation(msgspec.Struct, frozen=True, array_like=True,
                           tag="RecordReconciliation"):
    partner_id: str
    period_id: int
    file_digest: str
    file_rows: int
    ledger_rows: int
    counts: tuple[int, ...]  # per MatchClass, by number
    break_ids: bytes

    def validate(self) -> None:
        check_id(self.partner_id, "partner_id")
        _check_period(self.period_id)
        if len(self.file_digest) != DIGEST_HEX or any(c not in "0123456789abcdef"
                                                     for c in self.file_digest):
            raise InvalidInput("file_digest", "must be 64 lowercase hex characters")
        if len(self.counts) != len(MatchClass) or any(n < 0 for n in self.counts):
            raise InvalidInput("counts", f"must be {len(MatchClass)} counts >= 0")
        if len(self.break_ids) != BREAK_ID_BYTES * (sum(self.counts) - self.counts[0]):
            raise InvalidInput("break_ids", "must hold one id per break")
        # each pair holds a row of both sides, the other classes one row of one side
        matched, mismatched, no_ledger, no_file, dup_file, dup_ledger = self.counts
        if self.file_rows != matched + mismatched + no_ledger + dup_file:
            raise InvalidInput("file_rows", "must equal the file's rows in the counts")
        if self.ledger_rows != matched + mismatched + no_file + dup_ledger:
            raise InvalidInput("ledger_rows", "must equal the ledger's rows in the counts")


class ResolveBreak(msgspec.Struct, frozen=True, array_like=True, tag="ResolveBreak"):
    partner_id: str
    period_id: int
    break_id: str
    reason: str

    def validate(self) -> None:
        check_id(self.partner_id, "partner_id")
        _check_period(self.period_id)
        if len(self.break_id) != 2 * BREAK_ID_BYTES or any(
                c not in "0123456789abcdef" for c in self.break_id):
            raise InvalidInput("break_id", f"must be {2 * BREAK_ID_BYTES} lowercase hex "
                               f"characters, not {shown(self.break_id)}")
        check_text(self.reason, "reason", required=True, limit=REASON_MAX)


class GetReconciliation(msgspec.Struct, frozen=True, array_like=True,
                        tag="GetReconciliation"):
    partner_id: str
    period_id: int

    def validate(self) -> None:
        check_id(self.partner_id, "partner_id")
        _check_period(self.period_id)


class Run(msgspec.Struct, frozen=True, array_like=True):
    run_id: str
    file_digest: str
    file_rows: int
    ledger_rows: int
    counts: tuple[int, ...]
    repeat_of: str
    recorded_at_us: int
    credential_id: str


class Resolution(msgspec.Struct, frozen=True, array_like=True):
    break_id: str
    reason: str
    resolved_at_us: int
    credential_id: str


class ReconBook(msgspec.Struct):
    runs: dict[str, list[Run]] = {}  # "<partner>/<period>" -> runs, oldest first
    open_breaks: dict[str, frozenset[str]] = {}  # the latest run's break ids
    resolved: dict[str, dict[str, Resolution]] = {}  # -> break id -> its resolution


def scope_key(partner_id: str, period_id: int) -> str:
    return f"{partner_id}/{period_id}"


def may_reconcile(p: Principal, partner_id: str) -> str | None:
    if p.role == Role.ADMIN or (p.role == Role.FINANCE and not p.partner_id):
        return None
    if p.role == Role.FINANCE and p.partner_id == partner_id:
        return None
    if p.role == Role.FINANCE:
        return (f"the FINANCE credential of {shown(p.partner_id)} may not reconcile partner "
                f"{shown(partner_id)}")
    return f"role {Role(p.role).name} may not reconcile"


def may_read(p: Principal, partner_id: str) -> str | None:
    if p.role == Role.AUDITOR:
        return None
    return may_reconcile(p, partner_id)


def check_scope(partners: object, open_period: int, partner_id: str, period_id: int) -> None:
    """InvalidInput: an unknown partner, or a period that is not closed."""
    if partner_id not in partners:  # type: ignore[operator]
        raise InvalidInput("partner_id", f"unknown partner {shown(partner_id)}")
    if period_id >= open_period:
        raise InvalidInput("period_id", f"period {period_id} is not closed (period "
                           f"{open_period} is open): reconcile a closed period")


def decide_run(book: ReconBook, command: RecordReconciliation,
               meta: Meta) -> ReconciliationRecorded:
    key = scope_key(command.partner_id, command.period_id)
    runs = book.runs.get(key, [])
    first = next((r.run_id for r in runs if r.file_digest == command.file_digest), "")
    return ReconciliationRecorded(
        meta, f"{command.partner_id}-{command.period_id}-{len(runs) + 1}", command.partner_id,
        command.period_id, command.file_digest, command.file_rows, command.ledger_rows,
        tuple(command.counts), command.break_ids, first)


def decide_resolve(book: ReconBook, command: ResolveBreak,
                   meta: Meta) -> tuple[Result, ReconciliationBreakResolved | None]:
    key = scope_key(command.partner_id, command.period_id)
    if key not in book.runs:
        raise InvalidInput("period_id", f"partner {shown(command.partner_id)} has no "
                           f"reconciliation of period {command.period_id}")
    if command.break_id not in book.open_breaks.get(key, frozenset()):
        raise InvalidInput("break_id", f"{shown(command.break_id)} is not a break of the latest "
                           f"reconciliation of {command.partner_id} for period "
                           f"{command.period_id}")
    if command.break_id in book.resolved.get(key, {}):
        return Result.DECLINED_INVALID_STATE, None  # resolved already
    return Result.APPROVED, ReconciliationBreakResolved(
        meta, command.partner_id, command.period_id, command.break_id, command.reason)


def evolve_recon(book: ReconBook,
                 event: ReconciliationRecorded | ReconciliationBreakResolved) -> None:
    key = scope_key(event.partner_id, event.period_id)
    if isinstance(event, ReconciliationRecorded):
        book.runs.setdefault(key, []).append(Run(
            event.run_id, event.file_digest, event.file_rows, event.ledger_rows, event.counts,
            event.repeat_of, event.meta.recorded_at_us, event.meta.credential_id))
        ids = event.break_ids
        book.open_breaks[key] = frozenset(ids[i:i + BREAK_ID_BYTES].hex()
                                          for i in range(0, len(ids), BREAK_ID_BYTES))
    else:
        book.resolved.setdefault(key, {})[event.break_id] = Resolution(
            event.break_id, event.reason, event.meta.recorded_at_us, event.meta.credential_id)


def record_command(partner_id: str, period_id: int, found: Matching) -> RecordReconciliation:
    """The command that records a run of `match` (its digest, counts and break ids)."""
    return RecordReconciliation(
        partner_id, period_id, found.file_digest, found.file_rows, found.ledger_rows,
        found.counts(), b"".join(bytes.fromhex(item.break_id) for item in found.breaks()))
