"""Who may do what: the scope rules of the wire contract, as pure functions.

Each function returns None when the principal may act, else a sentence saying why not (the
PERMISSION_DENIED message). Card-level checks take the card's issuing partner, and follow-up
operations the store where the authorization was made, so they run where that state is known.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.common import InvalidInput, Principal, Role, shown
from domain.coupons.model import DefineCouponCampaign
from domain.exchange.rates import PublishExchangeRate
from domain.points.program import DefineProgram
from domain.registry import commands as rc
from domain.rules.commands import PublishRuleSet
from domain.settlement.agreements import PublishAgreement, RegisterStoreEntity
from domain.settlement.periods import CloseSettlementPeriod

READERS = frozenset({Role.ADMIN, Role.AUDITOR, Role.FINANCE})
POS = frozenset({Role.TERMINAL, Role.GATEWAY})


def _deny(p: Principal, what: str) -> str:
    return f"role {Role(p.role).name} may not {what}"


def admin_partner_scope(p: Principal, partner_id: str, what: str) -> str | None:
    """RegisterStore / RegisterTerminal / CreateCredential / RevokeCredential in a partner."""
    if p.role == Role.ADMIN:
        return None
    if p.role == Role.PARTNER_MANAGER and p.partner_id == partner_id:
        return None
    if p.role == Role.PARTNER_MANAGER:
        return (f"partner manager of {shown(p.partner_id)} may not {what} of partner "
                f"{shown(partner_id)}")
    return _deny(p, what)


def admin_only(p: Principal, what: str) -> str | None:
    return None if p.role == Role.ADMIN else _deny(p, what)


def create_credential(p: Principal, target: Principal) -> str | None:
    if p.role == Role.ADMIN:
        return None
    if target.role in (Role.ADMIN, Role.AUDITOR, Role.FINANCE):
        return _deny(p, f"create {Role(target.role).name} credentials")
    return admin_partner_scope(p, target.partner_id, "create credentials")


def issue_card(p: Principal, store_id: str, store_partner_id: str) -> str | None:
    if p.role == Role.ADMIN:
        return None
    if p.role == Role.PARTNER_MANAGER and p.partner_id == store_partner_id:
        return None
    # A gateway issues the cards its store's tills sell (gift cards), in Batch or unary.
    if p.role in (Role.STORE_MANAGER, Role.GATEWAY) and p.store_id == store_id:
        return None
    return _deny(p, f"issue cards from store {shown(store_id)}")


def manage_card(p: Principal, issuer_id: str, what: str) -> str | None:
    """Lifecycle changes and loads by managers (TERMINAL/GATEWAY loads: `load_value`)."""
    if p.role == Role.ADMIN:
        return None
    if p.role in (Role.PARTNER_MANAGER, Role.STORE_MANAGER) and p.partner_id == issuer_id:
        return None
    return _deny(p, f"{what} cards issued by {shown(issuer_id)}")


def load_value(p: Principal, issuer_id: str) -> str | None:
    if p.role in POS and p.partner_id == issuer_id:
        return None
    return manage_card(p, issuer_id, "load value on")


def read_card(p: Principal, issuer_id: str) -> str | None:
    """GetCard and ListMovements."""
    if p.role in READERS:
        return None
    return manage_card(p, issuer_id, "read")


def get_balance(p: Principal, issuer_id: str) -> str | None:
    if p.role in POS:
        return None  # spending across the alliance is a feature
    return read_card(p, issuer_id)


def authorize(p: Principal) -> str | None:
    if p.role in POS or p.role == Role.ADMIN:
        return None
    return _deny(p, "authorize payments")


def follow_up(p: Principal, hold_store_id: str, what: str) -> str | None:
    """Capture, Void, Refund: only at the store where the authorization was made."""
    if p.role == Role.ADMIN:
        return None
    if p.role in POS and p.store_id == hold_store_id:
        return None
    if p.role in POS:
        return (f"store {shown(p.store_id)} may not {what} an authorization made at "
                f"{shown(hold_store_id)}")
    return _deny(p, what)


def reverse(p: Principal) -> str | None:
    """Reverse names a request of the caller's own key space, so it is always its own."""
    if p.role in POS or p.role == Role.ADMIN:
        return None
    return _deny(p, "reverse requests")


def define_program(p: Principal, owner: str) -> str | None:
    """Points programs: the alliance's by ADMIN, a partner's by ADMIN or its manager."""
    if owner == "alliance":
        return admin_only(p, "define the alliance's points program")
    return admin_partner_scope(p, owner, "define the points program")


def publish_rules(p: Principal, scope: str, store_partner_id: str) -> str | None:
    """Rule sets: ADMIN anywhere, PARTNER_MANAGER for its partner and its stores,
    STORE_MANAGER for its own store. `store_partner_id`: the partner of a store scope."""
    kind, _, target = scope.partition(":")
    if p.role == Role.ADMIN:
        return None
    if p.role == Role.PARTNER_MANAGER and (
            (kind == "partner" and target == p.partner_id)
            or (kind == "store" and store_partner_id == p.partner_id)):
        return None
    if p.role == Role.STORE_MANAGER and kind == "store" and target == p.store_id:
        return None
    return _deny(p, f"publish rule sets for {scope}")


def read_rules(p: Principal, scope: str, store_partner_id: str) -> str | None:
    """Who may read a rule set: whoever may publish it, readers, and the POS of a store it
    applies to (a till shows what a promotion gives)."""
    if p.role in READERS or publish_rules(p, scope, store_partner_id) is None:
        return None
    kind, _, target = scope.partition(":")
    if kind == "alliance":
        return None  # alliance-wide promotions are public to every participant
    partner_of_caller = p.partner_id
    if kind == "partner" and target == partner_of_caller:
        return None
    if kind == "store" and (target == p.store_id or (
            p.role == Role.PARTNER_MANAGER and store_partner_id == partner_of_caller)):
        return None
    return _deny(p, f"read rule sets of {scope}")


def simulate_purchase(p: Principal, store_id: str, store_partner_id: str) -> str | None:
    """A till (its own store only: checked by the caller), the store's manager, the partner's
    manager, ADMIN."""
    if p.role in POS or p.role == Role.ADMIN:
        return None
    if p.role == Role.STORE_MANAGER and p.store_id == store_id:
        return None
    if p.role == Role.PARTNER_MANAGER and p.partner_id == store_partner_id:
        return None
    return _deny(p, f"simulate purchases at store {shown(store_id)}")


def manage_coupons(p: Principal, owner: str) -> str | None:
    """Campaigns and coupons given by hand: ADMIN, and the managers of the owning partner
    (store managers give coupons, partner managers also define campaigns)."""
    if p.role == Role.ADMIN:
        return None
    if owner != "alliance" and p.role in (Role.PARTNER_MANAGER, Role.STORE_MANAGER) and (
            p.partner_id == owner):
        return None
    return _deny(p, f"manage coupons of {owner}")


def take_return(p: Principal, purchase_partner_id: str) -> str | None:
    """Returns are taken at any till, or by any manager, of the partner that sold the goods."""
    if p.role == Role.ADMIN:
        return None
    if p.role in (*POS, Role.STORE_MANAGER, Role.PARTNER_MANAGER) and (
            p.partner_id == purchase_partner_id):
        return None
    return _deny(p, f"take returns of purchases made at partner {shown(purchase_partner_id)}")


# ------------------------------------------------------------------------------ registry writes


def close_settlement_period(p: Principal) -> str | None:
    """ADMIN, or the alliance's FINANCE (a FINANCE credential of one partner may not)."""
    if p.role == Role.ADMIN or (p.role == Role.FINANCE and not p.partner_id):
        return None
    return _deny(p, "close settlement periods")


def read_statement(p: Principal, entity_id: str) -> str | None:
    """Settlement statements: ADMIN, AUDITOR and the alliance's FINANCE read every entity's;
    a partner's FINANCE credential and its PARTNER_MANAGER read their own partner's."""
    if p.role in (Role.ADMIN, Role.AUDITOR) or (p.role == Role.FINANCE and not p.partner_id):
        return None
    if p.role in (Role.FINANCE, Role.PARTNER_MANAGER) and p.partner_id == entity_id:
        return None
    return _deny(p, f"read the settlement statement of {shown(entity_id)}")


def registry_write(p: Principal, command: object, store_partner: Callable[[str], str | None],
                   credential_principal: Callable[[str], Principal | None]) -> str | None:
    """Who may write which registry command. `store_partner(store id)` and
    `credential_principal(credential id)` look the registry up (None: unknown); an unknown
    store or credential the command names is InvalidInput."""
    if isinstance(command, rc.RegisterPartner | rc.DefineCardClass):
        return admin_only(p, type(command).__name__)
    if isinstance(command, rc.RegisterStore):
        return admin_partner_scope(p, command.partner_id, "register stores")
    if isinstance(command, rc.RegisterTerminal):
        partner = store_partner(command.store_id)
        if partner is None:
            raise InvalidInput("store_id", f"unknown store {shown(command.store_id)}")
        return admin_partner_scope(p, partner, "register terminals")
    if isinstance(command, rc.CreateCredential):
        return create_credential(p, command.principal)
    if isinstance(command, DefineProgram):
        return define_program(p, command.owner)
    if isinstance(command, PublishRuleSet):
        scope = command.rule_set.scope
        return publish_rules(p, scope, scope_store_partner(scope, store_partner))
    if isinstance(command, DefineCouponCampaign):
        if p.role == Role.STORE_MANAGER:
            return "role STORE_MANAGER may not define coupon campaigns (it may give coupons)"
        return manage_coupons(p, command.campaign.owner)
    if isinstance(command, CloseSettlementPeriod):
        return close_settlement_period(p)
    if isinstance(command, PublishAgreement | RegisterStoreEntity):
        return admin_only(p, type(command).__name__)  # the alliance's finance
    if isinstance(command, PublishExchangeRate):
        return admin_only(p, "publish exchange rates")
    assert isinstance(command, rc.RevokeCredential), command
    target = credential_principal(command.credential_id)
    if target is None:
        raise InvalidInput("credential_id", f"unknown credential {shown(command.credential_id)}")
    return create_credential(p, target)


def scope_store_partner(scope: str, store_partner: Callable[[str], str | None]) -> str:
    """The partner of a `store:ID` scope ("" for other scopes and unknown stores)."""
    kind, _, target = scope.partition(":")
    return (store_partner(target) or "") if kind == "store" else ""


# ------------------------------------------------------------------------------ at the till


def purchase_store(p: Principal, simulate: bool, named: str) -> tuple[str, str | None]:
    """(store id, denial): the store where a purchase happens. A till's own store (a till may
    not simulate at another); for a simulation by a manager, the store it names, or its own."""
    if p.role in POS:
        if named and named != p.store_id:
            return "", (f"a till of store {shown(p.store_id)} may not simulate a purchase at "
                        f"{shown(named)}")
        return p.store_id, None
    if simulate:
        store_id = named or p.store_id
        if not store_id:
            raise InvalidInput("store_id", "is required when the caller has no store")
        return store_id, None
    return "", f"role {Role(p.role).name} may not record purchases (a till does)"


def approve_override(approver: Principal | None, store_id: str) -> str | None:
    """A special discount at the till needs a STORE_MANAGER of this store (`approver`: the
    principal of the override token's credential, None if unknown or revoked)."""
    if approver is None:
        return "override_token: unknown or revoked manager credential"
    if approver.role != Role.STORE_MANAGER or approver.store_id != store_id:
        return (f"override_token: only a STORE_MANAGER of store {shown(store_id)} may approve "
                "a special discount")
    return None


def acting_terminal(p: Principal, terminal_id: str,
                    terminal_store: Callable[[str], str | None]) -> tuple[str, str | None]:
    """(terminal id, denial): the terminal an operation of a Batch acts for. A terminal acts
    for itself; a gateway must name a terminal of its store (`terminal_store(id)`: the store
    of a registered terminal, None if unknown); other roles act for no terminal."""
    if p.role == Role.TERMINAL:
        if terminal_id and terminal_id != p.terminal_id:
            return "", f"terminal {shown(p.terminal_id)} may not act for {shown(terminal_id)}"
        return p.terminal_id, None
    if p.role == Role.GATEWAY:
        if not terminal_id:
            raise InvalidInput("terminal_id", "is required for a gateway")
        if terminal_store(terminal_id) != p.store_id:
            return "", (f"terminal {shown(terminal_id)} is not in store "
                        f"{shown(p.store_id)}")
        return terminal_id, None
    return "", None


# ------------------------------------------------------------------------------ points exchange


def quote_exchange(p: Principal, issuer_id: str) -> str | None:
    """A quote writes nothing: a till or gateway of any store (the card's customer is at the
    counter, as for GetBalance), and whoever may read the card (GetCard's roles)."""
    if p.role in POS:
        return None
    return read_card(p, issuer_id)


def execute_exchange(p: Principal) -> str | None:
    """Executing a quote moves the customer's points: a till or gateway of any store (for the
    card's customer, as Authorize), or ADMIN. A quote can only be executed by a credential of
    the partner whose credential made it (checked against the quote: DECLINED_QUOTE_FOREIGN)."""
    if p.role in POS or p.role == Role.ADMIN:
        return None
    return _deny(p, "execute points exchanges")
