"""Records a card keeps about its purchases (and carries to a replacement card)."""

from __future__ import annotations

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
