"""How much of its past a card keeps, and why: its state (in the writer's cache and in its one
snapshot) is bounded by what can still change, not by its history.

What stays: pending holds; the latest few settled authorizations (older ones a refund or a
capture reversal names are read back from the card's own stream: ledger/handlers/late.py);
purchases that may still be returned; points lots with points left (or that a kept purchase
redeemed from, so a return can put them back); coupons that are live, or that a kept purchase
used; and the sums the rules read (`records.History`). What goes is still in the log, where
the movements read model and `audit replay` find it.

Every bound below is counted from the events' own recorded times and order, so folding a
card's events gives the same state on any machine at any time (snapshots and replays agree).
A request naming a record beyond its window is declined with a result that says so
(DECLINED_REFUND_WINDOW_CLOSED, DECLINED_RETURN_WINDOW_CLOSED), never "not found".
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from domain.cards.records import PERIODS, History, PurchaseRecord, period_of
from domain.coupons.model import CouponStatus
from domain.points.program import DAY_US, QUALIFYING_WINDOW_US

if TYPE_CHECKING:
    from domain.cards.decide import CardState
    from domain.cards.events import PurchaseMade, PurchaseReturned

# A refund or a capture reversal may name an authorization for a year after it was made: card
# schemes let refunds come months after the sale, and a year covers every return policy we
# know of. Beyond it the refund is declined DECLINED_REFUND_WINDOW_CLOSED (the store refunds
# by a LoadValue instead, which is what a till does for a card it cannot link).
REFUND_WINDOW_US = 365 * DAY_US

# In memory (and in the snapshot) a card keeps its pending holds and only its latest 8 settled
# authorizations: what terminal reversals and same-minute refunds name. That set is a cache:
# an older one is found again in the card's own stream when a refund or a capture reversal
# names it (ledger/handlers/late.py), as long as it is among the card's last 5,000 events: one
# indexed read of at most that many events, about 10 ms, on the writer's thread. So a card's
# state does not grow with its sales (the writer's time per operation, the snapshot and a cold
# load stay flat however long its history), a full cache of 200,000 cards holds at most 8
# settled authorizations each (~0.6 kB), and a refund can still come a year later on a card
# used a dozen times a day. Beyond either bound: DECLINED_REFUND_WINDOW_CLOSED.
AUTHORIZATIONS_IN_MEMORY = 8
REFUND_LOOKBACK_EVENTS = 5_000

# Returns: a purchase may be returned for a year after it was made, and while it is among the
# card's latest 64 purchases (a shopper makes 50 to 100 a year across the alliance: most of a
# year of returns). The bound is the writer's memory: a purchase record weighs ~100-300 bytes
# (its lines), so 64 keep a card under ~20 kB and a full cache of 200,000 cards under ~4 GB
# in the worst case, where 250 would allow ~15 GB. Beyond either: DECLINED_RETURN_WINDOW_CLOSED
# (the till refunds by a LoadValue). Reading an older purchase back from the card's stream, as
# refunds do, is the way to a longer window; not built yet.
RETURN_WINDOW_US = 365 * DAY_US
PURCHASES_KEPT_MAX = 64

# Used and expired coupons beyond this many on a card go, oldest first (unless a kept purchase
# used them: a full return may restore them). ListCoupons then shows the live ones and the
# latest finished ones.
COUPONS_KEPT_MAX = 100

# Tier reviews read the qualifying spend of the 365 days before a period's end; a review may
# run up to two months late (the job was down), so spend is kept that much longer.
SPEND_KEPT_US = QUALIFYING_WINDOW_US + 62 * DAY_US
# Past this many spend entries (about the purchases kept), a purchase's spend joins the
# previous entry of the same UTC day (at the later time: it counts toward the tier up to a day
# longer, in the customer's favour). At most this many + one per day of SPEND_KEPT_US.
SPEND_ENTRIES_MAX = 64

# CAP rules read the current day, week or month; the last three of each are kept (a purchase at
# a store in another timezone may still fall in the previous day).
PERIODS_KEPT = 3


def let_go(dropped: dict[str, int], record_id: str) -> bool:
    """Was the record `record_id` ("<card number>.<version>") let go by a card whose history
    says `dropped`? (Or it was no such record: an id below the mark is declined as late.)"""
    card, _, version = record_id.rpartition(".")
    return version.isdigit() and card in dropped and 0 < int(version) <= dropped[card]


def _mark(dropped: dict[str, int], record_id: str) -> None:
    card, _, version = record_id.rpartition(".")
    if version.isdigit():
        dropped[card] = max(dropped.get(card, 0), int(version))


# ------------------------------------------------------------------------------ sums


def purchase_made(state: CardState, e: PurchaseMade) -> None:
    history = state.history
    history.purchases_made += 1
    earned = (e.lot.amount if e.lot else 0) + e.debt_settled
    if e.local_date and earned:
        for kind in PERIODS:
            key = f"{kind}|{period_of(e.local_date, kind)}"
            history.period_points[key] = history.period_points.get(key, 0) + earned
        if len(history.period_points) > PERIODS_KEPT * len(PERIODS):
            _trim_periods(history.period_points)
    if e.qualifying_minor:
        _add_spend(history, e.meta.recorded_at_us, e.qualifying_minor)
    for lot_id, _ in e.redeemed:
        _ref(state.refs, "L" + lot_id, 1)
    for use in e.coupons_used:
        _ref(state.refs, "C" + use.coupon_id, 1)


def purchase_returned(state: CardState, record: PurchaseRecord, e: PurchaseReturned) -> None:
    history = state.history
    taken = sum(p for _, p in e.points_clawed) + e.points_written_off + e.points_debt_added
    if record.local_date and taken:
        for kind in PERIODS:
            key = f"{kind}|{period_of(record.local_date, kind)}"
            if key in history.period_points:
                history.period_points[key] -= taken
    if e.qualifying_minor_returned:
        # The entry holding this purchase: the first at or after it (a merge moves spend later).
        spend = history.spend
        at = bisect.bisect_left(spend, (record.recorded_at_us, -(2**63)))
        if at < len(spend):
            spend[at] = (spend[at][0], spend[at][1] - e.qualifying_minor_returned)
    for lot_id, _ in e.points_clawed:
        _let_go_lot(state, lot_id)


def _trim_periods(periods: dict[str, int]) -> None:
    for kind in PERIODS:
        keys = sorted(k for k in periods if k.startswith(kind + "|"))
        for key in keys[:-PERIODS_KEPT]:
            del periods[key]


def _add_spend(history: History, at_us: int, amount: int) -> None:
    spend = history.spend
    if spend and at_us < spend[-1][0]:
        bisect.insort(spend, (at_us, amount))  # another process's clock, slightly behind
    elif (len(spend) >= SPEND_ENTRIES_MAX and spend
          and spend[-1][0] // DAY_US == at_us // DAY_US):
        spend[-1] = (at_us, spend[-1][1] + amount)
    else:
        spend.append((at_us, amount))
    cutoff = at_us - SPEND_KEPT_US
    old = 0
    while old < len(spend) and spend[old][0] <= cutoff:
        old += 1
    if old:
        del spend[:old]


def _ref(refs: dict[str, int], key: str, delta: int) -> None:
    count = refs.get(key, 0) + delta
    if count:
        refs[key] = count
    else:
        refs.pop(key, None)


# ------------------------------------------------------------------------------ letting go


def lot_spent(state: CardState, lot_id: str) -> None:
    """A lot with nothing left goes, unless a kept purchase redeemed from it."""
    _let_go_lot(state, lot_id)


def _let_go_lot(state: CardState, lot_id: str) -> None:
    lot = state.lots.get(lot_id)
    if lot is not None and lot.remaining == 0 and ("L" + lot_id) not in state.refs:
        del state.lots[lot_id]


def trim(state: CardState, now_us: int) -> None:
    """Let go of what can no longer change as of `now_us` (the recorded time of the event just
    applied). O(1) unless something is due to go."""
    _trim_authorizations(state, now_us)
    _trim_purchases(state, now_us)
    if len(state.coupons) > COUPONS_KEPT_MAX:
        _trim_coupons(state)


def _trim_authorizations(state: CardState, now_us: int) -> None:
    """The oldest settled authorizations beyond the count, or past the window, go (pending
    holds are never in `settled`): O(1) per event, O(1) per authorization let go."""
    holds, settled = state.holds, state.settled
    cutoff = now_us - REFUND_WINDOW_US
    while settled:
        authorization_id = next(iter(settled))
        hold = holds.get(authorization_id)
        if (len(settled) <= AUTHORIZATIONS_IN_MEMORY and hold is not None
                and hold.at_us > cutoff):
            return
        del settled[authorization_id]
        holds.pop(authorization_id, None)
        _mark(state.history.authorizations_dropped, authorization_id)


def _trim_purchases(state: CardState, now_us: int) -> None:
    purchases = state.purchases
    excess = len(purchases) - PURCHASES_KEPT_MAX
    cutoff = now_us - RETURN_WINDOW_US
    if excess <= 0:
        first = next(iter(purchases.values()), None)
        if first is None or first.recorded_at_us > cutoff:
            return
    gone: list[PurchaseRecord] = []
    for record in purchases.values():
        if len(gone) >= excess and record.recorded_at_us > cutoff:
            break
        gone.append(record)
    dropped = state.history.purchases_dropped
    for record in gone:
        del purchases[record.purchase_id]
        _mark(dropped, record.purchase_id)
        for lot_id, _ in record.redeemed:
            _ref(state.refs, "L" + lot_id, -1)
            _let_go_lot(state, lot_id)
        for coupon_id, _, _ in record.coupons_used:
            _ref(state.refs, "C" + coupon_id, -1)


def _trim_coupons(state: CardState) -> None:
    excess = len(state.coupons) - COUPONS_KEPT_MAX
    gone = []
    for coupon_id, coupon in state.coupons.items():
        if len(gone) >= excess:
            break
        if coupon.status != CouponStatus.ACTIVE and ("C" + coupon_id) not in state.refs:
            gone.append(coupon_id)
    for coupon_id in gone:
        del state.coupons[coupon_id]


def carried_refs(purchases: dict[str, PurchaseRecord]) -> dict[str, int]:
    """The references a replacement card's carried purchases hold on lots and coupons."""
    refs: dict[str, int] = {}
    for record in purchases.values():
        for lot_id, _ in record.redeemed:
            _ref(refs, "L" + lot_id, 1)
        for coupon_id, _, _ in record.coupons_used:
            _ref(refs, "C" + coupon_id, 1)
    return refs


def history_of(purchases: dict[str, PurchaseRecord]) -> History:
    """The sums of a replacement card written before cards carried their history: from the
    purchases it carried (all of them, then)."""
    history = History(purchases_made=len(purchases))
    for record in purchases.values():
        earned = record.points_earned - record.points_clawed
        if record.local_date and earned:
            for kind in PERIODS:
                key = f"{kind}|{period_of(record.local_date, kind)}"
                history.period_points[key] = history.period_points.get(key, 0) + earned
        if record.qualifying_minor - record.qualifying_returned:
            bisect.insort(history.spend, (record.recorded_at_us,
                                          record.qualifying_minor - record.qualifying_returned))
    if len(history.period_points) > PERIODS_KEPT * len(PERIODS):
        _trim_periods(history.period_points)
    return history
