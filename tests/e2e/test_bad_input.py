"""Every RPC x every kind of malformed input: INVALID_ARGUMENT, a message naming the proto
field, and nothing written (the card's version, the registry's version, the log and the
request keys are all unchanged).

One test per RPC and backend walks that RPC's rows of the table and reports every row that
misbehaves (starting a server per row would cost minutes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from grpc_api.generated import pos_pb2 as pb
from tests.support.alliance import Alliance, card_number
from tests.support.rpc import (
    R,
    Server,
    authorize,
    batch_status,
    call,
    db_state,
    get_card,
    issue,
    rid,
)

# On SQLite; the tests marked backends("sqlite", "postgres") are the end-to-end smoke run on
# PostgreSQL (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

CARD = card_number(1)
OTHER_CARD = card_number(2)
LUHN_BAD = CARD[:-1] + str((int(CARD[-1]) + 1) % 10)
TOO_LONG_CARD = "4" * 19 + "0"  # 20 digits
HUGE = "Z" * 16_384  # past gRPC's trailer limit if echoed whole (the fuzzing find)
# Status messages name the field and a short prefix of the value, never the whole value.
DETAILS_MAX = 400


@dataclass
class Ctx:
    """What the base (valid) requests refer to."""

    server: Server
    alliance: Alliance
    pending_id: str  # a pending authorization made by t1 at S1
    pending_request_id: str
    captured_id: str  # a captured authorization made by t1 at S1
    revocable: str  # a credential id
    purchase_id: str  # a purchase made by t1 at S1


Mutation = Callable[[Any], None]


def set_(**fields: Any) -> Mutation:
    def apply(message: Any) -> None:
        for name, value in fields.items():
            setattr(message, name, value)
    return apply


def principal(**fields: Any) -> Mutation:
    def apply(message: Any) -> None:
        message.principal.Clear()
        for name, value in fields.items():
            setattr(message.principal, name, value)
    return apply


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Mutation
    field: str  # the proto field the message must name
    caller: str = ""  # "" = the RPC's default caller


def request_id_cases() -> list[Case]:
    return [Case("request_id empty", set_(request_id=""), "request_id"),
            Case("request_id of 65 chars", set_(request_id="r" * 65), "request_id"),
            Case("request_id with a space", set_(request_id="req 1"), "request_id"),
            Case("request_id not ASCII", set_(request_id="réq-1"), "request_id"),
            Case("request_id with a tab", set_(request_id="req\t1"), "request_id")]


def card_number_cases(field: str = "card_number") -> list[Case]:
    return [Case(f"{field} empty", set_(**{field: ""}), field),
            Case(f"{field} with dashes", set_(**{field: "6000-0000-0000-0001"}), field),
            Case(f"{field} letters", set_(**{field: "abcdefghijklmnop"}), field),
            Case(f"{field} fails Luhn", set_(**{field: LUHN_BAD}), field),
            Case(f"{field} too short", set_(**{field: "12345"}), field),
            Case(f"{field} too long", set_(**{field: TOO_LONG_CARD}), field),
            Case(f"{field} with a space", set_(**{field: CARD[:8] + " " + CARD[8:]}), field)]


def amount_cases(zero_ok: bool = False) -> list[Case]:
    cases = [Case("amount_minor negative", set_(amount_minor=-1), "amount_minor"),
             Case("amount_minor absurd", set_(amount_minor=10**15 + 1), "amount_minor")]
    if not zero_ok:
        cases.append(Case("amount_minor zero", set_(amount_minor=0), "amount_minor"))
    return cases


def currency_cases() -> list[Case]:
    return [Case("currency empty", set_(currency=""), "currency"),
            Case("currency unknown XXX", set_(currency="XXX"), "currency"),
            Case("currency lower case", set_(currency="usd"), "currency"),
            Case("currency four letters", set_(currency="USDX"), "currency"),
            Case("currency of 16 KB", set_(currency=HUGE), "currency")]


def id_cases(field: str, unknown: str | None = None) -> list[Case]:
    cases = [Case(f"{field} empty", set_(**{field: ""}), field),
             Case(f"{field} of 33 chars", set_(**{field: "x" * 33}), field),
             Case(f"{field} with a space", set_(**{field: "a b"}), field),
             Case(f"{field} with a slash", set_(**{field: "a/b"}), field)]
    if unknown is not None:
        cases.append(Case(f"{field} unknown", set_(**{field: unknown}), field))
    return cases


def authorization_id_cases() -> list[Case]:
    return [Case("authorization_id empty", set_(authorization_id=""), "authorization_id"),
            Case("authorization_id garbage", set_(authorization_id="abc"), "authorization_id"),
            Case("authorization_id version 0", set_(authorization_id=f"{CARD}.0"),
                 "authorization_id"),
            Case("authorization_id without version", set_(authorization_id=CARD),
                 "authorization_id"),
            Case("authorization_id letters", set_(authorization_id="abcdefghijkl.3"),
                 "authorization_id"),
            Case("authorization_id trailing space", set_(authorization_id=f"{CARD}.3 "),
                 "authorization_id"),
            Case("authorization_id of 500 chars", set_(authorization_id="9" * 480 + ".3"),
                 "authorization_id")]


def text_cases(field: str, limit: int, required: bool = False) -> list[Case]:
    cases = [Case(f"{field} of {limit + 1} chars", set_(**{field: "x" * (limit + 1)}), field),
             Case(f"{field} of 500 chars", set_(**{field: "x" * 500}), field),
             Case(f"{field} with a NUL", set_(**{field: "a\x00b"}), field)]
    if required:
        cases.append(Case(f"{field} empty", set_(**{field: ""}), field))
    return cases


@dataclass(frozen=True)
class Rpc:
    service: str  # admin, cards, pos
    method: str
    base: Callable[[Ctx], Any]
    caller: str
    cases: list[Case]
    card: str | None = CARD  # the card whose version must not move


def _card_action(ctx: Ctx) -> pb.CardActionRequest:
    return pb.CardActionRequest(request_id=rid(), card_number=CARD, reason="ok")


ACTION_CASES = [*request_id_cases(), *card_number_cases(), *text_cases("reason", 200)]

def line(**fields: Any) -> Mutation:
    def apply(message: Any) -> None:
        target = message.purchase if hasattr(message, "purchase") else message
        for name, value in fields.items():
            setattr(target.lines[0], name, value)
    return apply


def in_purchase(case: Case) -> Case:
    """A Purchase case applied to the purchase inside a SimulatePurchaseRequest."""
    return Case(case.name, lambda message: case.mutate(message.purchase), case.field,
                case.caller)


def rule(**fields: Any) -> Mutation:
    def apply(message: Any) -> None:
        target = message.rule_set.rules[0]
        for name, value in fields.items():
            if isinstance(value, list):
                target.ClearField(name)
                getattr(target, name).extend(value)
            else:
                setattr(target, name, value)
    return apply


def campaign(**fields: Any) -> Mutation:
    def apply(message: Any) -> None:
        for name, value in fields.items():
            setattr(message.campaign, name, value)
    return apply


def rule_set_(**fields: Any) -> Mutation:
    def apply(message: Any) -> None:
        for name, value in fields.items():
            setattr(message.rule_set, name, value)
    return apply


def _purchase(ctx: Ctx) -> pb.PurchaseRequest:
    return pb.PurchaseRequest(
        request_id=rid(), card_number=CARD, currency="USD", stored_value_minor=100,
        lines=[pb.PurchaseLine(sku="tea-2", category="grocery", quantity=1,
                               unit_price_minor=100)],
        local_time="2026-11-30T10:00:00", receipt_ref="R-1")


PURCHASE_CASES = [
    *card_number_cases(), *currency_cases(),
    Case("lines empty", lambda m: m.ClearField("lines"), "lines"),
    Case("quantity negative", line(quantity=-1), "lines[0].quantity"),
    Case("quantity zero", line(quantity=0), "lines[0].quantity"),
    Case("quantity of free units past a million", line(quantity=10**6 + 1, unit_price_minor=0),
         "lines[0].quantity"),
    Case("quantity of free units absurd", line(quantity=2**62, unit_price_minor=0),
         "lines[0].quantity"),
    Case("unit price negative", line(unit_price_minor=-5), "lines[0].unit_price_minor"),
    Case("margin above the price", line(margin_minor=101), "lines[0].margin_minor"),
    Case("margin negative", line(margin_minor=-1), "lines[0].margin_minor"),
    Case("line amount absurd", line(quantity=10**6, unit_price_minor=10**6), "lines[0]"),
    Case("sku empty", line(sku=""), "lines[0].sku"),
    Case("sku with a space", line(sku="tea 2"), "lines[0].sku"),
    Case("category with a slash", line(category="a/b"), "lines[0].category"),
    Case("stored_value_minor negative", set_(stored_value_minor=-1), "stored_value_minor"),
    Case("points_to_redeem negative", set_(points_to_redeem=-1), "points_to_redeem"),
    Case("local_time with an offset", set_(local_time="2026-11-30T10:00:00Z"), "local_time"),
    Case("local_time not a date", set_(local_time="2026-13-40T10:00:00"), "local_time"),
    Case("local_time free text", set_(local_time="tomorrow"), "local_time"),
    Case("coupon code garbage", lambda m: (m.purchase if hasattr(m, "purchase") else m
                                           ).coupon_codes.append("FREE-STUFF"), "coupon_codes[0]"),
    Case("coupon code forged", lambda m: (m.purchase if hasattr(m, "purchase") else m
                                          ).coupon_codes.append("K7-" + "A" * 16),
         "coupon_codes[0]"),
    Case("stored value amount and pays-rest together", lambda m: setattr(
        m.purchase if hasattr(m, "purchase") else m, "stored_value_pays_rest", True),
        "stored_value_minor"),
    Case("override without a manager", lambda m: setattr(
        m.purchase if hasattr(m, "purchase") else m, "override_discount_minor", 100),
        "override_token"),
    Case("override negative", lambda m: setattr(
        m.purchase if hasattr(m, "purchase") else m, "override_discount_minor", -1),
        "override_discount_minor"),
    Case("eleven coupon codes", lambda m: (m.purchase if hasattr(m, "purchase") else m
                                           ).coupon_codes.extend(
        [f"K{i}-" + "A" * 16 for i in range(1, 12)]), "coupon_codes"),
    *text_cases("receipt_ref", 64),
]

RULE_SET = pb.RuleSet(rule_set_id="bad-input", version=1, scope="partner:P1", rules=[
    pb.Rule(rule_id="base", effect=pb.EARN, rate_num=1, rate_den=100)])

PUBLISH_CASES = [
    Case("rule_set_id empty", rule_set_(rule_set_id=""), "rule_set_id"),
    Case("version 0", rule_set_(version=0), "version"),
    Case("version gap", rule_set_(version=2), "rule_set.version"),
    Case("scope free text", rule_set_(scope="everyone"), "scope"),
    Case("scope unknown store", rule_set_(scope="store:S9"), "rule_set.scope", caller="admin"),
    Case("valid_from without offset", rule_set_(valid_from="2026-01-01T00:00:00"),
         "rule_set.valid_from"),
    Case("valid_to before valid_from", rule_set_(valid_from="2026-02-01T00:00:00Z",
                                                 valid_to="2026-01-01T00:00:00Z"), "valid_to"),
    Case("valid_to past year 9999 in UTC", rule_set_(valid_to="9999-12-31T23:59:59-23:59"),
         "rule_set.valid_to"),
    Case("valid_to on the last day of 9999", rule_set_(valid_to="9999-12-31T00:00:00Z"),
         "rule_set.valid_to"),
    Case("valid_from before 1970", rule_set_(valid_from="0001-01-01T00:00:00+23:59"),
         "rule_set.valid_from"),
    Case("valid_from of 16 KB", rule_set_(valid_from=HUGE), "rule_set.valid_from"),
    Case("rule_id of 16 KB", rule(rule_id=HUGE), "rules[0]"),
    Case("categories of 16 KB", rule(categories=[HUGE]), "rules[0]"),
    Case("skus of 16 KB", rule(skus=[HUGE]), "rules[0]"),
    Case("card_classes of 16 KB", rule(card_classes=[HUGE]), "rules[0]"),
    Case("tiers of 16 KB", rule(tiers=[HUGE]), "rules[0]"),
    Case("no rules", lambda m: m.rule_set.ClearField("rules"), "rules"),
    Case("effect unspecified", rule(effect=0), "rule_set.rules[0].effect"),
    Case("rate_den zero", rule(rate_den=0), "rules[0] (base).rate_den"),
    Case("rate_num absurd", rule(rate_num=10**6), "rules[0] (base).rate_num"),
    Case("impossible window", rule(minute_from=600, minute_to=540),
         "rules[0] (base).minute_from"),
    Case("weekday 7", rule(weekdays=[7]), "rules[0] (base).weekdays"),
    Case("rounding 9", rule(rounding=9), "rule_set.rules[0].rounding"),
    Case("category with a space", rule(categories=["a b"]), "rules[0] (base).categories"),
    Case("priority absurd", rule(priority=5_000), "rules[0] (base).priority"),
    Case("stamp card without stamps", rule(effect=pb.STAMP, categories=["coffee"]),
         "rules[0] (base).stamps_needed"),
    Case("stamp card counting everything", rule(effect=pb.STAMP, stamps_needed=10),
         "rules[0] (base).categories"),
    Case("first purchase bonus of 0", rule(effect=pb.FIRST_PURCHASE_BONUS),
         "rules[0] (base).points"),
    Case("cap per year", rule(effect=pb.CAP, points=10, cap_period="YEAR"),
         "rules[0] (base).cap_period"),
    Case("a period on an earn rule", rule(cap_period="DAY"), "rules[0] (base).cap_period"),
    Case("discount of 0 %", rule(effect=pb.DISCOUNT, discount_bp=0),
         "rules[0] (base).discount_bp"),
    Case("discount over 100 %", rule(effect=pb.DISCOUNT, discount_bp=10_001),
         "rules[0] (base).discount_bp"),
]


TABLE: list[Rpc] = [
    Rpc("admin", "RegisterPartner", lambda c: pb.RegisterPartnerRequest(
        request_id=rid(), partner_id="P9", name="New partner", currency="EUR"), "admin",
        [*request_id_cases(), *id_cases("partner_id"),
         *text_cases("name", 200, required=True),
         Case("name blank", set_(name="   "), "name"), *currency_cases()], card=None),
    Rpc("admin", "RegisterStore", lambda c: pb.RegisterStoreRequest(
        request_id=rid(), partner_id="P1", store_id="S9", name="New store",
        timezone="Europe/Paris"), "admin",
        [*request_id_cases(), *id_cases("partner_id", unknown="P9"), *id_cases("store_id"),
         *text_cases("name", 200, required=True),
         Case("timezone empty", set_(timezone=""), "timezone"),
         Case("timezone unknown", set_(timezone="Mars/Olympus"), "timezone"),
         Case("timezone free text", set_(timezone="not a zone"), "timezone"),
         Case("timezone path", set_(timezone="../../etc/passwd"), "timezone"),
         Case("timezone of 100 chars", set_(timezone="Europe/" + "x" * 93), "timezone"),
         Case("timezone with a NUL", set_(timezone="Europe/Paris\x00"), "timezone")],
        card=None),
    Rpc("admin", "RegisterTerminal", lambda c: pb.RegisterTerminalRequest(
        request_id=rid(), store_id="S1", terminal_id="T9"), "admin",
        [*request_id_cases(), *id_cases("store_id", unknown="S9"), *id_cases("terminal_id")],
        card=None),
    Rpc("admin", "CreateCredential", lambda c: pb.CreateCredentialRequest(
        request_id=rid(), label="new till", principal=pb.Principal(
            role=pb.TERMINAL, partner_id="P1", store_id="S1", terminal_id="T1")), "admin",
        [*request_id_cases(),
         Case("principal missing", principal(), "role"),
         Case("principal ROLE_UNSPECIFIED", principal(role=pb.ROLE_UNSPECIFIED,
                                                      partner_id="P1"), "role"),
         Case("principal role 99", principal(role=99, partner_id="P1"), "role"),
         Case("partner manager without partner", principal(role=pb.PARTNER_MANAGER),
              "partner_id"),
         Case("partner manager bad partner", principal(role=pb.PARTNER_MANAGER,
                                                       partner_id="P 1"), "partner_id"),
         Case("partner manager unknown partner", principal(role=pb.PARTNER_MANAGER,
                                                           partner_id="P9"), "partner_id"),
         Case("store manager without store", principal(role=pb.STORE_MANAGER,
                                                       partner_id="P1"), "store_id"),
         Case("store manager of another partner's store", principal(
             role=pb.STORE_MANAGER, partner_id="P1", store_id="A1"), "store_id"),
         Case("store manager unknown store", principal(
             role=pb.STORE_MANAGER, partner_id="P1", store_id="S9"), "store_id"),
         Case("gateway without store", principal(role=pb.GATEWAY, partner_id="P1"),
              "store_id"),
         Case("terminal without terminal", principal(role=pb.TERMINAL, partner_id="P1",
                                                     store_id="S1"), "terminal_id"),
         Case("terminal of another store", principal(
             role=pb.TERMINAL, partner_id="P1", store_id="S1", terminal_id="T3"), "terminal_id"),
         Case("terminal id of 33 chars", principal(
             role=pb.TERMINAL, partner_id="P1", store_id="S1", terminal_id="T" * 33),
             "terminal_id"),
         Case("auditor with a partner", principal(role=pb.AUDITOR, partner_id="P1"),
              "partner_id"),
         Case("admin with a store", principal(role=pb.ADMIN, store_id="S1"), "store_id"),
         *text_cases("label", 200)], card=None),
    Rpc("admin", "RevokeCredential", lambda c: pb.RevokeCredentialRequest(
        request_id=rid(), credential_id=c.revocable), "admin",
        [*request_id_cases(), *id_cases("credential_id", unknown="c0123456789abcdef")],
        card=None),
    Rpc("admin", "DefineCardClass", lambda c: pb.DefineCardClassRequest(
        request_id=rid(), card_class="NEWCLASS", max_balance_major=100,
        hold_ttl_seconds=3_600), "admin",
        [*request_id_cases(),
         Case("card_class empty", set_(card_class=""), "card_class"),
         Case("card_class lower case", set_(card_class="vip"), "card_class"),
         Case("card_class of 33 chars", set_(card_class="V" * 33), "card_class"),
         Case("max_balance_major zero", set_(max_balance_major=0), "max_balance_major"),
         Case("max_balance_major negative", set_(max_balance_major=-5), "max_balance_major"),
         Case("max_balance_major absurd", set_(max_balance_major=10**11), "max_balance_major"),
         Case("hold_ttl_seconds zero", set_(hold_ttl_seconds=0), "hold_ttl_seconds"),
         Case("hold_ttl_seconds 59", set_(hold_ttl_seconds=59), "hold_ttl_seconds"),
         Case("hold_ttl_seconds over 31 days", set_(hold_ttl_seconds=31 * 86_400 + 1),
              "hold_ttl_seconds")], card=None),
    Rpc("cards", "IssueCard", lambda c: pb.IssueCardRequest(
        request_id=rid(), card_number=OTHER_CARD, card_class="STANDARD", currency="USD",
        customer_ref="cust-9", issuing_store_id="S1"), "s1_manager",
        [*request_id_cases(), *card_number_cases()[1:],  # empty = generated
         Case("card_class empty", set_(card_class=""), "card_class"),
         Case("card_class lower case", set_(card_class="vip"), "card_class"),
         Case("card_class of 33 chars", set_(card_class="V" * 33), "card_class"),
         *currency_cases(), *text_cases("customer_ref", 64),
         Case("issuing_store_id with a space", set_(issuing_store_id="S 1"),
              "issuing_store_id"),
         Case("issuing_store_id of 33 chars", set_(issuing_store_id="S" * 33),
              "issuing_store_id"),
         Case("issuing_store_id unknown", set_(issuing_store_id="S9"), "issuing_store_id"),
         Case("issuing_store_id needed for a caller without a store",
              set_(issuing_store_id=""), "issuing_store_id", caller="admin")]),
    Rpc("cards", "ActivateCard", _card_action, "s1_manager", ACTION_CASES),
    Rpc("cards", "BlockCard", _card_action, "s1_manager", ACTION_CASES),
    Rpc("cards", "UnblockCard", _card_action, "s1_manager", ACTION_CASES),
    Rpc("cards", "CloseCard", _card_action, "s1_manager", ACTION_CASES),
    Rpc("cards", "ReplaceCard", lambda c: pb.ReplaceCardRequest(
        request_id=rid(), card_number=CARD, new_card_number=OTHER_CARD, reason="lost"),
        "s1_manager",
        [*request_id_cases(), *card_number_cases(), *card_number_cases("new_card_number")[1:],
         Case("new_card_number equal to card_number", set_(new_card_number=CARD),
              "new_card_number"), *text_cases("reason", 200)]),
    Rpc("cards", "LoadValue", lambda c: pb.LoadValueRequest(
        request_id=rid(), card_number=CARD, amount_minor=100, currency="USD",
        payment_ref="pay-9"), "t1",
        [*request_id_cases(), *card_number_cases(), *amount_cases(), *currency_cases(),
         *text_cases("payment_ref", 128, required=True)]),
    Rpc("cards", "GetCard", lambda c: pb.GetCardRequest(card_number=CARD), "auditor",
        card_number_cases()),
    Rpc("cards", "ListMovements", lambda c: pb.ListMovementsRequest(card_number=CARD),
        "auditor", card_number_cases()),
    Rpc("pos", "Authorize", lambda c: pb.AuthorizeRequest(
        request_id=rid(), card_number=CARD, amount_minor=100, currency="USD", stan="000001"),
        "t1",
        [*request_id_cases(), *card_number_cases(), *amount_cases(), *currency_cases(),
         Case("stan of 200 chars", set_(stan="1" * 200), "stan"),
         Case("stan of 33 chars", set_(stan="1" * 33), "stan"),
         Case("stan with a NUL", set_(stan="12\x0034"), "stan")]),
    Rpc("pos", "Capture", lambda c: pb.CaptureRequest(
        request_id=rid(), authorization_id=c.pending_id, amount_minor=0), "t1",
        [*request_id_cases(), *authorization_id_cases(), *amount_cases(zero_ok=True)]),
    Rpc("pos", "Void", lambda c: pb.VoidRequest(request_id=rid(), authorization_id=c.pending_id),
        "t1", [*request_id_cases(), *authorization_id_cases()]),
    Rpc("pos", "Refund", lambda c: pb.RefundRequest(
        request_id=rid(), authorization_id=c.captured_id, amount_minor=100), "t1",
        [*request_id_cases(), *authorization_id_cases(), *amount_cases()]),
    Rpc("pos", "Reverse", lambda c: pb.ReverseRequest(
        request_id=rid(), original_request_id=c.pending_request_id), "t1",
        [*request_id_cases(),
         Case("original_request_id empty", set_(original_request_id=""), "original_request_id"),
         Case("original_request_id of 65 chars", set_(original_request_id="o" * 65),
              "original_request_id"),
         Case("original_request_id with a space", set_(original_request_id="o 1"),
              "original_request_id")]),
    Rpc("pos", "GetBalance", lambda c: pb.GetBalanceRequest(card_number=CARD), "t1",
        card_number_cases()),
    Rpc("pos", "Purchase", _purchase, "t1", [*request_id_cases(), *PURCHASE_CASES]),
    Rpc("pos", "SimulatePurchase", lambda c: pb.SimulatePurchaseRequest(
        purchase=_purchase(c), store_id="S1"), "s1_manager",
        [*map(in_purchase, PURCHASE_CASES), *id_cases("store_id", unknown="S9")[1:]]),
    Rpc("pos", "Return", lambda c: pb.ReturnRequest(
        request_id=rid(), purchase_id=c.purchase_id,
        lines=[pb.ReturnLine(line_index=0, quantity=1)], reason="damaged"), "t1",
        [*request_id_cases(),
         Case("purchase_id empty", set_(purchase_id=""), "purchase_id"),
         Case("purchase_id garbage", set_(purchase_id="abc"), "purchase_id"),
         Case("purchase_id version 0", set_(purchase_id=f"{CARD}.0"), "purchase_id"),
         Case("lines empty", lambda m: m.ClearField("lines"), "lines"),
         Case("quantity zero", line(quantity=0), "lines[0].quantity"),
         Case("quantity negative", line(quantity=-2), "lines[0].quantity"),
         Case("line_index absurd", line(line_index=100_000), "lines[0].line_index"),
         Case("a line twice", lambda m: m.lines.append(pb.ReturnLine(line_index=0,
                                                                     quantity=1)),
              "lines[1].line_index"),
         *text_cases("reason", 200)]),
    Rpc("programs", "DefineProgram", lambda c: pb.DefineProgramRequest(
        request_id=rid(), owner="P1", currency="USD", point_value_micros=1_000_000,
        expiry_kind=pb.MONTHS_AFTER, expiry_n=12, timezone="Asia/Shanghai", vesting_days=14),
        "p1_manager",
        [*request_id_cases(), *id_cases("owner"), *currency_cases(),
         Case("owner unknown", set_(owner="P9"), "owner", caller="admin"),
         Case("point_value_micros zero", set_(point_value_micros=0), "point_value_micros"),
         Case("point_value_micros absurd", set_(point_value_micros=10**13),
              "point_value_micros"),
         Case("expiry_kind 9", set_(expiry_kind=9), "expiry_kind"),
         Case("expiry_n negative", set_(expiry_n=-1), "expiry_n"),
         Case("expiry_n zero months", set_(expiry_n=0), "expiry_n"),
         Case("timezone unknown", set_(timezone="Mars/Olympus"), "timezone"),
         Case("timezone of 16 KB", set_(timezone=HUGE), "timezone"),
         Case("vesting_days negative", set_(vesting_days=-1), "vesting_days"),
         Case("vesting_days over a year", set_(vesting_days=400), "vesting_days"),
         Case("clawback policy 7", set_(clawback=7), "clawback"),
         Case("tier name lower case", lambda m: m.tiers.add(name="gold", threshold_minor=1),
              "tiers[0].name"),
         Case("tier threshold zero", lambda m: m.tiers.add(name="GOLD", threshold_minor=0),
              "tiers[0].threshold_minor"),
         Case("tier thresholds not ascending", lambda m: m.tiers.extend([
             pb.TierLevel(name="GOLD", threshold_minor=500), pb.TierLevel(
                 name="SILVER", threshold_minor=200)]), "tiers[1].threshold_minor"),
         Case("a tier named twice", lambda m: m.tiers.extend([
             pb.TierLevel(name="GOLD", threshold_minor=200), pb.TierLevel(
                 name="GOLD", threshold_minor=500)]), "tiers")],
        card=None),
    Rpc("programs", "PublishRuleSet", lambda c: pb.PublishRuleSetRequest(
        request_id=rid(), rule_set=RULE_SET), "p1_manager",
        [*request_id_cases(), *PUBLISH_CASES], card=None),
    Rpc("programs", "DefineCouponCampaign", lambda c: pb.DefineCouponCampaignRequest(
        request_id=rid(), campaign=pb.CouponCampaign(
            campaign_id="bad-input", owner="P1", currency="USD", kind=pb.COUPON_VALUE,
            value_minor=500, valid_to="2099-01-01T00:00:00Z", funded_by="P1")), "p1_manager",
        [*request_id_cases(),
         Case("campaign_id empty", campaign(campaign_id=""), "campaign_id"),
         Case("owner unknown", campaign(owner="P9"), "owner", caller="admin"),
         Case("currency unknown", campaign(currency="XXX"), "currency"),
         Case("kind unspecified", campaign(kind=0), "kind"),
         Case("value zero", campaign(value_minor=0), "value_minor"),
         Case("percent zero", campaign(kind=pb.COUPON_PERCENT), "percent_bp"),
         Case("percent over 100", campaign(kind=pb.COUPON_PERCENT, percent_bp=10_001),
              "percent_bp"),
         Case("percent used in parts", campaign(kind=pb.COUPON_PERCENT, percent_bp=100,
                                                partial_use=True), "partial_use"),
         Case("min spend negative", campaign(min_spend_minor=-1), "min_spend_minor"),
         Case("valid_to missing", campaign(valid_to=""), "valid_to"),
         Case("valid_to garbage", campaign(valid_to="soon"), "valid_to"),
         Case("valid_to past year 9999 in UTC", campaign(valid_to="9999-12-31T23:59:59-23:59"),
              "valid_to"),
         Case("valid_to of 16 KB", campaign(valid_to=HUGE), "valid_to"),
         Case("valid_to before valid_from", campaign(valid_from="2099-02-01T00:00:00Z"),
              "valid_to"),
         Case("store unknown", lambda m: m.campaign.stores.append("S9"), "stores[0]"),
         Case("store with a space", lambda m: m.campaign.stores.append("S 1"), "stores[0]"),
         Case("category with a slash", lambda m: m.campaign.categories.append("a/b"),
              "categories[0]"),
         Case("funded_by empty", campaign(funded_by=""), "funded_by")], card=None),
    Rpc("programs", "IssueCoupon", lambda c: pb.IssueCouponRequest(
        request_id=rid(), card_number=CARD, campaign_id="bad-input-c"), "p1_manager",
        [*request_id_cases(), *card_number_cases(),
         Case("campaign_id unknown", set_(campaign_id="nope"), "campaign_id"),
         Case("campaign_id with a space", set_(campaign_id="a b"), "campaign_id")]),
    Rpc("programs", "ListCoupons", lambda c: pb.ListCouponsRequest(card_number=CARD), "t1",
        card_number_cases()),
    Rpc("programs", "GetRuleSet", lambda c: pb.GetRuleSetRequest(rule_set_id="x"), "t1",
        [Case("rule_set_id empty", set_(rule_set_id=""), "rule_set_id"),
         Case("rule_set_id with a slash", set_(rule_set_id="a/b"), "rule_set_id")],
        card=None),
    Rpc("programs", "ListRuleSets", lambda c: pb.ListRuleSetsRequest(scope="partner:P1"),
        "auditor", [Case("scope free text", set_(scope="all of them"), "scope"),
                    Case("scope of a bad id", set_(scope="store:a b"), "scope")], card=None),
]


@pytest.fixture
def ctx(server: Server, alliance: Alliance) -> Ctx:
    t1 = alliance.tokens["t1"]
    issue(server, alliance, 1, load=100_000)
    pending_request_id = rid("pending")
    pending = authorize(server, t1, CARD, 1_000, pending_request_id)
    captured = authorize(server, t1, CARD, 2_000)
    capture = call(server.pos.Capture, pb.CaptureRequest(
        request_id=rid(), authorization_id=captured.authorization_id), t1)
    assert capture.result == R.APPROVED
    revocable = call(server.admin.CreateCredential, pb.CreateCredentialRequest(
        request_id=rid(), principal=pb.Principal(role=pb.PARTNER_MANAGER, partner_id="P1")),
        alliance.admin_token)
    bought = call(server.pos.Purchase, _purchase(None), t1)  # type: ignore[arg-type]
    assert bought.result == R.APPROVED, bought
    defined = call(server.programs.DefineCouponCampaign, pb.DefineCouponCampaignRequest(
        request_id=rid(), campaign=pb.CouponCampaign(
            campaign_id="bad-input-c", owner="P1", currency="USD", kind=pb.COUPON_VALUE,
            value_minor=500, valid_to="2099-01-01T00:00:00Z", funded_by="P1")),
        alliance.tokens["p1_manager"])
    assert defined.result == R.APPROVED, defined
    return Ctx(server, alliance, pending.authorization_id, pending_request_id,
               captured.authorization_id, revocable.credential_id, bought.purchase_id)


def _token(alliance: Alliance, name: str) -> str:
    return alliance.admin_token if name == "admin" else alliance.tokens[name]


def _problems(ctx: Ctx, rpc: Rpc) -> list[str]:
    server, alliance = ctx.server, ctx.alliance
    method = getattr(getattr(server, rpc.service), rpc.method)
    # the base request is valid: a sanity check that every row fails for its own reason
    assert rpc.base(ctx).IsInitialized()
    problems: list[str] = []
    for case in rpc.cases:
        request = rpc.base(ctx)
        case.mutate(request)
        card_version = get_card(server, alliance, CARD).card.version if rpc.card else None
        before = db_state(server.ledger)
        token = _token(alliance, case.caller or rpc.caller)
        try:
            reply = call(method, request, token)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            if code != grpc.StatusCode.INVALID_ARGUMENT:
                problems.append(f"{case.name}: {code.name} {details!r:.300}")
            elif case.field not in details:
                problems.append(f"{case.name}: message {details!r:.300} does not name "
                                f"{case.field}")
            elif len(details) > DETAILS_MAX:
                problems.append(f"{case.name}: a message of {len(details)} characters")
        else:
            problems.append(f"{case.name}: answered OK with {str(reply).strip()!r:.200}")
        if db_state(server.ledger) != before:
            problems.append(f"{case.name}: wrote {before} -> {db_state(server.ledger)}")
        if rpc.card and get_card(server, alliance, CARD).card.version != card_version:
            problems.append(f"{case.name}: the card's version moved")
    return problems


@pytest.mark.parametrize("rpc", TABLE, ids=[r.method for r in TABLE])
def test_malformed_input_is_invalid_argument(ctx: Ctx, rpc: Rpc) -> None:
    problems = _problems(ctx, rpc)
    assert not problems, "\n".join(problems)


def test_the_table_covers_every_rpc() -> None:
    covered = {(r.service, r.method) for r in TABLE}
    services = {"admin": "AdminService", "cards": "CardService", "pos": "PosService",
                "programs": "ProgramService"}
    for short, name in services.items():
        for method in pb.DESCRIPTOR.services_by_name[name].methods:
            if method.name == "Batch":
                continue  # below: malformed operations are per-operation errors
            assert (short, method.name) in covered, method.name


# ------------------------------------------------------------------------------ Batch


def _op(kind: str, ctx: Ctx, **fields: Any) -> pb.PosOperation:
    if kind == "authorize":
        message: Any = pb.AuthorizeRequest(request_id=rid(), card_number=CARD, amount_minor=100,
                                           currency="USD")
    elif kind == "capture":
        message = pb.CaptureRequest(request_id=rid(), authorization_id=ctx.pending_id)
    elif kind == "void":
        message = pb.VoidRequest(request_id=rid(), authorization_id=ctx.pending_id)
    elif kind == "refund":
        message = pb.RefundRequest(request_id=rid(), authorization_id=ctx.captured_id,
                                   amount_minor=100)
    elif kind == "reverse":
        message = pb.ReverseRequest(request_id=rid(), original_request_id="anything")
    else:
        message = pb.LoadValueRequest(request_id=rid(), card_number=CARD, amount_minor=100,
                                      currency="USD", payment_ref="pay")
    for name, value in fields.items():
        setattr(message, name, value)
    return pb.PosOperation(terminal_id="T1", **{kind: message})


BATCH_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("authorize", {"amount_minor": 0}, "amount_minor"),
    ("authorize", {"amount_minor": -5}, "amount_minor"),
    ("authorize", {"currency": "XXX"}, "currency"),
    ("authorize", {"card_number": LUHN_BAD}, "card_number"),
    ("authorize", {"card_number": "not-a-card"}, "card_number"),
    ("authorize", {"stan": "9" * 200}, "stan"),
    ("authorize", {"request_id": ""}, "request_id"),
    ("authorize", {"request_id": "r" * 65}, "request_id"),
    ("authorize", {"request_id": "r 1"}, "request_id"),
    ("capture", {"authorization_id": "nope"}, "authorization_id"),
    ("capture", {"amount_minor": -1}, "amount_minor"),
    ("void", {"authorization_id": ""}, "authorization_id"),
    ("refund", {"amount_minor": 0}, "amount_minor"),
    ("refund", {"authorization_id": f"{CARD}.0"}, "authorization_id"),
    ("reverse", {"original_request_id": ""}, "original_request_id"),
    ("reverse", {"original_request_id": "o" * 65}, "original_request_id"),
    ("load", {"amount_minor": 0}, "amount_minor"),
    ("load", {"currency": ""}, "currency"),
    ("load", {"payment_ref": ""}, "payment_ref"),
    ("load", {"payment_ref": "p" * 500}, "payment_ref"),
]


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_malformed_batch_operations_are_per_operation_errors(ctx: Ctx) -> None:
    """Each malformed operation sits between two valid ones: it gets an error naming the
    field, nothing is written for it, and its neighbours succeed."""
    server, alliance = ctx.server, ctx.alliance
    gateway = alliance.tokens["gw1"]
    problems: list[str] = []
    for kind, fields, field in BATCH_CASES:
        bad = _op(kind, ctx, **fields)
        good = [_op("authorize", ctx, amount_minor=1), _op("authorize", ctx, amount_minor=1)]
        before = db_state(server.ledger)
        replies, status = batch_status(server, gateway,
                                       pb.BatchRequest(operations=[good[0], bad, good[1]]))
        if status is not None:
            problems.append(f"{kind} {fields}: the whole Batch failed with {status}")
            continue
        first, middle, last = replies[0].replies
        if not middle.error or field not in middle.error or middle.HasField("reply"):
            problems.append(f"{kind} {fields}: reply {str(middle).strip()!r:.200}")
        if first.error or first.reply.result != R.APPROVED or last.error or \
                last.reply.result != R.APPROVED:
            problems.append(f"{kind} {fields}: neighbours {first} / {last}")
        after = db_state(server.ledger)
        if after.request_keys - before.request_keys != 2:
            problems.append(f"{kind} {fields}: {after.request_keys - before.request_keys} keys")
    assert not problems, "\n".join(problems)


def test_a_gateway_operation_must_name_a_terminal(ctx: Ctx) -> None:
    op = _op("authorize", ctx)
    op.terminal_id = ""
    replies, status = batch_status(ctx.server, ctx.alliance.tokens["gw1"],
                                   pb.BatchRequest(operations=[op]))
    assert status is None
    assert "terminal_id" in replies[0].replies[0].error
