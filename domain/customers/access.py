"""Who reads the customer views, and which scope they get: ADMIN and AUDITOR every partner
and store (naming none: the alliance); a partner's PARTNER_MANAGER or FINANCE credential its
own partner's stores only (naming none: its own partner); nobody else. A partner's scope is
also where its customer-level lists stay."""

from __future__ import annotations

from domain.common import Principal, Role, shown

ALL_SEEING = (Role.ADMIN, Role.AUDITOR)
PARTNER_ROLES = (Role.PARTNER_MANAGER, Role.FINANCE)


def scope(p: Principal, partner_id: str, store_partner: str) -> tuple[str | None, str]:
    """(the partner the answer covers, "" = every one; or None) and why not when None.
    `partner_id` is the partner named ("" = none), `store_partner` the partner of the store
    named ("" = none named)."""
    if p.role in ALL_SEEING:
        return partner_id or store_partner, ""
    if p.role in PARTNER_ROLES and p.partner_id:
        wanted = partner_id or store_partner or p.partner_id
        if wanted == p.partner_id and (not store_partner or store_partner == p.partner_id):
            return p.partner_id, ""
        return None, (f"{Role(p.role).name} of {shown(p.partner_id)} may not read the "
                      f"customers of {shown(wanted if wanted != p.partner_id else store_partner)}")
    who = Role(p.role).name + (f" of {shown(p.partner_id)}" if p.partner_id else "")
    return None, f"{who} may not read the customer views"
