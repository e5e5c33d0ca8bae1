"""Registry events: the alliance's partners, stores, terminals, credentials, card classes,
points programs and rule sets."""

from __future__ import annotations

import msgspec

from domain.common import Meta
from domain.coupons.model import Campaign
from domain.exchange.rates import ExchangeRate
from domain.points.program import Program
from domain.rules.model import RuleSet


class RegistryEvent(msgspec.Struct, frozen=True, array_like=True, tag_field="t"):
    meta: Meta


class PartnerRegistered(RegistryEvent, tag="reg.partner.v1"):
    partner_id: str
    name: str
    currency: str


class StoreRegistered(RegistryEvent, tag="reg.store.v1"):
    partner_id: str
    store_id: str
    name: str
    timezone: str


class TerminalRegistered(RegistryEvent, tag="reg.terminal.v1"):
    store_id: str
    terminal_id: str


class CredentialCreated(RegistryEvent, tag="reg.credential.v1"):
    credential_id: str
    role: int
    partner_id: str
    store_id: str
    terminal_id: str
    label: str
    token_sha256: bytes  # the token itself is shown once and never stored


class CredentialRevoked(RegistryEvent, tag="reg.credential_revoked.v1"):
    credential_id: str


class CardClassDefined(RegistryEvent, tag="reg.card_class.v1"):
    card_class: str
    max_balance_major: int
    hold_ttl_seconds: int


class ProgramDefined(RegistryEvent, tag="reg.program.v1"):
    program: Program


class RuleSetPublished(RegistryEvent, tag="reg.rule_set.v1"):
    """An immutable version of a rule set (its id, version and scope are inside)."""

    rule_set: RuleSet


class CouponCampaignDefined(RegistryEvent, tag="reg.coupon_campaign.v1"):
    """A campaign's terms; redefining it changes the coupons issued afterwards only."""

    campaign: Campaign


class SettlementPeriodClosed(RegistryEvent, tag="reg.settlement_closed.v1"):
    """The open settlement period ends here: the movements committed before this row of the
    log (in its partition) are the period's (domain.settlement.periods)."""

    period_id: int
    log_partition: int
    note: str


class ExchangeRatePublished(RegistryEvent, tag="reg.exchange_rate.v1"):
    """An immutable version of the rate from one program to another (domain/exchange)."""

    rate: ExchangeRate


REGISTRY_EVENTS: tuple[type[RegistryEvent], ...] = (
    PartnerRegistered, StoreRegistered, TerminalRegistered, CredentialCreated,
    CredentialRevoked, CardClassDefined, ProgramDefined, RuleSetPublished,
    CouponCampaignDefined, SettlementPeriodClosed, ExchangeRatePublished,
)
