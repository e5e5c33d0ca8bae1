"""Rule sets as data: what a promotion says, validated before anything is published.

A rule set belongs to a scope (the alliance, a partner or a store), has a version and an
effective window, and holds rules. Every rule may carry conditions (card classes, tiers,
weekdays and a time of day in the store's timezone, categories or SKUs) and one effect:

- EARN: points per whole currency unit of eligible spend, as a fraction `rate_num/rate_den`
  per minor unit scaled by `unit_minor` (e.g. 1 point per 1.00 EUR: rate_num=1, rate_den=100);
- MULTIPLY: multiplies the base points of the lines it applies to (basis points, 10000 = 1x);
- EXCLUDE: lines it applies to earn nothing and do not count as eligible spend;
- THRESHOLD_BONUS: flat points, and/or a coupon of `coupon_campaign`, when the eligible
  spend reaches `threshold_minor`;
- CAP: at most `points` for the whole purchase (and never more than POINTS_PER_PURCHASE_MAX,
  with no CAP rule at all);
- STAMP, FIRST_PURCHASE_BONUS and CAP with a `cap_period`: rules on the card's history,
  applied after the basket's evaluation (domain/purchases/stateful.py);
- DISCOUNT: a member discount of `discount_bp` (10000 = 100 %) off the lines it applies to,
  rounded down; discounts never stack: the applicable one with the highest `priority` (then the
  lowest position) applies alone. A discounted line earns, and counts as eligible spend, on
  what is paid for it.

Stacking is explicit. Multipliers marked COMBINE multiply together (the product saturates at
100x); if any EXCLUSIVE multiplier applies to a line, the one with the highest `priority` (then
the lowest position) applies alone. Several EARN rules may apply to a line: the highest priority
one is used. All arithmetic is on integers with the rounding mode of the EARN rule, so two
evaluators that follow this text give the same points to the point.
"""

from __future__ import annotations

import enum
import re

import msgspec

from domain.common import InvalidInput, check_time_us, shown

RULE_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,48}")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,48}")

# Bounds that keep every intermediate value of both evaluators (reference.py and the numba
# kernel, which works in int64: at most 9.2e18) inside int64. Worst cases, per line:
#   amount            <= LINE_AMOUNT_MAX (1e9 minor = 10 million units: no till line is bigger)
#   discount product  amount * discount_bp           <= 1e9 * 1e4  = 1e13
#   EARN numerator    amount * rate_num (x2, half up) <= 2 * 1e9 * 1e3 = 2e12, so base <= 1e12
#   multiplier steps  product * multiplier_bp        <= 1e6 * 1e6  = 1e12, because the product
#                     of COMBINE multipliers saturates at MULTIPLIER_PRODUCT_MAX (100x: no
#                     promotion pays more than a hundredfold, and without the bound two 100x
#                     multipliers on a big line overflowed: 1e12 * 1e8 = 1e20)
#   line points       base * product                 <= 1e12 * 1e6  = 1e18
# per basket: lines <= LINES_MAX (500, domain/purchases/commands.py), so line gifts sum to at
# most 500 * 1e14 = 5e16 and eligible spend to 5e11; bonuses add at most 3 rule sets * 256
# rules * POINTS_MAX = 7.7e14; the total is then cut to POINTS_PER_PURCHASE_MAX like a CAP.
# A card's points (the sum of its lots, an int64 on the wire) then take over nine million
# purchases at the per-purchase maximum to reach int64.
LINE_AMOUNT_MAX = 10**9
# Units in one line: a million is beyond any till (a pallet is one line of tens or hundreds);
# with free lines (price 0) nothing else bounds it, and stamp counts, shown as int32 on the
# wire, grow with it.
QUANTITY_MAX = 1_000_000
RATE_NUM_MAX = 1_000
RATE_DEN_MAX = 1_000_000
MULTIPLIER_BP_MAX = 1_000_000
MULTIPLIER_BP_ONE = 10_000
MULTIPLIER_PRODUCT_MAX = MULTIPLIER_BP_MAX
POINTS_MAX = 10**12
POINTS_PER_PURCHASE_MAX = POINTS_MAX
RULES_MAX = 256
VALUES_MAX = 1_000  # categories, SKUs, classes or tiers named by one rule


class Effect(enum.IntEnum):
    EARN = 1
    MULTIPLY = 2
    EXCLUDE = 3
    THRESHOLD_BONUS = 4
    CAP = 5
    DISCOUNT = 6
    STAMP = 7
    FIRST_PURCHASE_BONUS = 8


STATEFUL = frozenset({Effect.STAMP, Effect.FIRST_PURCHASE_BONUS})
CAP_PERIODS = ("", "DAY", "WEEK", "MONTH")
STAMPS_NEEDED_MAX = 1_000


class Stacking(enum.IntEnum):
    COMBINE = 1
    EXCLUSIVE = 2


class Rounding(enum.IntEnum):
    FLOOR = 1
    HALF_UP = 2
    CEIL = 3


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    effect: Effect
    # conditions (empty = any)
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    card_classes: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    weekdays: tuple[int, ...] = ()  # 0 = Monday ... 6 = Sunday, in the store's timezone
    minute_from: int = 0  # time of day window [minute_from, minute_to) in the store's timezone
    minute_to: int = 24 * 60
    # effect parameters
    rate_num: int = 0  # EARN
    rate_den: int = 1  # EARN
    rounding: Rounding = Rounding.FLOOR  # EARN
    multiplier_bp: int = MULTIPLIER_BP_ONE  # MULTIPLY
    stacking: Stacking = Stacking.COMBINE  # MULTIPLY
    priority: int = 0  # EARN and EXCLUSIVE MULTIPLY: higher wins
    threshold_minor: int = 0  # THRESHOLD_BONUS
    points: int = 0  # THRESHOLD_BONUS: bonus; CAP: the cap
    discount_bp: int = 0  # DISCOUNT: 1..10000 (10000 = 100 %)
    coupon_campaign: str = ""  # THRESHOLD_BONUS: also issue a coupon of this campaign
    stamps_needed: int = 0  # STAMP: units that earn stamps before one is free
    cap_period: str = ""  # CAP: "" = per purchase; DAY, WEEK, MONTH = per card per period

    @property
    def per_basket(self) -> bool:
        """Evaluated by the kernel (and the reference) on the basket alone."""
        return self.effect not in STATEFUL and not (self.effect == Effect.CAP
                                                    and self.cap_period)


class RuleSet(msgspec.Struct, frozen=True, kw_only=True):
    rule_set_id: str
    version: int
    scope: str  # "alliance", "partner:P1" or "store:S1"
    valid_from_us: int
    valid_to_us: int  # exclusive
    rules: tuple[Rule, ...]


class Line(msgspec.Struct, frozen=True, array_like=True):
    sku: str
    category: str
    quantity: int
    unit_price_minor: int
    margin_minor: int = 0  # optional, per unit: recorded with the purchase for the partners

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_price_minor


class Basket(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules look at: the lines, who buys, and the store's local time."""

    lines: tuple[Line, ...]
    card_class: str
    tier: str = ""
    weekday: int  # 0 = Monday
    minute_of_day: int


class RuleSetInvalid(InvalidInput):
    """A rule set that cannot be published; names the rule and its field."""

    def __init__(self, rule_index: int | None, rule_id: str, field: str, problem: str) -> None:
        named = rule_id if len(rule_id) <= 48 else rule_id[:40] + "..."
        where = f"rules[{rule_index}] ({named}).{field}" if rule_index is not None else field
        super().__init__(where, problem)
        self.rule_id = rule_id


def _check_tokens(index: int, rule: Rule, field: str, values: tuple[str, ...]) -> None:
    if len(values) > VALUES_MAX:
        raise RuleSetInvalid(index, rule.rule_id, field, f"names more than {VALUES_MAX} values")
    for value in values:
        if not TOKEN_PATTERN.fullmatch(value):
            raise RuleSetInvalid(index, rule.rule_id, field,
                                 f"{shown(value)} is not 1..48 of [A-Za-z0-9_.:-]")


def _check_rule(index: int, rule: Rule) -> None:
    def bad(field: str, problem: str) -> RuleSetInvalid:
        return RuleSetInvalid(index, rule.rule_id, field, problem)

    if not RULE_ID_PATTERN.fullmatch(rule.rule_id):
        raise bad("rule_id", "must be 1..48 of [A-Za-z0-9_.-]")
    for field in ("categories", "skus", "card_classes", "tiers"):
        _check_tokens(index, rule, field, getattr(rule, field))
    if any(not 0 <= day <= 6 for day in rule.weekdays) or len(set(rule.weekdays)) != len(
            rule.weekdays):
        raise bad("weekdays", "must be distinct days 0 (Monday) .. 6 (Sunday)")
    if not 0 <= rule.minute_from < rule.minute_to <= 24 * 60:
        raise bad("minute_from", "the window must satisfy 0 <= minute_from < minute_to <= 1440 "
                  "(an empty or impossible window never applies)")
    if rule.effect == Effect.EARN:
        if not 0 < rule.rate_num <= RATE_NUM_MAX:
            raise bad("rate_num", f"must be 1..{RATE_NUM_MAX}")
        if not 0 < rule.rate_den <= RATE_DEN_MAX:
            raise bad("rate_den", f"must be 1..{RATE_DEN_MAX}")
    if rule.effect == Effect.MULTIPLY and not 0 <= rule.multiplier_bp <= MULTIPLIER_BP_MAX:
        raise bad("multiplier_bp", f"must be 0..{MULTIPLIER_BP_MAX} (10000 = 1x)")
    if rule.effect == Effect.THRESHOLD_BONUS:
        if not 0 < rule.threshold_minor <= LINE_AMOUNT_MAX * 1000:
            raise bad("threshold_minor", "must be greater than 0")
        if not (0 if rule.coupon_campaign else 1) <= rule.points <= POINTS_MAX:
            raise bad("points", f"must be 1..{POINTS_MAX} (0 only with a coupon_campaign)")
    if rule.coupon_campaign and (rule.effect != Effect.THRESHOLD_BONUS
                                 or not RULE_ID_PATTERN.fullmatch(rule.coupon_campaign)):
        raise bad("coupon_campaign", "is a campaign id, for THRESHOLD_BONUS rules only")
    if rule.effect == Effect.CAP and not 0 <= rule.points <= POINTS_MAX:
        raise bad("points", f"must be 0..{POINTS_MAX}")
    if rule.cap_period not in CAP_PERIODS or (rule.cap_period and rule.effect != Effect.CAP):
        raise bad("cap_period", "is DAY, WEEK or MONTH, for CAP rules only")
    if rule.effect == Effect.STAMP:
        if not 0 < rule.stamps_needed <= STAMPS_NEEDED_MAX:
            raise bad("stamps_needed", f"must be 1..{STAMPS_NEEDED_MAX}")
        if not rule.categories and not rule.skus:
            raise bad("categories", "a stamp card needs categories or SKUs to count")
    if rule.effect == Effect.FIRST_PURCHASE_BONUS and not 0 < rule.points <= POINTS_MAX:
        raise bad("points", f"must be 1..{POINTS_MAX}")
    if rule.effect == Effect.DISCOUNT and not 0 < rule.discount_bp <= MULTIPLIER_BP_ONE:
        raise bad("discount_bp", f"must be 1..{MULTIPLIER_BP_ONE} (10000 = 100 %)")
    if not -1000 <= rule.priority <= 1000:
        raise bad("priority", "must be -1000..1000")


def check_scope(scope: str, field: str) -> str:
    if not (scope == "alliance" or re.fullmatch(r"(partner|store):[A-Za-z0-9_-]{1,32}", scope)):
        raise InvalidInput(field, "must be alliance, partner:ID or store:ID")
    return scope


def validate(rule_set: RuleSet) -> RuleSet:
    """The rule set, or RuleSetInvalid naming the first rule and field that is wrong."""
    if not RULE_ID_PATTERN.fullmatch(rule_set.rule_set_id):
        raise RuleSetInvalid(None, "", "rule_set_id", "must be 1..48 of [A-Za-z0-9_.-]")
    if rule_set.version < 1:
        raise RuleSetInvalid(None, "", "version", "must be 1 or more")
    check_scope(rule_set.scope, "scope")
    check_time_us(rule_set.valid_from_us, "valid_from")
    check_time_us(rule_set.valid_to_us, "valid_to", forever_ok=True)
    if rule_set.valid_from_us >= rule_set.valid_to_us:
        raise RuleSetInvalid(None, "", "valid_to", "must be after valid_from")
    if not 1 <= len(rule_set.rules) <= RULES_MAX:
        raise RuleSetInvalid(None, "", "rules", f"must hold 1..{RULES_MAX} rules")
    seen: set[str] = set()
    for index, rule in enumerate(rule_set.rules):
        _check_rule(index, rule)
        if rule.rule_id in seen:
            raise RuleSetInvalid(index, rule.rule_id, "rule_id", "is used twice")
        seen.add(rule.rule_id)
    return rule_set


def check_basket(basket: Basket) -> Basket:
    """The basket, or InvalidInput naming the line and field."""
    if not basket.lines:
        raise InvalidInput("lines", "at least one line is required")
    for index, line in enumerate(basket.lines):
        if not TOKEN_PATTERN.fullmatch(line.sku):
            raise InvalidInput(f"lines[{index}].sku", "must be 1..48 of [A-Za-z0-9_.:-]")
        if line.category and not TOKEN_PATTERN.fullmatch(line.category):
            raise InvalidInput(f"lines[{index}].category", "must be 1..48 of [A-Za-z0-9_.:-]")
        if not 0 < line.quantity <= QUANTITY_MAX:
            raise InvalidInput(f"lines[{index}].quantity", f"must be 1..{QUANTITY_MAX}")
        if line.unit_price_minor < 0:
            raise InvalidInput(f"lines[{index}].unit_price_minor", "must not be negative")
        if not 0 <= line.margin_minor <= line.unit_price_minor:
            raise InvalidInput(f"lines[{index}].margin_minor",
                               "must be between 0 and the unit price")
        if line.amount_minor > LINE_AMOUNT_MAX:
            raise InvalidInput(f"lines[{index}]", f"quantity x unit price exceeds "
                               f"{LINE_AMOUNT_MAX}")
    if not 0 <= basket.weekday <= 6:
        raise InvalidInput("weekday", "must be 0 (Monday) .. 6 (Sunday)")
    if not 0 <= basket.minute_of_day < 24 * 60:
        raise InvalidInput("minute_of_day", "must be 0..1439")
    return basket
