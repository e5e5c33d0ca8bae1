"""The small alliance the fuzzer plays in, and a VALID request for every RPC.

The world is built once per store: the registry (partners, stores, terminals, credentials of
every role) through the ledger as tests/support/alliance.build_alliance does, then over gRPC a card
class with a one-minute hold lifetime, points programs, a published rule set, a coupon
campaign, loaded cards, pending and captured authorizations, a purchase and a coupon.

`valid_request(rpc, rng)` makes a request that should pass validation, with values drawn
towards their documented extremes (a line of 10^9, a rate of 1000, multipliers of 100x, times
in the year 9999...), so that writes really happen and the server's arithmetic and formatting
are exercised at the edges of what it accepts. `learn` reads every OK reply so later requests
refer to what exists (new cards, authorizations, purchases, coupon codes, rule set versions).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from domain.common import luhn_complete
from grpc_api.generated import agreements_pb2 as apb
from grpc_api.generated import agreements_pb2_grpc as apb_grpc
from grpc_api.generated import exchange_pb2 as xpb
from grpc_api.generated import exchange_pb2_grpc as xpb_grpc
from grpc_api.generated import finance_pb2 as fpb
from grpc_api.generated import finance_pb2_grpc as fpb_grpc
from grpc_api.generated import insights_pb2 as ipb
from grpc_api.generated import insights_pb2_grpc as ipb_grpc
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.generated import reconcile_pb2 as rpb
from grpc_api.generated import reconcile_pb2_grpc as rpb_grpc
from ledger.engine import Ledger
from tests.fuzz.generator import Pools
from tests.support.alliance import Alliance

GROUPS = {"AdminService": "Admin", "CardService": "Card", "PosService": "Pos",
          "ProgramService": "Program", "SettlementService": "Settlement",
          "ReconciliationService": "Reconcile", "AgreementService": "Agreement",
          "ExchangeService": "Exchange", "FinanceService": "Finance",
          "InsightsService": "Insights"}
# The generated modules of the services not in pos.proto (default: pos.proto's).
MODULES: dict[str, tuple[Any, Any]] = {"ReconciliationService": (rpb, rpb_grpc),
                                       "AgreementService": (apb, apb_grpc),
                                       "ExchangeService": (xpb, xpb_grpc),
                                       "FinanceService": (fpb, fpb_grpc),
                                       "InsightsService": (ipb, ipb_grpc)}
PROGRAMS = ["P1", "P2", "alliance"]


@dataclass(frozen=True)
class Rpc:
    group: str  # Admin, Card, Pos, Program (Batch is its own group)
    service: str
    name: str
    request: type[Message]
    streaming: bool

    @property
    def full(self) -> str:
        return f"{self.service}.{self.name}"


def rpcs_from_descriptors() -> list[Rpc]:
    """Every RPC of the four services, read from the descriptors (nothing listed by hand)."""
    found = []
    for service_name, group in GROUPS.items():
        module = MODULES.get(service_name, (pb, pb_grpc))[0]
        service = module.DESCRIPTOR.services_by_name[service_name]
        for method in service.methods:
            found.append(Rpc(group, service_name, method.name,
                             GetMessageClass(method.input_type), method.client_streaming))
    return found


RPCS = rpcs_from_descriptors()
UNARY = [r for r in RPCS if not r.streaming]

CATALOGUE = [("tea-2", "grocery"), ("jacket-7", "apparel"), ("gc-50", "gift-card"),
             ("wine-1", "wine"), ("book-3", "books"), ("x" * 48, "")]
PRICES = [0, 1, 99, 6_00, 89_00, 10_000_00, 10**8, 10**9]  # a line is at most 10^9
TILLS = ["t1", "t2", "t3", "t_air"]  # terminals; t1 and t2 at S1, t3 at S2, t_air at A1 (P2)
STORE_OF = {"t1": "S1", "t2": "S1", "t3": "S2", "t_air": "A1"}
VALID_TIMES_TO = ["", "2099-01-01T00:00:00Z", "2027-01-01T00:00:00+14:00",
                  "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59"]
VALID_TIMES_FROM = ["", "2026-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
                    "0001-01-01T00:00:00+23:59", "2026-05-31T23:59:59-12:00"]
LOCAL_TIMES = ["2026-06-01T12:30", "2026-06-06T23:59:59", "2026-06-01T00:00", "",
               "2024-02-29T10:00"]
RULE_SET_IDS = [f"fz-rs-{i}" for i in range(6)]  # few ids, so new versions supersede old ones


def edge(rng: random.Random, low: int, high: int, *extra: int) -> int:
    """A valid integer in [low, high], drawn towards the bounds."""
    roll = rng.random()
    if roll < 0.25:
        return high
    if roll < 0.4:
        return low
    if roll < 0.55 and extra:
        return rng.choice(extra)
    return rng.randint(low, high)


@dataclass
class World:
    ledger: Ledger
    alliance: Alliance
    channel: grpc.Channel
    pools: Pools = field(default_factory=Pools)
    stubs: dict[str, Any] = field(default_factory=dict)
    auth_owner: dict[str, str] = field(default_factory=dict)  # authorization id -> till
    captured: dict[str, str] = field(default_factory=dict)  # captured authorization -> till
    purchase_owner: dict[str, str] = field(default_factory=dict)  # purchase id -> till
    purchase_lines: dict[str, int] = field(default_factory=dict)  # purchase id -> line count
    sent_by: dict[str, list[str]] = field(default_factory=dict)  # till -> its request ids
    rule_set_versions: dict[str, int] = field(default_factory=dict)
    rate_versions: dict[str, int] = field(default_factory=dict)  # "<from>><to>" -> latest
    quotes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (card, caller)
    touched: set[str] = field(default_factory=set)  # cards an accepted call named
    # Cards last seen ACTIVE: most requests go to them, or nearly every purchase would be
    # declined on a card the fuzzer issued but never activated (or blocked since).
    active: dict[str, None] = field(default_factory=dict)  # an ordered set
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for service in GROUPS:
            grpc_module = MODULES.get(service, (pb, pb_grpc))[1]
            self.stubs[service] = getattr(grpc_module, f"{service}Stub")(self.channel)

    # ------------------------------------------------------------------ plumbing

    def method(self, rpc: Rpc) -> Any:
        return getattr(self.stubs[rpc.service], rpc.name)

    def token(self, caller: str) -> str:
        return self.alliance.admin_token if caller == "admin" else self.alliance.tokens[caller]

    def fresh_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.numbers)}"

    def fresh_card(self) -> str:
        return luhn_complete(f"7{next(self.numbers):014d}")

    def card(self, rng: random.Random) -> str:
        if self.active and rng.random() < 0.9:
            return rng.choice(list(self.active)[-100:])
        return rng.choice(self.pools.cards)

    # ------------------------------------------------------------------ valid requests

    def valid_request(self, rpc: Rpc, rng: random.Random) -> tuple[Message, str] | None:
        """A request for `rpc` that should pass validation, and who sends it (None when the
        world holds nothing it could refer to yet)."""
        make = getattr(self, f"_v_{rpc.name}", None)
        return None if make is None else make(rng)

    # AdminService

    def _v_RegisterPartner(self, rng: random.Random) -> tuple[Message, str]:
        return pb.RegisterPartnerRequest(
            request_id=self.fresh_id("fz"), partner_id=self.fresh_id("FP"),
            name=rng.choice(["Partner", "Ω" * 200, "日本語 shop"]),
            currency=rng.choice(["USD", "EUR", "JPY", "BHD"])), "admin"

    def _v_RegisterStore(self, rng: random.Random) -> tuple[Message, str]:
        return pb.RegisterStoreRequest(
            request_id=self.fresh_id("fz"), partner_id=rng.choice(self.pools.partners),
            store_id=self.fresh_id("FS"), name="Store " + "é" * rng.randint(0, 190),
            timezone=rng.choice(["Asia/Shanghai", "Pacific/Kiritimati", "Etc/GMT+12",
                                 "America/St_Johns", "UTC"])), "admin"

    def _v_RegisterTerminal(self, rng: random.Random) -> tuple[Message, str]:
        return pb.RegisterTerminalRequest(request_id=self.fresh_id("fz"),
                                          store_id=rng.choice(self.pools.stores),
                                          terminal_id=self.fresh_id("FT")), "admin"

    def _v_CreateCredential(self, rng: random.Random) -> tuple[Message, str]:
        principal = rng.choice([
            pb.Principal(role=pb.TERMINAL, partner_id="P1", store_id="S1", terminal_id="T1"),
            pb.Principal(role=pb.GATEWAY, partner_id="P1", store_id="S1"),
            pb.Principal(role=pb.STORE_MANAGER, partner_id="P1", store_id="S2"),
            pb.Principal(role=pb.PARTNER_MANAGER, partner_id="P2"),
            pb.Principal(role=pb.AUDITOR), pb.Principal(role=pb.FINANCE)])
        return pb.CreateCredentialRequest(request_id=self.fresh_id("fz"), principal=principal,
                                          label="l" * rng.choice([0, 1, 200])), "admin"

    def _v_RevokeCredential(self, rng: random.Random) -> tuple[Message, str] | None:
        if not self.pools.credentials:
            return None
        return pb.RevokeCredentialRequest(request_id=self.fresh_id("fz"),
                                          credential_id=rng.choice(self.pools.credentials)), \
            "admin"

    def _v_DefineCardClass(self, rng: random.Random) -> tuple[Message, str]:
        return pb.DefineCardClassRequest(
            request_id=self.fresh_id("fz"),
            card_class=rng.choice(["VIP", "FUZZ_SHORT", "C_" + "Z" * 30, "NEW1"]),
            max_balance_major=edge(rng, 1, 10**6, 1_000),
            hold_ttl_seconds=edge(rng, 60, 31 * 86_400, 3_600)), "admin"

    # CardService

    def _v_IssueCard(self, rng: random.Random) -> tuple[Message, str]:
        caller = rng.choice(["s1_manager", "p1_manager", "admin"])
        store = "S1" if caller == "s1_manager" else rng.choice(["S1", "S2"])
        return pb.IssueCardRequest(
            request_id=self.fresh_id("fz"),
            card_number=rng.choice([self.fresh_card(), ""]),
            card_class=rng.choice(["STANDARD", "VIP", "FUZZ_SHORT"]), currency="USD",
            customer_ref=rng.choice(["", "c" * 64]), issuing_store_id=store), caller

    def _action(self, rng: random.Random) -> tuple[Message, str]:
        return pb.CardActionRequest(request_id=self.fresh_id("fz"), card_number=self.card(rng),
                                    reason=rng.choice(["", "r" * 200, "lost"])), \
            rng.choice(["s1_manager", "p1_manager", "admin"])

    _v_ActivateCard = _v_BlockCard = _v_UnblockCard = _v_CloseCard = _action

    def _v_ReplaceCard(self, rng: random.Random) -> tuple[Message, str]:
        return pb.ReplaceCardRequest(
            request_id=self.fresh_id("fz"), card_number=self.card(rng),
            new_card_number=rng.choice([self.fresh_card(), ""]), reason="lost"), \
            rng.choice(["s1_manager", "admin"])

    def _v_LoadValue(self, rng: random.Random) -> tuple[Message, str]:
        caller = rng.choice(["t1", "t3", "s1_manager", "admin"])
        return pb.LoadValueRequest(request_id=self.fresh_id("fz"), card_number=self.card(rng),
                                   amount_minor=edge(rng, 1, 10**8, 100_00, 1),
                                   currency="USD", payment_ref="p" * rng.choice([1, 128])), \
            caller

    def _v_GetCard(self, rng: random.Random) -> tuple[Message, str]:
        return pb.GetCardRequest(card_number=self.card(rng)), \
            rng.choice(["admin", "auditor", "s1_manager", "p1_manager"])

    def _v_ListMovements(self, rng: random.Random) -> tuple[Message, str]:
        return pb.ListMovementsRequest(
            card_number=self.card(rng), after_version=rng.choice([0, 0, 1, 3, 2**62 - 1]),
            limit=rng.choice([0, 1, 7, 1000])), rng.choice(["admin", "auditor", "finance"])

    # PosService

    def _v_Authorize(self, rng: random.Random) -> tuple[Message, str]:
        return pb.AuthorizeRequest(request_id=self.fresh_id("fz"), card_number=self.card(rng),
                                   amount_minor=edge(rng, 1, 10**8, 1_00, 1),
                                   currency="USD", allow_partial=rng.random() < 0.3,
                                   stan=rng.choice(["", "1" * 32])), rng.choice(TILLS)

    def _held(self, rng: random.Random, pool: dict[str, str]) -> tuple[str, str] | None:
        if not pool:
            return None
        authorization = rng.choice(list(pool)[-200:])
        return authorization, pool[authorization]

    def _v_Capture(self, rng: random.Random) -> tuple[Message, str] | None:
        held = self._held(rng, self.auth_owner)
        if held is None:
            return None
        return pb.CaptureRequest(request_id=self.fresh_id("fz"), authorization_id=held[0],
                                 amount_minor=rng.choice([0, 1, 50])), held[1]

    def _v_Void(self, rng: random.Random) -> tuple[Message, str] | None:
        held = self._held(rng, self.auth_owner)
        if held is None:
            return None
        return pb.VoidRequest(request_id=self.fresh_id("fz"), authorization_id=held[0]), held[1]

    def _v_Refund(self, rng: random.Random) -> tuple[Message, str] | None:
        held = self._held(rng, self.captured)
        if held is None:
            return None
        return pb.RefundRequest(request_id=self.fresh_id("fz"), authorization_id=held[0],
                                amount_minor=edge(rng, 1, 100, 10**8)), held[1]

    def _v_Reverse(self, rng: random.Random) -> tuple[Message, str]:
        till = rng.choice(TILLS)
        sent = self.sent_by.get(till) or ["never-sent"]
        return pb.ReverseRequest(request_id=self.fresh_id("fz"),
                                 original_request_id=rng.choice(sent[-100:])), till

    def _v_GetBalance(self, rng: random.Random) -> tuple[Message, str]:
        return pb.GetBalanceRequest(card_number=self.card(rng)), rng.choice(TILLS)

    def purchase(self, rng: random.Random) -> pb.PurchaseRequest:
        lines = []
        for _ in range(rng.choice([1, 1, 2, 3, 12, 500])):
            sku, category = rng.choice(CATALOGUE)
            price = rng.choice(PRICES)
            quantity = 1 if price >= 10**8 else rng.choice([1, 2, 7])
            lines.append(pb.PurchaseLine(sku=sku, category=category, quantity=quantity,
                                         unit_price_minor=price,
                                         margin_minor=rng.choice([0, price])))
        pays_rest = rng.random() < 0.4
        codes = self.pools.coupon_codes
        return pb.PurchaseRequest(
            request_id=self.fresh_id("fz"), card_number=self.card(rng), currency="USD",
            lines=lines, stored_value_minor=0 if pays_rest else rng.choice([0, 1, 100, 6_00]),
            stored_value_pays_rest=pays_rest, allow_partial=rng.random() < 0.5,
            points_to_redeem=rng.choice([0, 0, 1, 100]),
            local_time=rng.choice(LOCAL_TIMES), receipt_ref="R-1",
            coupon_codes=[rng.choice(codes)] if codes and rng.random() < 0.3 else [])

    def _v_Purchase(self, rng: random.Random) -> tuple[Message, str]:
        return self.purchase(rng), rng.choice(TILLS)

    def _v_SimulatePurchase(self, rng: random.Random) -> tuple[Message, str]:
        purchase = self.purchase(rng)
        if rng.random() < 0.7:
            # Paid outside the ledger: approved whatever the card holds, so the points
            # oracle has something to check.
            purchase.points_to_redeem = purchase.stored_value_minor = 0
            purchase.stored_value_pays_rest = False
            purchase.ClearField("coupon_codes")
        if rng.random() < 0.3:
            return pb.SimulatePurchaseRequest(purchase=purchase, store_id="S1"), "s1_manager"
        return pb.SimulatePurchaseRequest(purchase=purchase), rng.choice(TILLS)

    def _v_Return(self, rng: random.Random) -> tuple[Message, str] | None:
        if not self.purchase_owner:
            return None
        purchase_id = rng.choice(list(self.purchase_owner)[-200:])
        count = self.purchase_lines.get(purchase_id, 1)
        indexes = rng.sample(range(count), k=min(count, rng.choice([1, 2])))
        return pb.ReturnRequest(
            request_id=self.fresh_id("fz"), purchase_id=purchase_id, reason="damaged",
            lines=[pb.ReturnLine(line_index=i, quantity=1) for i in indexes]), \
            self.purchase_owner[purchase_id]

    # ProgramService

    def _v_DefineProgram(self, rng: random.Random) -> tuple[Message, str]:
        owner, caller = rng.choice([("P1", "p1_manager"), ("P2", "admin"),
                                    ("alliance", "admin")])
        tiers = rng.choice([[], [pb.TierLevel(name="SILVER", threshold_minor=100_00),
                                 pb.TierLevel(name="GOLD", threshold_minor=10**12)]])
        return pb.DefineProgramRequest(
            request_id=self.fresh_id("fz"), owner=owner, currency="USD",
            point_value_micros=rng.choice([1, 1_000_000, 10**9]),
            expiry_kind=rng.choice([pb.NEVER, pb.MONTHS_AFTER, pb.END_OF_MONTH, pb.END_OF_YEAR]),
            expiry_n=rng.choice([1, 12, 99]), timezone=rng.choice(["Asia/Shanghai", "UTC",
                                                                  "Pacific/Kiritimati"]),
            vesting_days=rng.choice([0, 0, 14, 365]), tiers=tiers,
            clawback=rng.choice([pb.WRITE_OFF, pb.POINTS_DEBT])), caller

    def rule(self, rng: random.Random, index: int, history: bool) -> pb.Rule:
        """A valid rule; `history`: rules on the card's history (stamps, first-purchase
        bonus, per-card caps) may be drawn too."""
        effect = rng.choice([pb.EARN, pb.EARN, pb.MULTIPLY, pb.MULTIPLY, pb.MULTIPLY,
                             pb.EXCLUDE, pb.THRESHOLD_BONUS, pb.CAP, pb.DISCOUNT]
                            + ([pb.STAMP, pb.FIRST_PURCHASE_BONUS] if history else []))
        rule = pb.Rule(rule_id=f"r{index}", effect=effect,
                       priority=rng.choice([0, 0, 1, -1000, 1000]))
        # An EXCLUDE without a category, or a 100 % discount on everything, would leave
        # nothing to earn at S1 for the rest of the run: those name categories.
        if rng.random() < 0.3 or effect == pb.EXCLUDE or (effect == pb.DISCOUNT
                                                          and rng.random() < 0.7):
            rule.categories.extend(rng.sample(["grocery", "apparel", "gift-card", "wine"], 2))
        if rng.random() < 0.1:
            rule.card_classes.append(rng.choice(["VIP", "STANDARD"]))
        if rng.random() < 0.1:
            rule.weekdays.extend(sorted(rng.sample(range(7), 3)))
        if rng.random() < 0.1:
            rule.minute_from, rule.minute_to = 0, rng.choice([1, 720, 1440])
        if effect == pb.EARN:
            # The extremes of what is accepted, often: 1000 points per minor unit.
            rule.rate_num = rng.choice([1_000, 1_000, 1, rng.randint(1, 1_000)])
            rule.rate_den = rng.choice([1, 1, 100, 1_000_000, rng.randint(1, 1_000_000)])
            rule.rounding = rng.choice([pb.FLOOR, pb.HALF_UP, pb.CEIL])
        elif effect == pb.MULTIPLY:
            rule.multiplier_bp = rng.choice([1_000_000, 1_000_000, 0, 10_000, 20_000,
                                             rng.randint(0, 1_000_000)])
            rule.stacking = rng.choice([pb.COMBINE, pb.COMBINE, pb.EXCLUSIVE])
        elif effect == pb.THRESHOLD_BONUS:
            rule.threshold_minor = edge(rng, 1, 10**12, 100_00)
            rule.points = edge(rng, 1, 10**12, 200)
            if self.pools.campaigns and rng.random() < 0.5:
                rule.coupon_campaign = rng.choice(self.pools.campaigns)
        elif effect == pb.CAP:
            rule.points = rng.choice([10**12, 10**12, 5_000, 1, 0, rng.randint(0, 10**12)])
            rule.cap_period = rng.choice(["", "", "DAY", "WEEK", "MONTH"]) if history else ""
        elif effect == pb.DISCOUNT:
            rule.discount_bp = edge(rng, 1, 10_000, 500)
        elif effect == pb.STAMP:
            rule.stamps_needed = edge(rng, 1, 1_000, 5)
            if not rule.categories:
                rule.categories.append("grocery")
        elif effect == pb.FIRST_PURCHASE_BONUS:
            rule.points = edge(rng, 1, 10**12, 100)
        return rule

    def _v_PublishRuleSet(self, rng: random.Random) -> tuple[Message, str]:
        rule_set_id = rng.choice(RULE_SET_IDS)
        # The first ids hold rules evaluated on the basket alone and are in force at S1 (and
        # everywhere): the points oracle checks purchases there against the reference. The
        # last ids may hold rules on the card's history too, in force at S2 and P2 only.
        history = rule_set_id in RULE_SET_IDS[-2:]
        caller, scope = rng.choice(
            [("admin", "store:S2"), ("p1_manager", "store:S2"), ("admin", "partner:P2")]
            if history else
            [("admin", "alliance"), ("admin", "store:S1"), ("p1_manager", "partner:P1"),
             ("s1_manager", "store:S1")])
        rules = [self.rule(rng, i, history) for i in range(rng.choice([1, 2, 3, 4, 6]))]
        if rng.random() < 0.3:
            # Everything at its maximum at once: the highest earn rate and stacked 100x
            # multipliers, what the bounds on each value must keep inside int64 together.
            rules = [pb.Rule(rule_id="max-earn", effect=pb.EARN, rate_num=1_000, rate_den=1),
                     *(pb.Rule(rule_id=f"max-x{i}", effect=pb.MULTIPLY, multiplier_bp=1_000_000,
                               stacking=pb.COMBINE) for i in range(rng.choice([1, 2, 3]))),
                     *rules[:2]]
            for index, rule in enumerate(rules):
                rule.rule_id = f"{rule.rule_id}-{index}"
        return pb.PublishRuleSetRequest(request_id=self.fresh_id("fz"), rule_set=pb.RuleSet(
            rule_set_id=rule_set_id, version=self.rule_set_versions.get(rule_set_id, 0) + 1,
            scope=scope, valid_from=rng.choice(VALID_TIMES_FROM[:3]) if rng.random() < 0.9
            else rng.choice(VALID_TIMES_FROM),
            valid_to=rng.choice(VALID_TIMES_TO[:3]) if rng.random() < 0.9
            else rng.choice(VALID_TIMES_TO), rules=rules)), caller

    def _v_GetRuleSet(self, rng: random.Random) -> tuple[Message, str]:
        rule_set_id = rng.choice(RULE_SET_IDS)
        return pb.GetRuleSetRequest(rule_set_id=rule_set_id, version=rng.choice(
            [0, self.rule_set_versions.get(rule_set_id, 1)])), rng.choice(["admin", "auditor"])

    def _v_ListRuleSets(self, rng: random.Random) -> tuple[Message, str]:
        return pb.ListRuleSetsRequest(scope=rng.choice(["", "alliance", "partner:P1",
                                                        "store:S1"])), \
            rng.choice(["admin", "auditor", "p1_manager"])

    def _v_DefineCouponCampaign(self, rng: random.Random) -> tuple[Message, str]:
        kind = rng.choice([pb.COUPON_VALUE, pb.COUPON_PERCENT])
        campaign = pb.CouponCampaign(
            campaign_id=self.fresh_id("fz-cp"), owner="P1", currency="USD", kind=kind,
            min_spend_minor=rng.choice([0, 1, 10**9]), funded_by=rng.choice(["P1", "P2"]),
            valid_from=rng.choice(VALID_TIMES_FROM[:3]),
            valid_to=rng.choice(VALID_TIMES_TO[1:3]) if rng.random() < 0.9
            else rng.choice(VALID_TIMES_TO[3:]),
            restore_on_return=rng.random() < 0.5)
        if kind == pb.COUPON_VALUE:
            campaign.value_minor = edge(rng, 1, 10**8, 500)
            campaign.partial_use = rng.random() < 0.5
        else:
            campaign.percent_bp = edge(rng, 1, 10_000, 1_000)
        if rng.random() < 0.3:
            campaign.stores.append(rng.choice(["S1", "S2"]))
        if rng.random() < 0.3:
            campaign.categories.append(rng.choice(["grocery", "apparel"]))
        return pb.DefineCouponCampaignRequest(request_id=self.fresh_id("fz"),
                                              campaign=campaign), \
            rng.choice(["admin", "p1_manager"])

    def _v_IssueCoupon(self, rng: random.Random) -> tuple[Message, str] | None:
        if not self.pools.campaigns:
            return None
        return pb.IssueCouponRequest(request_id=self.fresh_id("fz"),
                                     card_number=self.card(rng),
                                     campaign_id=rng.choice(self.pools.campaigns)), \
            rng.choice(["p1_manager", "s1_manager", "admin"])

    def _v_ListCoupons(self, rng: random.Random) -> tuple[Message, str]:
        return pb.ListCouponsRequest(card_number=self.card(rng)), rng.choice(["t1", "auditor"])

    # SettlementService

    def _v_CloseSettlementPeriod(self, rng: random.Random) -> tuple[Message, str]:
        return pb.CloseSettlementPeriodRequest(
            request_id=self.fresh_id("fz"), note=rng.choice(["", "month end", "Ω" * 200])), \
            rng.choice(["admin", "finance"])

    def _v_GetSettlementStatement(self, rng: random.Random) -> tuple[Message, str]:
        return pb.GetSettlementStatementRequest(
            period_id=rng.choice([0, 1]), entity_id=rng.choice(["", "P1", "P2"])), \
            rng.choice(["admin", "finance", "auditor"])

    def _v_RecordSettlementPayment(self, rng: random.Random) -> tuple[Message, str]:
        payer, payee = rng.choice([("P1", "P2"), ("P2", "P1")])
        return pb.RecordSettlementPaymentRequest(
            request_id=self.fresh_id("fz"), period_id=rng.choice([1, 1, 2]), currency="USD",
            payer_id=payer, payee_id=payee, amount_minor=edge(rng, 1, 10_000, 1, 99),
            reference=rng.choice(["wire-1", "Ω" * 200])), rng.choice(["admin", "finance"])

    # AgreementService

    def _v_PublishAgreement(self, rng: random.Random) -> tuple[Message, str]:
        pair = rng.choice([("", ""), ("P1", ""), ("P1", "P2"), ("P2", "")])
        cap = rng.choice([0, 0, edge(rng, 1, 10**9, 1, 10**6)])
        agreement = apb.Agreement(
            agreement_id=self.fresh_id("agr"), version=1, entity_a=pair[0], entity_b=pair[1],
            sv_commission_bps=edge(rng, 0, 10_000, 0, 300),
            commission_paid_by=rng.choice([apb.ISSUER, apb.ACQUIRER]),
            voucher_share_bps=0 if pair[1] else rng.choice([0, 2_500]),
            net_debit_cap_minor=0 if pair[1] else cap,
            cap_currency="USD" if cap and not pair[1] else "")
        return apb.PublishAgreementRequest(request_id=self.fresh_id("fz"),
                                           agreement=agreement), "admin"

    def _v_RegisterStoreEntity(self, rng: random.Random) -> tuple[Message, str]:
        return apb.RegisterStoreEntityRequest(request_id=self.fresh_id("fz"),
                                              store_id=rng.choice(["S1", "S404", "A1"])), \
            "admin"

    def _v_ListAgreements(self, rng: random.Random) -> tuple[Message, str]:
        return apb.ListAgreementsRequest(agreement_id=rng.choice(["", "agr-1"])), \
            rng.choice(["admin", "t1", "auditor", "p2_manager"])

    # ReconciliationService

    def _journal_row(self, rng: random.Random) -> rpb.JournalRow:
        till = rng.choice(["t1", "t2", "t3"])
        sent = self.sent_by.get(till) or ["fz-1"]
        return rpb.JournalRow(
            store_id=STORE_OF[till], reference=rng.choice(sent[-50:]),
            type=rng.choice(["CAPTURED", "REFUNDED", "PURCHASE", "RETURN", "LOADED"]),
            amount_minor=edge(rng, 0, 100_000, 1, 100), currency="USD")

    def _v_Reconcile(self, rng: random.Random) -> tuple[Message, str]:
        return rpb.ReconcileRequest(
            request_id=self.fresh_id("fz"), partner_id="P1", period_id=rng.choice([1, 1, 2]),
            rows=[self._journal_row(rng) for _ in range(rng.randint(0, 20))]), \
            rng.choice(["admin", "finance"])

    def _v_ResolveBreak(self, rng: random.Random) -> tuple[Message, str]:
        breaks = self.pools.breaks or ["0" * 16]
        return rpb.ResolveBreakRequest(
            request_id=self.fresh_id("fz"), partner_id="P1", period_id=1,
            break_id=rng.choice(breaks), reason="checked with the store"), \
            rng.choice(["admin", "finance"])

    def _v_GetReconciliation(self, rng: random.Random) -> tuple[Message, str]:
        return rpb.GetReconciliationRequest(partner_id=rng.choice(["P1", "P2"]),
                                            period_id=1), rng.choice(["auditor", "finance"])

    def _v_ExportLedgerTotals(self, rng: random.Random) -> tuple[Message, str]:
        return rpb.ExportLedgerTotalsRequest(partner_id=rng.choice(["P1", "P2"]),
                                             period_id=1), rng.choice(["auditor", "finance"])
    # ExchangeService

    def _v_PublishExchangeRate(self, rng: random.Random) -> tuple[Message, str]:
        source, target = rng.sample(PROGRAMS, 2)
        pair = f"{source}>{target}"
        minimum = edge(rng, 1, 10**6, 100)
        return xpb.PublishExchangeRateRequest(request_id=self.fresh_id("fz"), rate=xpb.ExchangeRate(
            from_program=source, to_program=target, version=self.rate_versions.get(pair, 0) + 1,
            valid_from=rng.choice(["", "", "2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]),
            numerator=edge(rng, 1, 10**9, 1, 3), denominator=edge(rng, 1, 10**9, 2, 7),
            rounding=rng.choice([xpb.ROUND_DOWN, xpb.ROUND_HALF_UP, xpb.ROUND_UP]),
            fee_fixed_points=rng.choice([0, minimum - 1]), fee_bp=edge(rng, 0, 5_000, 100),
            min_points=minimum, max_points=edge(rng, minimum, 10**12),
            daily_limit_points=rng.choice([0, minimum, 10**12]),
            quote_ttl_s=rng.choice([0, 1, 60, 3_600]))), "admin"

    def _v_QuoteExchange(self, rng: random.Random) -> tuple[Message, str]:
        source, target = rng.sample(PROGRAMS, 2)
        wanted = rng.random() < 0.3
        amount = edge(rng, 1, 10**12, 100, 1_000)
        return xpb.QuoteExchangeRequest(
            card_number=self.card(rng), from_program=source, to_program=target,
            points_taken=0 if wanted else amount, points_wanted=amount if wanted else 0), \
            rng.choice([*TILLS, "gw1", "auditor", "admin"])

    def _v_ExecuteExchange(self, rng: random.Random) -> tuple[Message, str] | None:
        if not self.quotes:
            return None
        quote_id = rng.choice(list(self.quotes)[-100:])
        card, caller = self.quotes[quote_id]
        return xpb.ExecuteExchangeRequest(request_id=self.fresh_id("fz"), card_number=card,
                                          quote_id=quote_id), caller

    # FinanceService (read-only: valid days around today, entities in and out of scope)

    def _day(self, rng: random.Random) -> str:
        return rng.choice(["", "2026-01-01", "2026-12-31", "1970-01-01", "9999-12-31",
                           "2024-02-29"])

    def _v_GetLiability(self, rng: random.Random) -> tuple[Message, str]:
        return fpb.GetLiabilityRequest(as_of=self._day(rng), entity_id=rng.choice(
            ["", "P1", "P2", "alliance"])), rng.choice(["admin", "finance", "auditor"])

    def _v_GetRollForward(self, rng: random.Random) -> tuple[Message, str]:
        return fpb.GetRollForwardRequest(**{"from": "2026-01-01"}, to=rng.choice(
            ["", "2026-12-31", "2026-01-01"]), entity_id=rng.choice(["", "P1"])), \
            rng.choice(["admin", "finance", "auditor"])

    def _v_GetBreakage(self, rng: random.Random) -> tuple[Message, str]:
        return fpb.GetBreakageRequest(**{"from": "1970-01-01"}, to=self._day(rng)), \
            rng.choice(["admin", "finance", "auditor"])

    def _v_GetIfrs15(self, rng: random.Random) -> tuple[Message, str]:
        published = rng.random() < 0.5
        return fpb.GetIfrs15Request(
            as_of=rng.choice(["", "2026-12-31", "2027-06-30"]),
            program_id=rng.choice(["", "P1", "alliance"]),
            method=fpb.PUBLISHED if published else fpb.COHORT_RUNOFF,
            estimates=[fpb.PublishedRate(redemption_rate_bp=rng.choice([0, 9_500, 10_000]))]
            if published else []), rng.choice(["admin", "finance", "auditor"])

    def _v_GetCampaignProfitability(self, rng: random.Random) -> tuple[Message, str]:
        return fpb.GetCampaignProfitabilityRequest(
            **{"from": "2026-01-01"}, to=rng.choice(["", "2026-12-31", "2027-06-30"]),
            entity_id=rng.choice(["", "P1", "alliance"])), \
            rng.choice(["admin", "finance", "auditor"])

    # InsightsService (read-only: days, periods, scopes in and out of the caller's)

    def _insights(self, rng: random.Random) -> tuple[Message, str]:
        request = ipb.InsightsRequest(
            as_of=self._day(rng), months=rng.choice([0, 1, 12, 120]),
            partner_id=rng.choice(["", "", "P1", "P2"]), limit=rng.choice([0, 1, 10_000]))
        if not request.partner_id and rng.random() < 0.3:
            request.store_id = rng.choice(["S1", "S2", "A1"])
        if rng.random() < 0.2:
            request.sales_split_minor = rng.choice([0, -1, 10**12])
        return request, rng.choice(["admin", "auditor", "p1_manager", "p2_manager"])

    _v_GetPyramid = _v_GetValueMatrix = _v_GetRfm = _insights
    _v_GetChurn = _v_GetVisitTimes = _v_GetAffinity = _insights

    def hold_card(self) -> str:
        """A new FUZZ_SHORT card, loaded, with a pending hold of 100.00; its number."""
        number = self.fresh_card()
        token = (("authorization", f"Bearer {self.token('admin')}"),)
        cards, pos = self.stubs["CardService"], self.stubs["PosService"]
        # The class's hold lifetime may have been changed by the fuzzing: set it again.
        self.stubs["AdminService"].DefineCardClass(pb.DefineCardClassRequest(
            request_id=self.fresh_id("hold"), card_class="FUZZ_SHORT",
            max_balance_major=1_000_000, hold_ttl_seconds=60), metadata=token, timeout=60)
        for call, request in [
            (cards.IssueCard, pb.IssueCardRequest(
                request_id=self.fresh_id("hold"), card_number=number, card_class="FUZZ_SHORT",
                currency="USD", issuing_store_id="S1")),
            (cards.ActivateCard, pb.CardActionRequest(request_id=self.fresh_id("hold"),
                                                      card_number=number)),
            (cards.LoadValue, pb.LoadValueRequest(
                request_id=self.fresh_id("hold"), card_number=number, amount_minor=500_00,
                currency="USD", payment_ref="psp")),
            (pos.Authorize, pb.AuthorizeRequest(
                request_id=self.fresh_id("hold"), card_number=number, amount_minor=100_00,
                currency="USD"))]:
            caller = "t1" if call is pos.Authorize else "admin"
            reply = call(request, metadata=(("authorization", f"Bearer {self.token(caller)}"),),
                         timeout=60)
            assert reply.result == pb.APPROVED, reply
        return number

    # ------------------------------------------------------------------ what replies teach

    def learn(self, rpc_name: str, request: Message, caller: str, reply: Any) -> None:
        """Remember what an OK reply created, so later requests can refer to it."""
        pools = self.pools
        request_id = getattr(request, "request_id", "")
        if request_id and caller in STORE_OF:
            self.sent_by.setdefault(caller, []).append(request_id)
        if request_id:
            pools.remember(pools.request_ids, request_id)
        card = getattr(reply, "card", None)
        if card is not None and card.card_number:
            pools.remember(pools.cards, card.card_number, cap=500)
            self.touched.add(card.card_number)
        number = getattr(request, "card_number", "")
        if number:
            self.touched.add(number)
        approved = getattr(reply, "result", 0) in (pb.APPROVED, pb.PARTIALLY_APPROVED)
        if not approved:
            return
        if rpc_name == "Reconcile":
            for found in reply.breaks:
                pools.remember(pools.breaks, found.break_id, cap=200)
        if rpc_name == "Authorize" and reply.authorization_id and caller in STORE_OF:
            self.auth_owner[reply.authorization_id] = caller
            pools.remember(pools.authorizations, reply.authorization_id)
        elif rpc_name == "Capture" and caller in STORE_OF:
            self.captured[request.authorization_id] = caller
            self.auth_owner.pop(request.authorization_id, None)
        elif rpc_name == "Void":
            self.auth_owner.pop(request.authorization_id, None)
        elif rpc_name == "Purchase" and reply.purchase_id:
            pools.remember(pools.purchases, reply.purchase_id)
            self.purchase_owner[reply.purchase_id] = caller
            self.purchase_lines[reply.purchase_id] = len(request.lines)
            for coupon in reply.coupons_issued:
                pools.remember(pools.coupon_codes, coupon.code)
        elif rpc_name == "IssueCoupon" and reply.coupon.code:
            pools.remember(pools.coupon_codes, reply.coupon.code)
        elif rpc_name == "CreateCredential":
            pools.remember(pools.credentials, reply.credential_id)
            pools.remember(pools.tokens, reply.token)
        elif rpc_name == "PublishExchangeRate":
            rate = request.rate
            self.rate_versions[f"{rate.from_program}>{rate.to_program}"] = rate.version
        elif rpc_name == "QuoteExchange" and reply.quote_id:
            self.quotes[reply.quote_id] = (request.card_number, caller)
            pools.remember(pools.quotes, reply.quote_id)
            if len(self.quotes) > 500:
                del self.quotes[next(iter(self.quotes))]
        elif rpc_name == "PublishRuleSet":
            rule_set = request.rule_set
            self.rule_set_versions[rule_set.rule_set_id] = rule_set.version
            pools.remember(pools.rule_sets, rule_set.rule_set_id)
        elif rpc_name == "DefineCouponCampaign":
            pools.remember(pools.campaigns, request.campaign.campaign_id)
        elif rpc_name == "RegisterPartner":
            pools.remember(pools.partners, request.partner_id)
        elif rpc_name == "RegisterStore":
            pools.remember(pools.stores, request.store_id)
        elif rpc_name == "RegisterTerminal":
            pools.remember(pools.terminals, request.terminal_id)
        elif rpc_name == "ReplaceCard":
            self.active.pop(request.card_number, None)  # the reply shows the new card
        if card is not None and card.card_number:
            # What the card's status is now decides whether it is offered as an active card.
            if card.status == pb.ACTIVE:
                self.active[card.card_number] = None
            else:
                self.active.pop(card.card_number, None)
