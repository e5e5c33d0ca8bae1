"""Card events: the stored schema of a card's stream. Tags never change; add a new event instead.

Every event that moves value carries its double-entry legs (see domain.postings).
"""

from __future__ import annotations

import msgspec

from domain.cards.records import History, PurchaseRecord
from domain.common import Meta
from domain.coupons.decide import CouponUse
from domain.coupons.model import Coupon
from domain.points.purse import Lot
from domain.postings import Leg
from domain.rules.model import Line


class CardEvent(msgspec.Struct, frozen=True, array_like=True, tag_field="t"):
    meta: Meta


class CardIssued(CardEvent, frozen=True, tag="card.issued.v1"):
    card_number: str
    card_class: str
    currency: str
    issuing_partner_id: str
    issuing_store_id: str
    customer_ref: str


class CardActivated(CardEvent, frozen=True, tag="card.activated.v1"):
    reason: str


class CardBlocked(CardEvent, frozen=True, tag="card.blocked.v1"):
    reason: str


class CardUnblocked(CardEvent, frozen=True, tag="card.unblocked.v1"):
    reason: str


class CardClosed(CardEvent, frozen=True, tag="card.closed.v1"):
    reason: str


class HoldMoved(msgspec.Struct, frozen=True, array_like=True):
    """An authorization carried over to a replacement card: a pending hold (everything a
    capture needs) or a capture that can still be refunded (the refund lands on the new card).
    """

    authorization_id: str
    amount_minor: int
    expires_at_us: int
    store_id: str
    acquirer_partner_id: str
    status: int = 1  # HoldStatus.PENDING
    captured_minor: int = 0
    refunded_minor: int = 0
    authorized_at_us: int = 0  # 0 in events written before it was carried


class CardReplaced(CardEvent, frozen=True, tag="card.replaced.v1"):
    new_card_number: str
    reason: str
    legs: tuple[Leg, ...]


class CarriedLoyalty(msgspec.Struct, frozen=True, array_like=True):
    """What a replacement card takes over besides the value: the points purse, coupons, stamp
    cards, tier, points debt, and the purchases (so they can still be returned)."""

    lots: tuple[Lot, ...]
    coupons: tuple[Coupon, ...]
    stamps: tuple[tuple[str, int], ...]
    purchases: tuple[PurchaseRecord, ...]
    tier: str
    tier_since_us: int
    points_debt: int
    points_written_off: int
    previous_numbers: tuple[str, ...]  # every earlier number, oldest first (coupon codes)
    version_base: int  # events in the earlier cards' streams (keeps coupon ids unique)
    history: History | None = None  # None in events written before it was carried


class CardIssuedAsReplacement(CardEvent, frozen=True, tag="card.issued_as_replacement.v1"):
    card_number: str
    replaces: str
    card_class: str
    currency: str
    issuing_partner_id: str
    issuing_store_id: str
    customer_ref: str
    status: int
    balance_minor: int  # the value itself moves in the old card's CardReplaced legs
    holds: tuple[HoldMoved, ...]
    carried: CarriedLoyalty | None = None  # absent in events written before stage 2


class ValueLoaded(CardEvent, frozen=True, tag="sv.loaded.v1"):
    amount_minor: int
    payment_ref: str
    legs: tuple[Leg, ...]


class LoadReversed(CardEvent, frozen=True, tag="sv.load_reversed.v1"):
    original_request_id: str
    amount_minor: int
    legs: tuple[Leg, ...]


class ValueAuthorized(CardEvent, frozen=True, tag="sv.authorized.v1"):
    authorization_id: str
    requested_minor: int
    amount_minor: int
    expires_at_us: int
    acquirer_partner_id: str
    stan: str
    legs: tuple[Leg, ...]


class AuthorizationCaptured(CardEvent, frozen=True, tag="sv.captured.v1"):
    authorization_id: str
    amount_minor: int
    released_minor: int
    legs: tuple[Leg, ...]


class AuthorizationReleased(CardEvent, frozen=True, tag="sv.released.v1"):
    """A pending hold let go without capture: voided, reversed or expired (`reason`)."""

    authorization_id: str
    amount_minor: int
    reason: str
    legs: tuple[Leg, ...]


class CaptureReversed(CardEvent, frozen=True, tag="sv.capture_reversed.v1"):
    """A capture undone by a terminal reversal: the captured amount is held again."""

    authorization_id: str
    amount_minor: int
    legs: tuple[Leg, ...]
    # The authorization as it was, when the card no longer kept it in memory (found in its
    # stream: domain.cards.retention): the card takes it back. None otherwise.
    hold: HoldMoved | None = None


class ValueRefunded(CardEvent, frozen=True, tag="sv.refunded.v1"):
    authorization_id: str
    amount_minor: int
    legs: tuple[Leg, ...]
    hold: HoldMoved | None = None  # as in CaptureReversed: the authorization before the refund


class RuleAward(msgspec.Struct, frozen=True, array_like=True):
    """Points one rule gave: the explanation a till prints and an auditor replays."""

    rule_set: str  # "<rule set id>@<version>"
    rule_id: str
    points: int
    discount_minor: int = 0  # a DISCOUNT rule: what it took off the price


class StampProgress(msgspec.Struct, frozen=True, array_like=True):
    """A stamp card's progress in one purchase."""

    key: str  # "<rule set id>/<rule id>": survives new versions of the rule set
    before: int
    after: int
    needed: int
    free_units: int
    discount_minor: int  # what the free units took off
    stamped: tuple[tuple[int, int], ...]  # (line index, units that earned a stamp)


class PurchaseMade(CardEvent, frozen=True, tag="purchase.made.v1"):
    """A basket paid at a store: stored value charged, points redeemed and earned, at once.

    `purchase_id` is "{card_number}.{version}" of this event. `lot` is the points earned
    (None when nothing was); `redeemed` the (lot id, points) taken, earliest expiry first.
    """

    purchase_id: str
    acquirer_partner_id: str
    lines: tuple[Line, ...]
    weekday: int  # the store's local day (0 = Monday) and minute the rules saw
    minute_of_day: int
    qualifying_minor: int  # eligible spend: what counts towards tiers
    tier_after: str  # the card's tier after this purchase (an upgrade happens at once)
    total_minor: int
    discount_minor: int
    sv_charged_minor: int
    points_redeemed: int
    points_redeemed_value_minor: int
    other_tender_minor: int
    redeemed: tuple[tuple[str, int], ...]
    lot: Lot | None
    rule_sets: tuple[str, ...]  # every version in force, "<id>@<version>"
    awards: tuple[RuleAward, ...]
    legs: tuple[Leg, ...]
    coupons_used: tuple[CouponUse, ...]  # in the order applied, after member discounts
    coupons_issued: tuple[Coupon, ...]  # by THRESHOLD_BONUS rules with a coupon campaign
    local_date: str  # the store's local date, "YYYY-MM-DD" (periods of per-card caps)
    stamps: tuple[StampProgress, ...]
    override_discount_minor: int  # a manager's special discount (part of discount_minor)
    override_approver: str  # the approving STORE_MANAGER's credential id
    override_reason: str
    debt_settled: int  # of the points earned, what paid the card's points debt first
    # With the card's class before the event, weekday, minute_of_day and the pinned rule_sets
    # are every input of the evaluation: a replay recomputes the lot exactly.
    points_owner: str = ""  # the program's owner (partner id or "alliance"); "" without one
    points_value_micros: int = 0  # a point's value when earned (the points legs' rate)
    # The owner of the program whose points were redeemed when they are not the card's own
    # (redemption at a partner, PurchaseRequest.redeem_program): `redeemed` names lots of that
    # program's purse and the redemption's legs are its owner's. "" = points_owner's, as in
    # every event written before a purchase could redeem another program's points.
    redeemed_owner: str = ""


class PurchaseReturned(CardEvent, frozen=True, tag="purchase.returned.v1"):
    """Some lines of an earlier purchase brought back: stored value and redeemed points given
    back, earned points clawed back pro rata. Points that were already spent are written off
    (`points_written_off`, the program's loss): a card's points never go below zero."""

    purchase_id: str
    lines: tuple[tuple[int, int], ...]  # (line index, quantity)
    reason: str
    sv_refunded_minor: int
    points_restored: tuple[tuple[str, int], ...]  # (lot id, points) given back
    points_clawed: tuple[tuple[str, int], ...]  # (lot id, points) taken back
    points_written_off: int
    qualifying_minor_returned: int  # this return's share of the purchase's qualifying spend
    legs: tuple[Leg, ...]
    coupons_restored: tuple[CouponUse, ...]  # a full return, when the campaign says so
    stamps_taken: tuple[tuple[str, int, int], ...]  # (stamp key, line index, stamps) back
    points_debt_added: int  # spent points the card now owes (the POINTS_DEBT policy)


class TierChanged(CardEvent, frozen=True, tag="tier.changed.v1"):
    """A downgrade by the periodic review: the spend in the window that ended at
    `period_end_us` no longer reaches the card's tier."""

    tier: str
    qualifying_minor: int
    period_end_us: int


class CouponIssued(CardEvent, frozen=True, tag="coupon.issued.v1"):
    """A coupon given to the card by a manager (coupons a purchase earns are in PurchaseMade)."""

    coupon: Coupon


class CouponExpired(CardEvent, frozen=True, tag="coupon.expired.v1"):
    coupon_id: str
    remaining_minor: int  # the value that lapsed (0 for a percentage coupon)


class PointsExpired(CardEvent, frozen=True, tag="points.expired.v1"):
    """The unspent remainder of a lot whose time is up. A lot expires once: afterwards it has
    no remainder left to expire."""

    lot_id: str
    amount: int
    # At the lot's point value: points:{o}:outstanding -v, points_breakage:{o} +v (o: the
    # lot's program's owner). Empty in events written before the points legs.
    legs: tuple[Leg, ...] = ()


class PointsExchanged(CardEvent, frozen=True, tag="points.exchanged.v1"):
    """Points of one program left the card's purse and points of another arrived, on the
    same card, in one event (domain/exchange: both purses are the card's, so no saga)."""

    quote_id: str  # the quote's MAC: what "already used" remembers until the quote expires
    quote_expires_at_us: int
    from_program: str  # program owners (a lot says "" for the card's own program)
    to_program: str
    rate: str  # "<from>><to>@<version>": the version the quote pinned
    points_taken: int  # from the source purse, fee included
    fee_points: int
    points_given: int
    taken: tuple[tuple[str, int], ...]  # (lot id, points), earliest expiry first
    lot: Lot  # the points given, under the destination program's expiry policy
    utc_day: int  # the day the daily limit counts them in (days since 1970-01-01, UTC)
    legs: tuple[Leg, ...]


CARD_EVENTS: tuple[type[CardEvent], ...] = (
    CardIssued, CardActivated, CardBlocked, CardUnblocked, CardClosed, CardReplaced,
    CardIssuedAsReplacement, ValueLoaded, LoadReversed, ValueAuthorized, AuthorizationCaptured,
    AuthorizationReleased, CaptureReversed, ValueRefunded, PurchaseMade, PurchaseReturned,
    PointsExpired, TierChanged, CouponIssued, CouponExpired, PointsExchanged,
)

RELEASE_VOIDED = "VOIDED"
RELEASE_REVERSED = "REVERSED"
RELEASE_EXPIRED = "EXPIRED"
