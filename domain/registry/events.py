"""Registry events: the alliance's partners, stores, terminals, credentials, card classes,
points programs and rule sets."""

from __future__ import annotations

import msgspec

from domain.common import Meta
from domain.coupons.model import Campaign
from domain.exchange.rates import ExchangeRate
from domain.points.program import Program
from domain.rules.model import RuleSet
from domain.settlement.agreements import Agreement


class RegistryEvent(msgspec.Struct, frozen=True, array_like=True, tag_field="t"):
    meta: Meta


class PartnerRegistered(RegistryEvent, frozen=True, tag="reg.partner.v1"):
    partner_id: str
    name: str
    currency: str


class StoreRegistered(RegistryEvent, frozen=True, tag="reg.store.v1"):
    partner_id: str
    store_id: str
    name: str
    timezone: str


class TerminalRegistered(RegistryEvent, frozen=True, tag="reg.terminal.v1"):
    store_id: str
    terminal_id: str


class CredentialCreated(RegistryEvent, frozen=True, tag="reg.credential.v1"):
    credential_id: str
    role: int
    partner_id: str
    store_id: str
    terminal_id: str
    label: str
    token_sha256: bytes  # the token itself is shown once and never stored


class CredentialRevoked(RegistryEvent, frozen=True, tag="reg.credential_revoked.v1"):
    credential_id: str


class CardClassDefined(RegistryEvent, frozen=True, tag="reg.card_class.v1"):
    card_class: str
    max_balance_major: int
    hold_ttl_seconds: int


class ProgramDefined(RegistryEvent, frozen=True, tag="reg.program.v1"):
    program: Program


class RuleSetPublished(RegistryEvent, frozen=True, tag="reg.rule_set.v1"):
    """An immutable version of a rule set (its id, version and scope are inside)."""

    rule_set: RuleSet


class CouponCampaignDefined(RegistryEvent, frozen=True, tag="reg.coupon_campaign.v1"):
    """A campaign's terms; redefining it changes the coupons issued afterwards only."""

    campaign: Campaign


class SettlementPeriodClosed(RegistryEvent, frozen=True, tag="reg.settlement_closed.v1"):
    """The open settlement period ends here: the movements committed before this row of the
    log (in its partition) are the period's (domain.settlement.periods)."""

    period_id: int
    log_partition: int
    note: str


class SettlementPeriodMarked(RegistryEvent, frozen=True, tag="reg.settlement_marked.v1"):
    """The split log's close in one card partition's lane (ledger/partitioned.py): the lane's
    movements before this row are of period `period_id` or earlier, those after it of later
    ones. Written after the registry's `SettlementPeriodClosed`, once per lane, on the lane's
    own marks stream (version = period id: once each)."""

    period_id: int
    log_partition: int  # the lane


class AgreementPublished(RegistryEvent, frozen=True, tag="reg.agreement.v1"):
    """An immutable version of an agreement (domain.settlement.agreements)."""

    agreement: Agreement


class StoreEntityRegistered(RegistryEvent, frozen=True, tag="reg.store_entity.v1"):
    """A store became its own accounting entity (its id is the entity's)."""

    store_id: str
class ExchangeRatePublished(RegistryEvent, frozen=True, tag="reg.exchange_rate.v1"):
    """An immutable version of the rate from one program to another (domain/exchange)."""

    rate: ExchangeRate


REGISTRY_EVENTS: tuple[type[RegistryEvent], ...] = (
    PartnerRegistered, StoreRegistered, TerminalRegistered, CredentialCreated,
    CredentialRevoked, CardClassDefined, ProgramDefined, RuleSetPublished,
    CouponCampaignDefined, SettlementPeriodClosed, SettlementPeriodMarked,
    AgreementPublished, StoreEntityRegistered, ExchangeRatePublished,
)


# ---- settlement payments and reconciliation (issue 9, sections 3 and 4; domain/settlement/
# payments.py, domain/reconcile/decide.py)


class PaymentPart(msgspec.Struct, frozen=True, array_like=True):
    instruction_id: str
    amount_minor: int


class SettlementPaymentRecorded(RegistryEvent, frozen=True, tag="reg.settlement_payment.v1"):
    """A payment against a closed period's transfer from payer to payee, split over the
    transfer's instructions (CASH first, then VOUCHER)."""

    period_id: int
    currency: str
    payer_id: str
    payee_id: str
    amount_minor: int
    reference: str
    parts: tuple[PaymentPart, ...]


class ReconciliationRecorded(RegistryEvent, frozen=True, tag="reg.reconciliation.v1"):
    """A partner's journal matched against a closed period: the file's digest and the counts
    per class (domain.reconcile.matching.MatchClass, by number), never the rows themselves."""

    run_id: str
    partner_id: str
    period_id: int
    file_digest: str
    file_rows: int
    ledger_rows: int
    counts: tuple[int, ...]
    break_ids: bytes  # 8 bytes per break, in the run's order
    repeat_of: str  # "" or the first run of the same file


class ReconciliationBreakResolved(RegistryEvent, frozen=True, tag="reg.reconciliation_resolved.v1"):
    partner_id: str
    period_id: int
    break_id: str
    reason: str


REGISTRY_EVENTS += (SettlementPaymentRecorded, ReconciliationRecorded,
                    ReconciliationBreakResolved)
