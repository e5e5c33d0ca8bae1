"""Who may do what: the scope rules of the wire contract, as pure functions.

Each function returns None when the principal may act, else a sentence saying why not (the
PERMISSION_DENIED message). Card-level checks take the card's issuing partner, and follow-up
operations the store where the authorization was made, so they run where that state is known.
"""

from __future__ import annotations

from domain.common import Principal, Role, shown

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
    if p.role == Role.STORE_MANAGER and p.store_id == store_id:
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
