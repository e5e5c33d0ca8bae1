"""Records a card keeps about its purchases (and carries to a replacement card)."""

from __future__ import annotations

import datetime as dt

import msgspec

from domain.rules.model import Line


class PurchaseRecord(msgspec.Struct, array_like=True):
    """What a return needs to know about a purchase, and what was returned so far."""

    purchase_id: str
    store_id: str
    acquirer_partner_id: str
    lines: tuple[Line, ...]
    sv_charged_minor: int
    points_redeemed: int
    redeemed: tuple[tuple[str, int], ...]
    points_earned: int
    lot_id: str  # "" when nothing was earned
    returned: list[int]  # quantity returned, per line
    sv_refunded_minor: int = 0
    points_restored: int = 0
    points_clawed: int = 0  # including what was written off
    recorded_at_us: int = 0
    qualifying_minor: int = 0
    qualifying_returned: int = 0
    coupons_used: tuple[tuple[str, int, bool], ...] = ()  # (coupon id, amount, used up)
    local_date: str = ""
    stamped: tuple[tuple[str, int, int], ...] = ()  # (stamp key, line index, stamps earned)
    stamps_taken: dict[str, int] = {}  # "<key>#<line index>" -> stamps a return took back
    # What the points legs of a return reverse (domain/postings.py): the program's owner, a
    # point's value when earned, and what the redeemed points paid.
    points_owner: str = ""
    points_value_micros: int = 0
    points_redeemed_value_minor: int = 0
    redeemed_owner: str = ""  # the redeemed points' program's owner ("" = points_owner)


class History(msgspec.Struct, array_like=True):
    """What a card remembers of its past beyond the records it still keeps (see
    domain.cards.retention): the sums the rules need, and how far records were let go, so a
    late request is told that it is late rather than that it never existed."""

    purchases_made: int = 0  # FIRST_PURCHASE_BONUS: none made before
    # CAP rules per card per period: net points earned (less what returns took back) per
    # "DAY|2026-12-03", "WEEK|2026-W49" and "MONTH|2026-12", the latest few periods of each.
    period_points: dict[str, int] = {}
    # Tiers: (recorded at, qualifying spend less returns), in time order, for the qualifying
    # window and the slack a late tier review may look back (retention.SPEND_KEPT_US).
    spend: list[tuple[int, int]] = []
    # The highest version let go per card number ("<card>.<version>" ids): authorizations
    # (refunds, reversals) and purchases (returns).
    authorizations_dropped: dict[str, int] = {}
    purchases_dropped: dict[str, int] = {}


PERIODS = ("DAY", "WEEK", "MONTH")


def period_of(local_date: str, period: str) -> str:
    """The calendar period a "YYYY-MM-DD" falls in: the day, the ISO week or the month."""
    if period == "DAY":
        return local_date
    if period == "MONTH":
        return local_date[:7]
    year, week, _ = dt.date.fromisoformat(local_date).isocalendar()
    return f"{year}-W{week:02d}"
