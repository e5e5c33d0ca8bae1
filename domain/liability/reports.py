"""Liability, roll-forward and breakage from the read model's day sums.

What the sums are (projections/finance.py): every movement's double-entry legs summed by UTC
day, currency, account class, entity, counterparty and kind of movement (money, in minor
units), and every movement of points summed by day, program, issuing partner, bucket and kind
(in points). Accounts and buckets:

- `card_available`, `card_held` (entity: the card's issuer): stored value the issuer owes its
  card holders, free and held; their sum is the stored-value liability.
- `points` buckets `VESTED`, `PENDING` (entity: the program's owner): points outstanding;
  `DEBT`: points cards owe after returns (POINTS_DEBT policy); `WRITTEN_OFF`: points clawed
  back after they were spent (the program's loss, a memo: they are no longer outstanding).

Every kind of movement falls on one line of the roll-forward (`SV_LINES`, `POINTS_LINES`); a
kind no table names (a new event) falls on `adjustments`, so the roll-forward always ties and
the new kind shows up there until it is given a line. Kinds that only move value between a
card's free and held value, or from one card to its replacement, sum to zero on the
outstanding total and so add nothing to `adjustments`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import msgspec

from domain.liability import days

MICROS = 1_000_000

# Money kinds (projections/finance.py: KINDS) -> roll-forward line.
SV_LINES: dict[str, str] = {
    "LOADED": "loaded",
    "CAPTURED": "spent",
    "PURCHASE": "spent",
    "REFUNDED": "refunded",
    "RETURN": "refunded",
    "CAPTURE_REVERSED": "refunded",
    "LOAD_REVERSED": "adjustments",
    # Stored value does not expire, is not exchanged and is never written off in this ledger
    # yet: a new event kind that does is named here ("exchanged_in", "exchanged_out",
    # "expired", "written_off") and the line fills.
}
# Points kinds -> roll-forward line.
POINTS_LINES: dict[str, str] = {
    "EARNED": "earned",
    "RESTORED": "restored",
    "REDEEMED": "redeemed",
    "CLAWED_BACK": "clawed_back",
    "EXPIRED": "expired",
    "EXCHANGED_IN": "exchanged_in",  # points exchange (PointsExchanged)
    "EXCHANGED_OUT": "exchanged_out",
}
# Lines that lower the outstanding amount (shown as positive amounts, subtracted).
OUTFLOWS = frozenset({"spent", "redeemed", "clawed_back", "exchanged_out", "expired",
                      "written_off"})
SV_ORDER = ("loaded", "exchanged_in", "refunded", "spent", "exchanged_out", "expired",
            "written_off", "adjustments")
POINTS_ORDER = ("earned", "exchanged_in", "restored", "redeemed", "clawed_back",
                "exchanged_out", "expired", "written_off", "adjustments")
SV_EXPIRED_KINDS = frozenset(k for k, line in SV_LINES.items() if line == "expired")
POINTS_EXPIRED_KINDS = frozenset(k for k, line in POINTS_LINES.items() if line == "expired")


class ProgramValue(msgspec.Struct, frozen=True):
    """A program's point value from a time on (a ProgramDefined of the registry)."""

    program_id: str
    valid_from_us: int
    currency: str
    point_value_micros: int


def value_at(values: Iterable[ProgramValue], program_id: str, at_us: int) -> ProgramValue | None:
    """The definition of `program_id` in force just before `at_us` (None: not yet defined)."""
    found = None
    for value in values:  # in the order defined
        if value.program_id == program_id and value.valid_from_us < at_us:
            found = value
    return found


def value_minor(points: int, value: ProgramValue | None) -> int:
    """What `points` are worth at the point value, rounded down to the minor unit (as the till
    does: domain.points.program.Program.value_minor)."""
    return 0 if value is None else points * value.point_value_micros // MICROS


# ------------------------------------------------------------------------------ liability


class StoredValueLiability(msgspec.Struct, frozen=True):
    issuer_id: str
    currency: str
    available_minor: int
    held_minor: int
    outstanding_minor: int


class PointsLiability(msgspec.Struct, frozen=True):
    program_id: str
    currency: str
    vested_points: int
    pending_points: int
    outstanding_points: int
    point_value_micros: int
    value_minor: int  # outstanding points at the point value in force at the as-of time
    debt_points: int  # owed by cards after returns (not netted above)


class Liability(msgspec.Struct, frozen=True):
    as_of: str  # the end of this UTC day
    stored_value: tuple[StoredValueLiability, ...]
    points: tuple[PointsLiability, ...]


def liability(as_of: str, sv: Mapping[tuple[str, str, str], int],
              points: Mapping[tuple[str, str], int],
              values: Iterable[ProgramValue]) -> Liability:
    """`sv`: (issuer, currency, account) -> sum up to the end of `as_of`; `points`: (program,
    bucket) -> sum up to then."""
    per_issuer: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (issuer, currency, account), amount in sv.items():
        per_issuer[issuer, currency][account == "card_held"] += amount
    stored = tuple(StoredValueLiability(issuer, currency, a, h, a + h)
                   for (issuer, currency), (a, h) in sorted(per_issuer.items()))
    per_program: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (program, bucket), amount in points.items():
        per_program[program][bucket] += amount
    at = days.end_us(as_of)
    values = list(values)
    found = []
    for program, buckets in sorted(per_program.items()):
        value = value_at(values, program, at)
        outstanding = buckets["VESTED"] + buckets["PENDING"]
        found.append(PointsLiability(
            program, value.currency if value else "", buckets["VESTED"], buckets["PENDING"],
            outstanding, value.point_value_micros if value else 0,
            value_minor(outstanding, value), buckets["DEBT"]))
    return Liability(as_of, stored, tuple(found))


# ------------------------------------------------------------------------------ roll-forward


class RollForward(msgspec.Struct, frozen=True):
    """One issuer's stored value (minor units) or one program's points, from the start of
    `from_day` to the end of `to_day`: opening + inflows - outflows + adjustments = closing."""

    kind: str  # "STORED_VALUE" or "POINTS"
    entity_id: str  # the issuer, or the program
    currency: str  # the card's, or the program's (its points' value)
    from_day: str
    to_day: str
    opening: int
    lines: tuple[tuple[str, int], ...]  # (line, amount), outflows as positive amounts
    closing: int
    opening_value_minor: int = 0  # points only: at the point value in force then
    closing_value_minor: int = 0
    memo: tuple[tuple[str, int], ...] = ()  # points: debt and write-offs, not outstanding


def _lines(moves: Mapping[str, int], table: Mapping[str, str],
           order: tuple[str, ...]) -> dict[str, int]:
    lines = dict.fromkeys(order, 0)
    for kind, amount in moves.items():
        line = table.get(kind, "adjustments")
        lines[line] += -amount if line in OUTFLOWS else amount
    return lines


def _closing(opening: int, lines: Mapping[str, int]) -> int:
    return opening + sum(-a if line in OUTFLOWS else a for line, a in lines.items())


def roll_forward(from_day: str, to_day: str,
                 sv_opening: Mapping[tuple[str, str], int],
                 sv_moves: Mapping[tuple[str, str], Mapping[str, int]],
                 sv_closing: Mapping[tuple[str, str], int],
                 points_opening: Mapping[str, int],
                 points_moves: Mapping[str, Mapping[str, int]],
                 points_closing: Mapping[str, int],
                 points_memo: Mapping[str, Mapping[str, int]],
                 values: Iterable[ProgramValue]) -> tuple[RollForward, ...]:
    """Opening = the sums before `from_day`, moves = the sums by kind of the days in between,
    closing = the sums up to the end of `to_day` (read independently of the moves: the two
    must tie, and an assertion says so)."""
    values = list(values)
    found: list[RollForward] = []
    for key in sorted(set(sv_opening) | set(sv_moves) | set(sv_closing)):
        issuer, currency = key
        lines = _lines(sv_moves.get(key, {}), SV_LINES, SV_ORDER)
        opening, closing = sv_opening.get(key, 0), sv_closing.get(key, 0)
        assert _closing(opening, lines) == closing, (key, opening, lines, closing)
        found.append(RollForward("STORED_VALUE", issuer, currency, from_day, to_day, opening,
                                 tuple(lines.items()), closing))
    opened_at, closed_at = days.end_us(days.previous(from_day)), days.end_us(to_day)
    for program in sorted(set(points_opening) | set(points_moves) | set(points_closing)):
        lines = _lines(points_moves.get(program, {}), POINTS_LINES, POINTS_ORDER)
        opening, closing = points_opening.get(program, 0), points_closing.get(program, 0)
        assert _closing(opening, lines) == closing, (program, opening, lines, closing)
        at_open, at_close = value_at(values, program, opened_at), value_at(values, program,
                                                                             closed_at)
        found.append(RollForward(
            "POINTS", program, at_close.currency if at_close else "", from_day, to_day,
            opening, tuple(lines.items()), closing, value_minor(opening, at_open),
            value_minor(closing, at_close), tuple(sorted(points_memo.get(program, {}).items()))))
    return tuple(found)


# ------------------------------------------------------------------------------ breakage


class Breakage(msgspec.Struct, frozen=True):
    """What expired in a UTC month: stored value (minor units) of an issuer, or points of a
    program with their value at the point value in force on the day they expired."""

    month: str  # "YYYY-MM"
    kind: str  # "STORED_VALUE" or "POINTS"
    entity_id: str
    currency: str
    points: int
    amount_minor: int  # POINTS: at the point value in force on the day they expired
    # POINTS: what the ledger posted to points_breakage:{program} for them (each lot at the
    # value it was earned at, domain/purchases/decide.py: expired_points)
    posted_minor: int = 0


def breakage(sv_expired: Iterable[tuple[str, str, str, int]],
             points_expired: Iterable[tuple[str, str, int]],
             values: Iterable[ProgramValue],
             posted: Iterable[tuple[str, str, str, int]] = ()) -> tuple[Breakage, ...]:
    """`sv_expired`: (day, issuer, currency, amount) with amount the (negative) movement of
    the card accounts; `points_expired`: (day, program, points), negative likewise; `posted`:
    (day, program, currency, amount) credited to the program's breakage account."""
    values = list(values)
    sums: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for day, issuer, currency, amount in sv_expired:
        sums[days.month_of(day), "STORED_VALUE", issuer, currency][1] -= amount
    currencies: dict[str, str] = {}
    for day, program, points in points_expired:
        value = value_at(values, program, days.end_us(day))
        currency = currencies[program] = value.currency if value else ""
        key = (days.month_of(day), "POINTS", program, currency)
        sums[key][0] -= points
        # Valued per day, then summed: each day's rounding as the till would have done it.
        sums[key][1] += value_minor(-points, value)
    for day, program, currency, amount in posted:
        sums[days.month_of(day), "POINTS", program, currency][2] += amount
    return tuple(Breakage(*key, p, a, b) for key, (p, a, b) in sorted(sums.items()))
