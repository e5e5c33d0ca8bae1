"""A four-partner alliance for settlement stories and invariants (issue 9), built through a
started engine (before server processes start on the same database, or for in-process
stories): four partners (P4 in EUR), five stores, one of them (S9) registered as its own
accounting entity, a terminal per store, a manager per partner, the alliance's FINANCE; two
points programs (P1's retail points at 1 cent, P2's airline miles at 1.5 cents, both spendable
at once) with an exchange rate each way; an alliance-wide rule set earning a point per 10 cents
at every store; agreements with commission (alliance default and one pair), per-point rates
(P1 and P3), an exchange fee earner and a voucher share.

The constants are the test's own record of the terms, so an independent recomputation can
read them; the registry is the production copy."""

from __future__ import annotations

from typing import Any

from domain.common import Principal, Result, Role
from domain.exchange.rates import ExchangeRate, PublishExchangeRate, Rounding
from domain.points.program import DefineProgram
from domain.points.purse import ExpiryKind
from domain.registry import commands as rc
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Rule, RuleSet
from domain.settlement.agreements import Agreement, Payer, PublishAgreement, RegisterStoreEntity
from ledger.engine import Ledger
from tests.support.alliance import Alliance, ok, rid

FOREVER_US = 2**62
CURRENCY = {"P1": "USD", "P2": "USD", "P3": "USD", "P4": "EUR"}
PARTNERS = (("P1", "Retail Group"), ("P2", "Airline"), ("P3", "Fuel"), ("P4", "Hotels"))
# (partner, store, name); S9 is registered as its own entity before its terminal exists
STORES = (("P1", "S1", "Flagship"), ("P1", "S9", "Outlet Ltd"), ("P2", "A1", "Lounge"),
          ("P3", "F1", "Station"), ("P4", "H1", "Hotel"))
STORE_ENTITIES = ("S9",)
# credential name -> (partner, store, terminal)
TERMINALS = {"t_s1": ("P1", "S1", "T1"), "t_s9": ("P1", "S9", "T9"),
             "t_a1": ("P2", "A1", "TA1"), "t_f1": ("P3", "F1", "TF1"),
             "t_h1": ("P4", "H1", "TH1")}
# credential name -> (partner, the store its cards are issued at)
MANAGERS = {"m_p1": ("P1", "S1"), "m_p2": ("P2", "A1"), "m_p3": ("P3", "F1"),
            "m_p4": ("P4", "H1")}
# the accounting entity of each terminal's store
ENTITY_OF_TERMINAL = {name: (store if store in STORE_ENTITIES else partner)
                      for name, (partner, store, _) in TERMINALS.items()}

POINT_VALUE_MICROS = {"P1": 1_000_000, "P2": 1_500_000}
PROGRAMS = (
    DefineProgram("P1", "USD", POINT_VALUE_MICROS["P1"], int(ExpiryKind.MONTHS_AFTER), 12,
                  "UTC", 0),
    DefineProgram("P2", "USD", POINT_VALUE_MICROS["P2"], int(ExpiryKind.END_OF_YEAR), 1,
                  "UTC", 0),
)
EARN_RULES = RuleSet(rule_set_id="everywhere", version=1, scope="alliance", valid_from_us=0,
                     valid_to_us=FOREVER_US,
                     rules=(Rule(rule_id="base", effect=Effect.EARN, rate_num=1, rate_den=10),))
# P1 -> P2: (taken - fee) / 2, down, fee 10 + 1 %; P2 -> P1: x 3/2 half up, no fee
RATES = {
    ("P1", "P2"): ExchangeRate("P1", "P2", 1, 0, 1, 2, int(Rounding.DOWN), 10, 100, 100,
                               100_000, 0, 0),
    ("P2", "P1"): ExchangeRate("P2", "P1", 1, 0, 3, 2, int(Rounding.HALF_UP), 0, 0, 1,
                               100_000, 0, 0),
}
# valid_from 0: in force from its publication (before any traffic)
AGREEMENTS = (
    Agreement("alliance-default", 1, 0, sv_commission_bps=50,
              commission_paid_by=int(Payer.ISSUER)),
    Agreement("p1-p2", 1, 0, "P1", "P2", sv_commission_bps=150,
              commission_paid_by=int(Payer.ACQUIRER), exchange_fee_earner="P2"),
    Agreement("p1-p3", 1, 0, "P1", "P3", points_reimbursement_micros=1_200_000,
              points_price_micros=800_000, points_billing_bps=5_000),
    Agreement("p1-own", 1, 0, "P1", voucher_share_bps=2_500),
)


def _call(engine: Ledger, credential: str, command: Any) -> Any:
    reply = ok(engine.call(credential, command, request_id=rid("four"), timeout_s=60))
    assert reply.result == Result.APPROVED, (command, reply)
    return reply


def build_four_partners(engine: Ledger, admin_token: str) -> Alliance:
    """The alliance above, through `engine` (credential ids and bearer tokens by name)."""
    admin = engine.authenticate(admin_token)
    assert admin is not None
    a = Alliance(admin.credential_id, admin_token)
    for partner, name in PARTNERS:
        _call(engine, a.admin, rc.RegisterPartner(partner, name, CURRENCY[partner]))
    for partner, store, name in STORES:
        _call(engine, a.admin, rc.RegisterStore(partner, store, name, "UTC"))
    for store in STORE_ENTITIES:
        _call(engine, a.admin, RegisterStoreEntity(store))
    principals = {"finance": Principal(Role.FINANCE)}
    for name, (partner, store, terminal) in TERMINALS.items():
        _call(engine, a.admin, rc.RegisterTerminal(store, terminal))
        principals[name] = Principal(Role.TERMINAL, partner, store, terminal)
    for name, (partner, _) in MANAGERS.items():
        principals[name] = Principal(Role.PARTNER_MANAGER, partner)
    for name, principal in principals.items():
        reply = _call(engine, a.admin, rc.CreateCredential(principal, name))
        a.credentials[name], a.tokens[name] = reply.credential_id, reply.token
    for program in PROGRAMS:
        _call(engine, a.admin, program)
    _call(engine, a.admin, PublishRuleSet(EARN_RULES))
    for rate in RATES.values():
        _call(engine, a.admin, PublishExchangeRate(rate))
    for agreement in AGREEMENTS:
        _call(engine, a.admin, PublishAgreement(agreement))
    return a
