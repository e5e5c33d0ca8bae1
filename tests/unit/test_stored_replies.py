"""A reply stored with its request key is replayed for every retry, for as long as keys are
kept: its encoding (msgspec arrays, by position) may only ever grow at the end of each struct,
with defaults. A field inserted, removed or moved anywhere else would silently give every
stored reply wrong values. Each stored struct's field order is pinned here, and a reply
encoded when this test was written must still decode to the same values."""

from __future__ import annotations

import msgspec
import pytest

from domain.cards.events import RuleAward, StampProgress
from ledger import codec

PINNED: dict[type, list[str]] = {
    codec.Outcome: ["result", "kind", "card_number", "authorization_id",
                    "approved_amount_minor", "card", "credential_id", "token", "replayed",
                    "purchase", "rule_sets", "maintenance", "coupons", "period_id", "recon",
                    "exchange"],
    codec.CardView: ["card_number", "card_class", "status", "currency", "balance_minor",
                     "held_minor", "available_minor", "issuing_partner_id", "issuing_store_id",
                     "replaced_by", "points", "version", "tier"],
    codec.PurchaseView: ["purchase_id", "total_minor", "discount_minor", "sv_charged_minor",
                         "points_redeemed", "points_redeemed_value_minor", "other_tender_minor",
                         "points_earned", "points_pending", "vests_at_us", "expires_at_us",
                         "rule_sets", "awards", "decline_reason", "tier", "sv_refunded_minor",
                         "points_restored", "points_clawed", "points_written_off",
                         "coupons_used", "coupons_issued", "coupon_discount_minor", "stamps",
                         "override_discount_minor", "override_approver", "points_debt_added",
                         "debt_settled"],
    codec.CouponView: ["coupon_id", "code", "campaign_id", "kind", "value_minor", "percent_bp",
                       "remaining_minor", "status", "valid_from_us", "valid_to_us",
                       "min_spend_minor", "funded_by"],
    codec.CouponUseView: ["coupon_id", "amount_minor", "used_up"],
    codec.MaintenanceView: ["points_expired", "tier_before", "tier_after", "coupons_expired"],
    codec.ReconView: ["paid_minor", "outstanding_minor", "run_id", "repeat_of", "runs",
                      "open_breaks", "resolutions"],
    codec.ExchangeView: ["quote_id", "from_program", "to_program", "rate_version",
                         "points_taken", "fee_points", "points_given", "expires_at_us",
                         "lot_id", "lot_expires_at_us", "decline_reason"],
    codec.PurseView: ["program", "points", "pending"],
    RuleAward: ["rule_set", "rule_id", "points", "discount_minor"],
    StampProgress: ["key", "before", "after", "needed", "free_units", "discount_minor",
                    "stamped"],
}

# An Outcome with every field set, encoded on 2026-12-02 (see the value below).
GOLDEN = bytes.fromhex(
    "9d01a85075726368617365b036303030303030303030303030303135b2363030303030303030303030303031"
    "352e37cd04d29db036303030303030303030303030303135a356495002a3555344cd138864cd1324a25031a2"
    "5331a04d09a4474f4c44a463726564a0c2dc001bb2363030303030303030303030303031352e39cc97020304"
    "05060708090a91a37240319194a3724031a4626173650b0ca3776879a653494c5645520d0e0f109193a24b31"
    "11c3919ca24b32a74b322d434f4445a443414d500112131401151617a25031189197a3746561010205000091"
    "92000119a36d67721a1b90941ca4474f4c44a653494c5645521d90"
)
GOLDEN_VALUE = codec.Outcome(
    1, "Purchase", "6000000000000015", "6000000000000015.7", 1234,
    codec.CardView("6000000000000015", "VIP", 2, "USD", 5000, 100, 4900, "P1", "S1", "", 77, 9,
                   "GOLD"),
    "cred", "", False,
    codec.PurchaseView("6000000000000015.9", 151, 2, 3, 4, 5, 6, 7, 8, 9, 10, ("r@1",),
                       (RuleAward("r@1", "base", 11, 12),), "why", "SILVER", 13, 14, 15, 16,
                       (codec.CouponUseView("K1", 17, True),),
                       (codec.CouponView("K2", "K2-CODE", "CAMP", 1, 18, 19, 20, 1, 21, 22, 23,
                                         "P1"),),
                       24, (StampProgress("tea", 1, 2, 5, 0, 0, ((0, 1),)),), 25, "mgr", 26,
                       27),
    (), codec.MaintenanceView(28, "GOLD", "SILVER", 29), ())


@pytest.mark.parametrize("struct", list(PINNED), ids=lambda t: t.__name__)
def test_stored_fields_only_grow_at_the_end(struct: type) -> None:
    fields = msgspec.structs.fields(struct)
    names = [f.name for f in fields]
    pinned = PINNED[struct]
    assert names[:len(pinned)] == pinned, "a stored field was inserted, removed or moved"
    for added in fields[len(pinned):]:  # new fields decode from old records by their default
        assert added.default is not msgspec.NODEFAULT or (
            added.default_factory is not msgspec.NODEFAULT), added.name


def test_a_reply_stored_before_still_decodes_to_the_same_values() -> None:
    assert codec.decode_outcome(GOLDEN) == GOLDEN_VALUE
