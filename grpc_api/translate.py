"""Proto <-> domain for the basket flow and the rules: pure translation, no decisions."""

from __future__ import annotations

from typing import Any

from domain.common import FOREVER_US, InvalidInput, format_time_us, parse_time_us
from domain.coupons.model import Campaign, DefineCouponCampaign
from domain.points.program import Clawback, DefineProgram, TierLevel
from domain.purchases.commands import Purchase, Return, ReturnLine
from domain.rules.model import (
    MULTIPLIER_BP_ONE,
    Effect,
    Line,
    Rounding,
    Rule,
    RuleSet,
    Stacking,
)
from grpc_api.generated import pos_pb2 as pb
from ledger.codec import CouponUseView, CouponView, Outcome

DAY_MINUTES = 24 * 60


def _enum(value: int, kind: type, field: str, default: Any) -> Any:
    if value == 0:
        return default
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(field, f"unknown value {value}") from None


def rule(message: pb.Rule, index: int) -> Rule:
    where = f"rule_set.rules[{index}]"
    if message.effect not in Effect._value2member_map_:
        raise InvalidInput(f"{where}.effect", "must be EARN, MULTIPLY, EXCLUDE, "
                           "THRESHOLD_BONUS, CAP, DISCOUNT, STAMP or FIRST_PURCHASE_BONUS")
    effect = Effect(message.effect)
    return Rule(
        rule_id=message.rule_id, effect=effect, categories=tuple(message.categories),
        skus=tuple(message.skus), card_classes=tuple(message.card_classes),
        tiers=tuple(message.tiers), weekdays=tuple(message.weekdays),
        minute_from=message.minute_from, minute_to=message.minute_to or DAY_MINUTES,
        rate_num=message.rate_num,
        rate_den=message.rate_den if effect == Effect.EARN else 1,
        rounding=_enum(message.rounding, Rounding, f"{where}.rounding", Rounding.FLOOR),
        multiplier_bp=(message.multiplier_bp if effect == Effect.MULTIPLY
                       else MULTIPLIER_BP_ONE),
        stacking=_enum(message.stacking, Stacking, f"{where}.stacking", Stacking.COMBINE),
        priority=message.priority, threshold_minor=message.threshold_minor,
        points=message.points, discount_bp=message.discount_bp,
        coupon_campaign=message.coupon_campaign, stamps_needed=message.stamps_needed,
        cap_period=message.cap_period)


def rule_set(message: pb.RuleSet) -> RuleSet:
    return RuleSet(
        rule_set_id=message.rule_set_id, version=message.version, scope=message.scope,
        valid_from_us=parse_time_us(message.valid_from, "rule_set.valid_from", 0),
        valid_to_us=parse_time_us(message.valid_to, "rule_set.valid_to", FOREVER_US),
        rules=tuple(rule(r, i) for i, r in enumerate(message.rules)))


def rule_set_message(value: RuleSet) -> pb.RuleSet:
    return pb.RuleSet(
        rule_set_id=value.rule_set_id, version=value.version, scope=value.scope,
        valid_from=format_time_us(value.valid_from_us),
        valid_to=format_time_us(value.valid_to_us),
        rules=[pb.Rule(
            rule_id=r.rule_id, effect=int(r.effect), categories=r.categories, skus=r.skus,
            card_classes=r.card_classes, tiers=r.tiers, weekdays=r.weekdays,
            minute_from=r.minute_from, minute_to=r.minute_to % DAY_MINUTES,
            rate_num=r.rate_num, rate_den=r.rate_den, rounding=int(r.rounding),
            multiplier_bp=r.multiplier_bp, stacking=int(r.stacking), priority=r.priority,
            threshold_minor=r.threshold_minor, points=r.points, discount_bp=r.discount_bp,
            coupon_campaign=r.coupon_campaign, stamps_needed=r.stamps_needed,
            cap_period=r.cap_period) for r in value.rules])


def define_program(message: pb.DefineProgramRequest) -> DefineProgram:
    return DefineProgram(message.owner, message.currency, message.point_value_micros,
                         int(message.expiry_kind), message.expiry_n, message.timezone,
                         message.vesting_days,
                         tuple(TierLevel(t.name, t.threshold_minor) for t in message.tiers),
                         int(message.clawback) or Clawback.WRITE_OFF)


def purchase(message: pb.PurchaseRequest, approver: str = "") -> Purchase:
    """`approver`: the credential id of message.override_token (the servicer looks it up)."""
    return Purchase(message.card_number, message.currency,
                    tuple(Line(line.sku, line.category, line.quantity, line.unit_price_minor,
                               line.margin_minor)
                          for line in message.lines),
                    message.stored_value_minor, message.allow_partial, message.points_to_redeem,
                    message.local_time, message.receipt_ref, tuple(message.coupon_codes),
                    message.override_discount_minor, approver, message.override_reason,
                    message.stored_value_pays_rest, message.redeem_program)


def return_command(message: pb.ReturnRequest) -> Return:
    return Return(message.purchase_id,
                  tuple(ReturnLine(line.line_index, line.quantity) for line in message.lines),
                  message.reason)


def purchase_reply(outcome: Outcome, card: pb.Card | None) -> pb.PurchaseReply:
    p = outcome.purchase
    if p is None:  # declined before anything was evaluated (card or purchase not found)
        return pb.PurchaseReply(result=outcome.result, card=card, replayed=outcome.replayed)
    return pb.PurchaseReply(
        result=outcome.result, purchase_id=p.purchase_id, total_minor=p.total_minor,
        discount_minor=p.discount_minor, stored_value_charged_minor=p.sv_charged_minor,
        points_redeemed=p.points_redeemed,
        points_redeemed_value_minor=p.points_redeemed_value_minor,
        other_tender_minor=p.other_tender_minor, points_earned=p.points_earned,
        points_pending=p.points_pending, points_vest_at=format_time_us(p.vests_at_us),
        points_expire_at=format_time_us(p.expires_at_us), rule_sets=p.rule_sets,
        explanation=[pb.RuleAward(rule_set=a.rule_set, rule_id=a.rule_id, points=a.points,
                                  discount_minor=a.discount_minor) for a in p.awards],
        decline_reason=p.decline_reason, stored_value_refunded_minor=p.sv_refunded_minor,
        points_restored=p.points_restored, points_clawed_back=p.points_clawed,
        points_written_off=p.points_written_off, card=card, replayed=outcome.replayed,
        tier=p.tier, coupons_used=[coupon_use_message(u) for u in p.coupons_used],
        coupons_issued=[coupon_message(c) for c in p.coupons_issued],
        coupon_discount_minor=p.coupon_discount_minor,
        stamps=[pb.StampProgress(stamp_card=s.key, before=_int32(s.before),
                                 after=_int32(s.after), needed=s.needed,
                                 free_units=_int32(s.free_units),
                                 discount_minor=s.discount_minor) for s in p.stamps],
        override_discount_minor=p.override_discount_minor,
        override_approved_by=p.override_approver, points_debt_added=p.points_debt_added,
        points_debt_settled=p.debt_settled, points_redeemed_program=p.redeemed_program)


def _int32(value: int) -> int:
    """A count shown in an int32 field: stamps held can pass 2**31 only over thousands of
    million-unit purchases that never had room for a free unit; the reply shows the bound
    rather than fail after the purchase committed."""
    return min(value, 2**31 - 1)


def coupon_use_message(use: CouponUseView) -> pb.CouponUse:
    return pb.CouponUse(coupon_id=use.coupon_id, amount_minor=use.amount_minor,
                        used_up=use.used_up)


def coupon_message(c: CouponView) -> pb.Coupon:
    return pb.Coupon(coupon_id=c.coupon_id, code=c.code, campaign_id=c.campaign_id, kind=c.kind,
                     value_minor=c.value_minor, percent_bp=c.percent_bp,
                     remaining_minor=c.remaining_minor, status=c.status,
                     valid_from=format_time_us(c.valid_from_us),
                     valid_to=format_time_us(c.valid_to_us), min_spend_minor=c.min_spend_minor,
                     funded_by=c.funded_by)


def define_campaign(message: pb.DefineCouponCampaignRequest) -> DefineCouponCampaign:
    c = message.campaign
    if not c.valid_to:
        raise InvalidInput("valid_to", "is required: a coupon always expires")
    return DefineCouponCampaign(Campaign(
        c.campaign_id, c.owner, c.currency, int(c.kind), c.value_minor, c.percent_bp,
        c.min_spend_minor, parse_time_us(c.valid_from, "valid_from", 0),
        parse_time_us(c.valid_to, "valid_to", FOREVER_US), tuple(c.stores),
        tuple(c.categories), c.partial_use, c.restore_on_return, c.funded_by))
