"""Agreements: what the alliance's entities have agreed to pay one another, as registry data.

An agreement is versioned and effective-dated like a rule set: a published version never
changes; a newer version of the same agreement supersedes the older from its `valid_from_us`.
Versions may not be back-dated (valid_from at or after the moment of publishing), so a movement
is always settled under the terms that were published before it happened, live or on replay.

Three scopes, found in this order (the first with a version in force wins, per term group):
- a pair of entities (`entity_a` < `entity_b`, both set): bilateral terms;
- one entity (`entity_a` set, `entity_b` empty): that entity's membership terms: its net debit
  cap and the share of its payables it may settle in its own stored-value vouchers;
- the alliance (both empty): the defaults for every pair and every entity.

Terms (integers; basis points are 1/10,000):
- `sv_commission_bps`, `commission_paid_by`: commission on stored value of one entity's cards
  spent at another's stores (ISSUER: the cards' issuer pays the store's entity on top of the
  value; ACQUIRER: the store's entity pays the issuer, as a merchant fee would);
- `points_reimbursement_micros`: what a program owner pays per point of its program redeemed at
  the other entity's stores (0: the program's point value);
- `points_price_micros`, `points_billing_bps`: what an entity pays per point of another's
  program its sales earned, times the billing percentage;
- `exchange_fee_earner`: who earns the fee of a points exchange between the two entities'
  programs (the fee itself is the exchange rate's; `exchange_fee_bps` is reserved and must be
  0);
- `voucher_share_bps`: the share of a payable the payer may settle in its own stored-value
  vouchers (entity and alliance scope);
- `net_debit_cap_minor`, `cap_currency`: the entity's net debit cap in the open settlement
  period (entity and alliance scope; 0 = none). Over it, spending the entity's cards' value at
  other entities' stores is declined (DECLINED_NET_DEBIT_CAP); its own stores keep working.

Pure code: validation raises InvalidInput naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import msgspec

from domain.common import InvalidInput, check_id, check_time_us, shown
from domain.currency import check_currency

BPS = 10_000
MICROS_MAX = 10**12  # a point worth a million currency units: beyond any program
VERSIONS_MAX = 10_000


class Payer(enum.IntEnum):
    ISSUER = 1  # the cards' issuer pays
    ACQUIRER = 2  # the entity whose store took the card pays


class Agreement(msgspec.Struct, frozen=True, array_like=True):
    agreement_id: str
    version: int
    valid_from_us: int  # 0 when published: from the moment of publication
    entity_a: str = ""  # "" and "": alliance-wide; a and "": one entity; a < b: a pair
    entity_b: str = ""
    sv_commission_bps: int = 0
    commission_paid_by: int = Payer.ACQUIRER
    points_reimbursement_micros: int = 0
    points_price_micros: int = 0
    points_billing_bps: int = BPS
    exchange_fee_bps: int = 0
    exchange_fee_earner: str = ""
    voucher_share_bps: int = 0
    net_debit_cap_minor: int = 0
    cap_currency: str = ""

    @property
    def scope(self) -> tuple[str, str]:
        return (self.entity_a, self.entity_b)

    def validate(self) -> None:
        check_id(self.agreement_id, "agreement.agreement_id")
        if not 1 <= self.version <= VERSIONS_MAX:
            raise InvalidInput("agreement.version", f"must be 1..{VERSIONS_MAX}, not "
                               f"{shown(self.version)}")
        check_time_us(self.valid_from_us, "agreement.valid_from")
        if self.entity_a:
            check_id(self.entity_a, "agreement.entity_a")
        if self.entity_b:
            check_id(self.entity_b, "agreement.entity_b")
            if not self.entity_a:
                raise InvalidInput("agreement.entity_a", "must be set when entity_b is")
            if self.entity_b <= self.entity_a:
                raise InvalidInput("agreement.entity_b", "must sort after entity_a (a pair is "
                                   "named once, in order)")
        for name in ("sv_commission_bps", "points_billing_bps", "exchange_fee_bps",
                     "voucher_share_bps"):
            value = getattr(self, name)
            if not 0 <= value <= BPS:
                raise InvalidInput(f"agreement.{name}", f"must be 0..{BPS} basis points, not "
                                   f"{shown(value)}")
        if self.commission_paid_by not in tuple(Payer):
            raise InvalidInput("agreement.commission_paid_by", "must be ISSUER or ACQUIRER, "
                               f"not {shown(self.commission_paid_by)}")
        for name in ("points_reimbursement_micros", "points_price_micros"):
            value = getattr(self, name)
            if not 0 <= value <= MICROS_MAX:
                raise InvalidInput(f"agreement.{name}", f"must be 0..{MICROS_MAX}, not "
                                   f"{shown(value)}")
        pair = bool(self.entity_b)
        if pair and (self.net_debit_cap_minor or self.voucher_share_bps):
            field = "net_debit_cap_minor" if self.net_debit_cap_minor else "voucher_share_bps"
            raise InvalidInput(f"agreement.{field}", "is an entity's own term: publish it for "
                               "one entity or the alliance, not for a pair")
        if self.exchange_fee_earner:
            check_id(self.exchange_fee_earner, "agreement.exchange_fee_earner")
        if not 0 <= self.net_debit_cap_minor <= 10**15:
            raise InvalidInput("agreement.net_debit_cap_minor",
                               f"must be 0..10^15, not {shown(self.net_debit_cap_minor)}")
        if self.net_debit_cap_minor:
            check_currency(self.cap_currency, "agreement.cap_currency")
        elif self.cap_currency:
            raise InvalidInput("agreement.cap_currency", "is set without a net_debit_cap_minor")


def check_publishable(agreement: Agreement, versions: Sequence[Agreement],
                      known_entities: Mapping[str, object], now_us: int) -> None:
    """Whether `agreement` may be published after `versions` (the same id's, oldest first)."""
    agreement.validate()
    if agreement.exchange_fee_bps:
        # Reserved: a fee that settlement does not apply would mislead the partners who agree
        # it, and applying it later would change periods already closed under these terms.
        raise InvalidInput("agreement.exchange_fee_bps", "must be 0: an exchange's fee is set "
                           "on its rate (PublishExchangeRate fee_bp, fee_fixed_points); the "
                           "agreement names who earns it (exchange_fee_earner)")
    for field, entity in (("agreement.entity_a", agreement.entity_a),
                          ("agreement.entity_b", agreement.entity_b),
                          ("agreement.exchange_fee_earner", agreement.exchange_fee_earner)):
        if entity and entity not in known_entities:
            raise InvalidInput(field, f"unknown accounting entity {shown(entity)}")
    expected = len(versions) + 1
    if agreement.version != expected:
        raise InvalidInput("agreement.version", f"must be {expected}: published versions are "
                           "immutable and numbered without gaps")
    if versions and versions[0].scope != agreement.scope:
        raise InvalidInput("agreement.entity_a", "an agreement keeps its parties: "
                           f"{shown(versions[0].scope)}")
    if agreement.valid_from_us < now_us:
        raise InvalidInput("agreement.valid_from", "must not be in the past: terms apply to "
                           "movements from their publication on, never back-dated")
    if versions and agreement.valid_from_us < versions[-1].valid_from_us:
        raise InvalidInput("agreement.valid_from", "must not be before the previous version's")


def in_force(versions: Sequence[Agreement], at_us: int) -> Agreement | None:
    for agreement in reversed(versions):
        if agreement.valid_from_us <= at_us:
            return agreement
    return None


class Agreements(msgspec.Struct):
    """Every published version, by agreement id, and the ids by scope (the lookups below are a
    few dict reads and a short walk back through one agreement's versions)."""

    versions: dict[str, list[Agreement]] = {}
    by_scope: dict[tuple[str, str], list[str]] = {}
    any_caps: bool = False  # some version sets a net debit cap: the writer keeps positions

    def add(self, agreement: Agreement) -> None:
        self.any_caps = self.any_caps or bool(agreement.net_debit_cap_minor)
        versions = self.versions.setdefault(agreement.agreement_id, [])
        if not versions:
            self.by_scope.setdefault(agreement.scope, []).append(agreement.agreement_id)
        versions.append(agreement)

    def _scoped(self, scope: tuple[str, str], at_us: int) -> Agreement | None:
        found: Agreement | None = None
        for agreement_id in self.by_scope.get(scope, ()):
            current = in_force(self.versions[agreement_id], at_us)
            if current is not None and (found is None or current.valid_from_us
                                        >= found.valid_from_us):
                found = current
        return found

    def for_pair(self, one: str, other: str, at_us: int) -> Agreement | None:
        """The terms between two entities at `at_us`: theirs, else the alliance's."""
        pair = (one, other) if one < other else (other, one)
        return self._scoped(pair, at_us) or self._scoped(("", ""), at_us)

    def for_entity(self, entity_id: str, at_us: int) -> Agreement | None:
        """An entity's own terms at `at_us`: its own, else the alliance's."""
        return self._scoped((entity_id, ""), at_us) or self._scoped(("", ""), at_us)

    def cap(self, entity_id: str, currency: str, at_us: int) -> int:
        """The entity's net debit cap in `currency` (0: none)."""
        terms = self.for_entity(entity_id, at_us)
        if terms is None or not terms.net_debit_cap_minor or terms.cap_currency != currency:
            return 0
        return terms.net_debit_cap_minor


def commission(base_minor: int, bps: int) -> int:
    """Commission at `bps` on `base_minor` of cross-spending, rounded half up to the minor unit
    (on a period's sum per pair and version, not per movement: rounding each sale would lose up
    to half a minor unit a sale)."""
    return (base_minor * bps * 2 + BPS) // (2 * BPS)


# ------------------------------------------------------------------------------ commands


class PublishAgreement(msgspec.Struct, frozen=True, array_like=True, tag="PublishAgreement"):
    """ADMIN (alliance finance) publishes a version of an agreement."""

    agreement: Agreement

    def validate(self) -> None:
        self.agreement.validate()


class RegisterStoreEntity(msgspec.Struct, frozen=True, array_like=True,
                          tag="RegisterStoreEntity"):
    """A store that is its own legal entity: from now on its sales, its cards and its
    settlement are its own (entity id: the store id), no longer its partner's. Movements
    already recorded keep the entity they named."""

    store_id: str

    def validate(self) -> None:
        check_id(self.store_id, "store_id")


def entity_of(store_entities: Mapping[str, str], store_id: str, partner_id: str) -> str:
    """The accounting entity of a store: itself if registered as one, else its partner."""
    return store_entities.get(store_id, partner_id) if store_entities else partner_id
