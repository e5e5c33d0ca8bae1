"""Who reads the finance reports: ADMIN, AUDITOR and the alliance's FINANCE see every entity;
a FINANCE credential created for a partner sees that partner only (its cards' stored value and
its program's points); nobody else."""

from __future__ import annotations

from domain.common import Principal, Role, shown


def sees_all(p: Principal) -> bool:
    return p.role in (Role.ADMIN, Role.AUDITOR) or (p.role == Role.FINANCE and not p.partner_id)


def read_report(p: Principal, entity_id: str) -> str | None:
    """None when `p` may read the reports of `entity_id` ("" = every entity); else why not."""
    if sees_all(p):
        return None
    if p.role == Role.FINANCE and entity_id and p.partner_id == entity_id:
        return None
    what = f"the finance reports of {shown(entity_id)}" if entity_id else "every entity's " \
        "finance reports"
    return f"{Role(p.role).name} {shown(p.partner_id)} may not read {what}"
