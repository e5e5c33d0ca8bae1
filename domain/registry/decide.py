"""The registry's state, decisions and evolution. One stream holds the whole registry: it is
small (thousands of stores, tens of thousands of terminals) and rarely written."""

from __future__ import annotations

import msgspec

from domain.common import InvalidInput, Meta, Principal, Result, Role, shown
from domain.coupons.model import Campaign, DefineCouponCampaign
from domain.exchange.rates import ExchangeRate, PublishExchangeRate
from domain.points.program import ALLIANCE, DefineProgram, Program
from domain.reconcile.decide import ReconBook, evolve_recon
from domain.registry import commands as cmd
from domain.registry import events as ev
from domain.rules.commands import PublishRuleSet, in_force
from domain.rules.model import RuleSet
from domain.settlement.agreements import (
    Agreements,
    PublishAgreement,
    RegisterStoreEntity,
    check_publishable,
)
from domain.settlement.payments import PaymentBook, evolve_payment
from domain.settlement.periods import LOG_PARTITION, CloseSettlementPeriod


class Partner(msgspec.Struct, frozen=True):
    partner_id: str
    name: str
    currency: str


class Store(msgspec.Struct, frozen=True):
    store_id: str
    partner_id: str
    name: str
    timezone: str


class Terminal(msgspec.Struct, frozen=True):
    terminal_id: str
    store_id: str
    partner_id: str


class Credential(msgspec.Struct):
    credential_id: str
    principal: Principal
    label: str
    token_sha256: bytes
    revoked: bool = False


class CardClass(msgspec.Struct, frozen=True):
    card_class: str
    max_balance_major: int
    hold_ttl_seconds: int


DEFAULT_MAX_BALANCE_MAJOR = 1_000_000
DEFAULT_HOLD_TTL_SECONDS = 7 * 24 * 3600


class RegistryState(msgspec.Struct):
    version: int = 0
    partners: dict[str, Partner] = {}
    stores: dict[str, Store] = {}
    terminals: dict[str, Terminal] = {}
    credentials: dict[str, Credential] = {}
    card_classes: dict[str, CardClass] = {}
    programs: dict[str, Program] = {}  # by owner: partner id or "alliance"
    rule_sets: dict[str, list[RuleSet]] = {}  # by rule set id: every version, oldest first
    campaigns: dict[str, Campaign] = {}
    open_period: int = 1  # the settlement period movements now fall in
    closed_periods: dict[int, int] = {}  # period id -> when it was closed (us)
    # The registry version of the last close (0: none yet): where the open period begins.
    last_close_version: int = 0
    store_entities: dict[str, str] = {}  # store id -> its entity id, for stores of their own
    agreements: Agreements = msgspec.field(default_factory=Agreements)
    # settlement payments and reconciliation runs (domain/settlement/payments.py,
    # domain/reconcile/decide.py)
    payments: PaymentBook = msgspec.field(default_factory=PaymentBook)
    reconciliations: ReconBook = msgspec.field(default_factory=ReconBook)

    def entities(self) -> dict[str, str]:
        """Every accounting entity: partners and stores registered as their own -> kind."""
        found = dict.fromkeys(self.partners, "partner")
        found.update(dict.fromkeys(self.store_entities, "store"))
        return found
    exchange_rates: dict[str, list[ExchangeRate]] = {}  # "<from>><to>": every version

    def card_class(self, name: str) -> CardClass:
        return self.card_classes.get(name) or CardClass(
            name, DEFAULT_MAX_BALANCE_MAJOR, DEFAULT_HOLD_TTL_SECONDS)

    def program_of(self, partner_id: str) -> Program | None:
        """The program a card issued by `partner_id` earns in: its partner's, else the
        alliance's, else none."""
        return self.programs.get(partner_id) or self.programs.get(ALLIANCE)

    def rule_sets_in_force(self, store_id: str, at_us: int) -> tuple[RuleSet, ...]:
        """The versions in force at a store at `at_us`: alliance-wide, the store's partner's
        and the store's own, in that order (then by id)."""
        store = self.stores[store_id]
        scopes = {"alliance": 0, f"partner:{store.partner_id}": 1, f"store:{store_id}": 2}
        found: list[tuple[int, str, RuleSet]] = []
        for rule_set_id, versions in self.rule_sets.items():
            order = scopes.get(versions[0].scope)
            if order is None:
                continue
            current = in_force(versions, at_us)
            if current is not None:
                found.append((order, rule_set_id, current))
        return tuple(rule_set for _, _, rule_set in sorted(found, key=lambda f: f[:2]))


class RegistryDecision(msgspec.Struct, frozen=True):
    result: Result
    events: tuple[ev.RegistryEvent, ...] = ()


def _approve(event: ev.RegistryEvent) -> RegistryDecision:
    return RegistryDecision(Result.APPROVED, (event,))


def _exists() -> RegistryDecision:
    return RegistryDecision(Result.DECLINED_INVALID_STATE)


def decide(state: RegistryState,
           command: (cmd.RegistryCommand | DefineProgram | PublishRuleSet | DefineCouponCampaign
                     | CloseSettlementPeriod | PublishAgreement | RegisterStoreEntity
                     | PublishExchangeRate),
           meta: Meta,
           new_credential_id: str = "", new_token_sha256: bytes = b"") -> RegistryDecision:
    """Decide a registry command. References to unknown partners or stores are input errors
    (InvalidInput naming the field); an id that is already taken is DECLINED_INVALID_STATE."""
    match command:
        case cmd.RegisterPartner(partner_id, name, currency):
            if partner_id in state.partners:
                return _exists()
            return _approve(ev.PartnerRegistered(meta, partner_id, name, currency))
        case cmd.RegisterStore(partner_id, store_id, name, timezone):
            if partner_id not in state.partners:
                raise InvalidInput("partner_id", f"unknown partner {shown(partner_id)}")
            if store_id in state.stores:
                return _exists()
            return _approve(ev.StoreRegistered(meta, partner_id, store_id, name, timezone))
        case cmd.RegisterTerminal(store_id, terminal_id):
            if store_id not in state.stores:
                raise InvalidInput("store_id", f"unknown store {shown(store_id)}")
            if terminal_id in state.terminals:
                return _exists()
            return _approve(ev.TerminalRegistered(meta, store_id, terminal_id))
        case cmd.CreateCredential(principal, label):
            _check_scope_exists(state, principal)
            assert new_credential_id and new_token_sha256
            return _approve(ev.CredentialCreated(
                meta, new_credential_id, principal.role, principal.partner_id,
                principal.store_id, principal.terminal_id, label, new_token_sha256))
        case cmd.RevokeCredential(credential_id):
            credential = state.credentials.get(credential_id)
            if credential is None:
                raise InvalidInput("credential_id", f"unknown credential {shown(credential_id)}")
            if credential.revoked:
                return _exists()
            return _approve(ev.CredentialRevoked(meta, credential_id))
        case cmd.DefineCardClass(card_class, max_balance_major, hold_ttl_seconds):
            return _approve(ev.CardClassDefined(meta, card_class, max_balance_major,
                                                hold_ttl_seconds))
        case DefineProgram():
            if command.owner != ALLIANCE and command.owner not in state.partners:
                raise InvalidInput("owner", f"unknown partner {shown(command.owner)}")
            return _approve(ev.ProgramDefined(meta, command.program()))
        case DefineCouponCampaign(campaign):
            if campaign.owner != ALLIANCE and campaign.owner not in state.partners:
                raise InvalidInput("owner", f"unknown partner {shown(campaign.owner)}")
            for index, store_id in enumerate(campaign.stores):
                if store_id not in state.stores:
                    raise InvalidInput(f"stores[{index}]", f"unknown store {shown(store_id)}")
            return _approve(ev.CouponCampaignDefined(meta, campaign))
        case PublishAgreement(agreement):
            if not agreement.valid_from_us:  # none given: from its publication on
                agreement = msgspec.structs.replace(agreement,
                                                    valid_from_us=meta.recorded_at_us)
            check_publishable(agreement, state.agreements.versions.get(agreement.agreement_id,
                                                                       []),
                              state.entities(), meta.recorded_at_us)
            return _approve(ev.AgreementPublished(meta, agreement))
        case RegisterStoreEntity(store_id):
            if store_id not in state.stores:
                raise InvalidInput("store_id", f"unknown store {shown(store_id)}")
            if store_id in state.partners:
                raise InvalidInput("store_id", f"{shown(store_id)} is also a partner's id: an "
                                   "entity id must name one entity")
            if store_id in state.store_entities:
                return _exists()
            if any(t.store_id == store_id for t in state.terminals.values()):
                # Before its terminals: every payment at the store is then settled as the
                # store's from the first, and no refund meets a capture of another entity.
                raise InvalidInput("store_id", f"store {shown(store_id)} has terminals already:"
                                   " register a store as its own entity before its terminals")
            return _approve(ev.StoreEntityRegistered(meta, store_id))
        case CloseSettlementPeriod(note):
            return _approve(ev.SettlementPeriodClosed(meta, state.open_period, LOG_PARTITION,
                                                      note))
        case PublishRuleSet(rule_set):
            _check_rule_set_scope(state, rule_set)
            for index, rule in enumerate(rule_set.rules):
                if rule.coupon_campaign and rule.coupon_campaign not in state.campaigns:
                    raise InvalidInput(f"rules[{index}] ({rule.rule_id}).coupon_campaign",
                                       f"unknown campaign {shown(rule.coupon_campaign)}")
            versions = state.rule_sets.get(rule_set.rule_set_id, [])
            expected = len(versions) + 1
            if rule_set.version != expected:
                raise InvalidInput("rule_set.version", f"must be {expected}: published "
                                   "versions are immutable and numbered without gaps")
            if versions and versions[0].scope != rule_set.scope:
                raise InvalidInput("rule_set.scope", f"must stay {shown(versions[0].scope)} for "
                                   f"rule set {shown(rule_set.rule_set_id)}")
            return _approve(ev.RuleSetPublished(meta, rule_set))
        case PublishExchangeRate(rate):
            _check_exchange_rate(state, command)
            return _approve(ev.ExchangeRatePublished(meta, rate))
    raise AssertionError(f"unhandled registry command {command!r}")


def _check_exchange_rate(state: RegistryState, command: PublishExchangeRate) -> None:
    rate = command.rate
    programs = []
    for field in ("from_program", "to_program"):
        program = state.programs.get(getattr(rate, field))
        if program is None:
            raise InvalidInput(f"rate.{field}", f"no points program of "
                               f"{shown(getattr(rate, field))}")
        programs.append(program)
    if programs[0].currency != programs[1].currency:
        raise InvalidInput("rate.to_program", f"its points are valued in {programs[1].currency}"
                           f", the source's in {programs[0].currency}: value could not be "
                           "conserved to the minor unit")
    command.check_versions(state.exchange_rates.get(rate.pair, []))


def _check_rule_set_scope(state: RegistryState, rule_set: RuleSet) -> None:
    kind, _, target = rule_set.scope.partition(":")
    if kind == "partner" and target not in state.partners:
        raise InvalidInput("rule_set.scope", f"unknown partner {shown(target)}")
    if kind == "store" and target not in state.stores:
        raise InvalidInput("rule_set.scope", f"unknown store {shown(target)}")


def _check_scope_exists(state: RegistryState, p: Principal) -> None:
    if p.partner_id and p.partner_id not in state.partners:
        raise InvalidInput("principal.partner_id", f"unknown partner {shown(p.partner_id)}")
    if p.store_id:
        store = state.stores.get(p.store_id)
        if store is None or store.partner_id != p.partner_id:
            raise InvalidInput("principal.store_id",
                               f"no store {shown(p.store_id)} at partner {shown(p.partner_id)}")
    if p.terminal_id:
        terminal = state.terminals.get(p.terminal_id)
        if terminal is None or terminal.store_id != p.store_id:
            raise InvalidInput("principal.terminal_id",
                               f"no terminal {shown(p.terminal_id)} in store {shown(p.store_id)}")


def evolve(state: RegistryState, event: ev.RegistryEvent) -> RegistryState:
    match event:
        case ev.PartnerRegistered(_, partner_id, name, currency):
            state.partners[partner_id] = Partner(partner_id, name, currency)
        case ev.StoreRegistered(_, partner_id, store_id, name, timezone):
            state.stores[store_id] = Store(store_id, partner_id, name, timezone)
        case ev.TerminalRegistered(_, store_id, terminal_id):
            partner_id = state.stores[store_id].partner_id
            state.terminals[terminal_id] = Terminal(terminal_id, store_id, partner_id)
        case ev.CredentialCreated(_, credential_id, role, partner_id, store_id, terminal_id,
                                  label, token_sha256):
            principal = Principal(Role(role), partner_id, store_id, terminal_id)
            state.credentials[credential_id] = Credential(credential_id, principal, label,
                                                          token_sha256)
        case ev.CredentialRevoked(_, credential_id):
            state.credentials[credential_id].revoked = True
        case ev.CardClassDefined(_, card_class, max_balance_major, hold_ttl_seconds):
            state.card_classes[card_class] = CardClass(card_class, max_balance_major,
                                                       hold_ttl_seconds)
        case ev.ProgramDefined(_, program):
            state.programs[program.owner] = program
        case ev.RuleSetPublished(_, rule_set):
            state.rule_sets.setdefault(rule_set.rule_set_id, []).append(rule_set)
        case ev.CouponCampaignDefined(_, campaign):
            state.campaigns[campaign.campaign_id] = campaign
        case ev.SettlementPeriodClosed(meta, period_id, _, _):
            assert period_id == state.open_period, "periods close in order"
            state.closed_periods[period_id] = meta.recorded_at_us
            state.open_period = period_id + 1
            state.last_close_version = state.version + 1
        case ev.AgreementPublished(_, agreement):
            state.agreements.add(agreement)
        case ev.StoreEntityRegistered(_, store_id):
            state.store_entities[store_id] = store_id
        case ev.SettlementPaymentRecorded():
            evolve_payment(state.payments, event)
        case ev.ReconciliationRecorded() | ev.ReconciliationBreakResolved():
            evolve_recon(state.reconciliations, event)
        case ev.ExchangeRatePublished(_, rate):
            state.exchange_rates.setdefault(rate.pair, []).append(rate)
        case _:
            raise AssertionError(f"unhandled registry event {event!r}")
    state.version += 1
    return state
