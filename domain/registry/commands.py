"""Registry commands and their input checks."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from domain.common import (
    CLASS_PATTERN,
    InvalidInput,
    Principal,
    Role,
    check_id,
    check_text,
    shown,
)
from domain.currency import check_currency

HOLD_TTL_SECONDS_MIN = 60
HOLD_TTL_SECONDS_MAX = 31 * 24 * 3600
MAX_BALANCE_MAJOR_LIMIT = 10**10


class RegisterPartner(msgspec.Struct, frozen=True, array_like=True, tag="RegisterPartner"):
    partner_id: str
    name: str
    currency: str

    def validate(self) -> None:
        check_id(self.partner_id, "partner_id")
        check_text(self.name, "name", required=True)
        check_currency(self.currency)


class RegisterStore(msgspec.Struct, frozen=True, array_like=True, tag="RegisterStore"):
    partner_id: str
    store_id: str
    name: str
    timezone: str

    def validate(self) -> None:
        check_id(self.partner_id, "partner_id")
        check_id(self.store_id, "store_id")
        check_text(self.name, "name", required=True)
        if not self.timezone or len(self.timezone) > 64:
            raise InvalidInput("timezone", "must be an IANA time zone name")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput("timezone",
                               f"unknown IANA time zone {shown(self.timezone)}") from None


class RegisterTerminal(msgspec.Struct, frozen=True, array_like=True, tag="RegisterTerminal"):
    store_id: str
    terminal_id: str

    def validate(self) -> None:
        check_id(self.store_id, "store_id")
        check_id(self.terminal_id, "terminal_id")


_SCOPE_FIELDS: dict[Role, tuple[bool | None, bool, bool]] = {
    # role: needs (partner_id, store_id, terminal_id); None: may have one
    Role.ADMIN: (False, False, False),
    Role.AUDITOR: (False, False, False),
    Role.FINANCE: (None, False, False),  # the alliance's, or one partner's (its statements)
    Role.PARTNER_MANAGER: (True, False, False),
    Role.STORE_MANAGER: (True, True, False),
    Role.GATEWAY: (True, True, False),
    Role.TERMINAL: (True, True, True),
}


class CreateCredential(msgspec.Struct, frozen=True, array_like=True, tag="CreateCredential"):
    principal: Principal
    label: str

    def validate(self) -> None:
        p = self.principal
        if p.role not in _SCOPE_FIELDS:
            raise InvalidInput("principal.role", "must be a role other than ROLE_UNSPECIFIED")
        needs = _SCOPE_FIELDS[Role(p.role)]
        for needed, value, field in zip(
            needs, (p.partner_id, p.store_id, p.terminal_id),
            ("principal.partner_id", "principal.store_id", "principal.terminal_id"),
            strict=True,
        ):
            if needed or (needed is None and value):
                check_id(value, field)
            elif needed is False and value:
                raise InvalidInput(field, f"must be empty for role {Role(p.role).name}")
        check_text(self.label, "label")


class RevokeCredential(msgspec.Struct, frozen=True, array_like=True, tag="RevokeCredential"):
    credential_id: str

    def validate(self) -> None:
        check_id(self.credential_id, "credential_id")


class DefineCardClass(msgspec.Struct, frozen=True, array_like=True, tag="DefineCardClass"):
    card_class: str
    max_balance_major: int
    hold_ttl_seconds: int

    def validate(self) -> None:
        if not CLASS_PATTERN.fullmatch(self.card_class):
            raise InvalidInput("card_class", "must be 1..32 of [A-Z0-9_]")
        if not 0 < self.max_balance_major <= MAX_BALANCE_MAJOR_LIMIT:
            raise InvalidInput("max_balance_major", f"must be 1..{MAX_BALANCE_MAJOR_LIMIT}")
        if not HOLD_TTL_SECONDS_MIN <= self.hold_ttl_seconds <= HOLD_TTL_SECONDS_MAX:
            raise InvalidInput("hold_ttl_seconds",
                               f"must be {HOLD_TTL_SECONDS_MIN}..{HOLD_TTL_SECONDS_MAX}")


RegistryCommand = (
    RegisterPartner | RegisterStore | RegisterTerminal | CreateCredential | RevokeCredential
    | DefineCardClass
)
