"""Registry decide/evolve, command input checks (registry and cards), and the access rules."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from domain import access
from domain.cards import commands as cc
from domain.common import (
    AMOUNT_MAX_MINOR,
    InvalidInput,
    Meta,
    Principal,
    Result,
    Role,
    luhn_complete,
)
from domain.registry import commands as rc
from domain.registry import events as rev
from domain.registry.decide import (
    DEFAULT_HOLD_TTL_SECONDS,
    DEFAULT_MAX_BALANCE_MAJOR,
    CardClass,
    Credential,
    Partner,
    RegistryState,
    Store,
    Terminal,
    decide,
    evolve,
)

T0 = 1_700_000_000_000_000
CARD = luhn_complete("627700000000001")
TOKEN_HASH = hashlib.sha256(b"token").digest()


def make_meta(request_id: str = "req-1", *, role: Role = Role.ADMIN, partner_id: str = "",
              store_id: str = "", terminal_id: str = "", at_us: int = T0) -> Meta:
    return Meta(request_id=request_id, credential_id="cred-admin", role=int(role),
                partner_id=partner_id, store_id=store_id, terminal_id=terminal_id,
                recorded_at_us=at_us)


META = make_meta()


def apply(state: RegistryState, command: rc.RegistryCommand, *, credential_id: str = "",
          token: bytes = b"") -> RegistryState:
    """Validate, decide and (on approval) evolve; assert the command was approved."""
    command.validate()
    decision = decide(state, command, META, credential_id, token)
    assert decision.result == Result.APPROVED, decision
    for event in decision.events:
        before = state.version
        state = evolve(state, event)
        assert state.version == before + 1
    return state


def fresh() -> RegistryState:
    state = RegistryState()
    assert state.version == 0 and not state.partners
    return state


def populated() -> RegistryState:
    """Partners P1 (stores S1, S2; terminals T1 in S1, T2 in S2) and P2 (store S3, terminal T3),
    credentials C-ADMIN and C-T1."""
    state = fresh()
    state = apply(state, rc.RegisterPartner("P1", "Partner One", "EUR"))
    state = apply(state, rc.RegisterPartner("P2", "Partner Two", "USD"))
    state = apply(state, rc.RegisterStore("P1", "S1", "Store One", "Europe/Berlin"))
    state = apply(state, rc.RegisterStore("P1", "S2", "Store Two", "Europe/Paris"))
    state = apply(state, rc.RegisterStore("P2", "S3", "Store Three", "America/New_York"))
    state = apply(state, rc.RegisterTerminal("S1", "T1"))
    state = apply(state, rc.RegisterTerminal("S2", "T2"))
    state = apply(state, rc.RegisterTerminal("S3", "T3"))
    state = apply(state, rc.CreateCredential(Principal(Role.ADMIN), "ops"),
                  credential_id="C-ADMIN", token=TOKEN_HASH)
    state = apply(state, rc.CreateCredential(Principal(Role.TERMINAL, "P1", "S1", "T1"), "till"),
                  credential_id="C-T1", token=TOKEN_HASH)
    return state


# ------------------------------------------------------------------------------ registry


def test_registry_evolve_builds_the_state() -> None:
    state = populated()
    assert state.version == 10
    assert state.partners["P1"] == Partner("P1", "Partner One", "EUR")
    assert state.stores["S3"] == Store("S3", "P2", "Store Three", "America/New_York")
    assert state.terminals["T2"] == Terminal("T2", "S2", "P1")  # partner taken from the store
    credential = state.credentials["C-T1"]
    assert credential == Credential("C-T1", Principal(Role.TERMINAL, "P1", "S1", "T1"), "till",
                                    TOKEN_HASH, revoked=False)
    assert isinstance(credential.principal.role, Role)


def test_fresh_states_share_nothing() -> None:
    one, two = fresh(), fresh()
    apply(one, rc.RegisterPartner("P1", "Partner One", "EUR"))
    assert two.partners == {} and two.version == 0


def test_card_class_defaults_and_definition() -> None:
    state = fresh()
    assert state.card_class("VIP") == CardClass("VIP", DEFAULT_MAX_BALANCE_MAJOR,
                                                DEFAULT_HOLD_TTL_SECONDS)
    state = apply(state, rc.DefineCardClass("VIP", 5000, 3600))
    assert state.card_class("VIP") == CardClass("VIP", 5000, 3600)
    # Redefining a class updates it.
    state = apply(state, rc.DefineCardClass("VIP", 7000, 600))
    assert state.card_class("VIP") == CardClass("VIP", 7000, 600)
    assert state.version == 2


UNKNOWN_REFERENCE_ROWS = [
    ("store of an unknown partner", rc.RegisterStore("P9", "S9", "x", "UTC"), "partner_id"),
    ("terminal of an unknown store", rc.RegisterTerminal("S9", "T9"), "store_id"),
    ("revoke an unknown credential", rc.RevokeCredential("C-NOPE"), "credential_id"),
    ("credential of an unknown partner",
     rc.CreateCredential(Principal(Role.PARTNER_MANAGER, "P9"), ""), "principal.partner_id"),
    ("credential of an unknown store",
     rc.CreateCredential(Principal(Role.STORE_MANAGER, "P1", "S9"), ""), "principal.store_id"),
    ("credential of a store of another partner",
     rc.CreateCredential(Principal(Role.GATEWAY, "P2", "S1"), ""), "principal.store_id"),
    ("credential of an unknown terminal",
     rc.CreateCredential(Principal(Role.TERMINAL, "P1", "S1", "T9"), ""),
     "principal.terminal_id"),
    ("credential of a terminal of another store",
     rc.CreateCredential(Principal(Role.TERMINAL, "P1", "S1", "T2"), ""),
     "principal.terminal_id"),
]


@pytest.mark.parametrize(("description", "command", "field"), UNKNOWN_REFERENCE_ROWS,
                         ids=[r[0] for r in UNKNOWN_REFERENCE_ROWS])
def test_unknown_references_are_invalid_input(description: str, command: rc.RegistryCommand,
                                              field: str) -> None:
    state = populated()
    command.validate()  # well-formed: only the reference is wrong
    with pytest.raises(InvalidInput) as info:
        decide(state, command, META, "C-NEW", TOKEN_HASH)
    assert info.value.field == field, description


DUPLICATE_ROWS = [
    ("partner id taken", rc.RegisterPartner("P1", "Again", "EUR")),
    ("store id taken, same partner", rc.RegisterStore("P1", "S1", "Again", "UTC")),
    ("store id taken by another partner", rc.RegisterStore("P2", "S1", "Again", "UTC")),
    ("terminal id taken, same store", rc.RegisterTerminal("S1", "T1")),
    ("terminal id taken in another store", rc.RegisterTerminal("S3", "T1")),
]


@pytest.mark.parametrize(("description", "command"), DUPLICATE_ROWS,
                         ids=[r[0] for r in DUPLICATE_ROWS])
def test_duplicate_ids_decline(description: str, command: rc.RegistryCommand) -> None:
    state = populated()
    decision = decide(state, command, META)
    assert decision.result == Result.DECLINED_INVALID_STATE, description
    assert decision.events == ()


def test_decide_does_not_change_the_state() -> None:
    state = populated()
    before = (dict(state.partners), dict(state.stores), dict(state.terminals),
              dict(state.credentials), state.version)
    decide(state, rc.RegisterPartner("P3", "Three", "GBP"), META)
    decide(state, rc.RevokeCredential("C-T1"), META)
    assert before == (state.partners, state.stores, state.terminals, state.credentials,
                      state.version)
    assert not state.credentials["C-T1"].revoked


def test_credential_create_and_revoke() -> None:
    state = populated()
    decision = decide(state, rc.CreateCredential(Principal(Role.GATEWAY, "P2", "S3"), "gw"),
                      META, "C-GW", TOKEN_HASH)
    assert decision.result == Result.APPROVED
    (event,) = decision.events
    assert event == rev.CredentialCreated(META, "C-GW", int(Role.GATEWAY), "P2", "S3", "", "gw",
                                          TOKEN_HASH)
    state = evolve(state, event)
    assert state.credentials["C-GW"].principal == Principal(Role.GATEWAY, "P2", "S3")

    decision = decide(state, rc.RevokeCredential("C-GW"), META)
    assert decision.result == Result.APPROVED
    assert decision.events == (rev.CredentialRevoked(META, "C-GW"),)
    state = evolve(state, decision.events[0])
    assert state.credentials["C-GW"].revoked
    assert not state.credentials["C-T1"].revoked

    again = decide(state, rc.RevokeCredential("C-GW"), META)
    assert again.result == Result.DECLINED_INVALID_STATE
    assert again.events == ()


def test_registry_events_record_the_command() -> None:
    state = populated()
    cases: list[tuple[rc.RegistryCommand, rev.RegistryEvent]] = [
        (rc.RegisterPartner("P3", "Three", "JPY"), rev.PartnerRegistered(META, "P3", "Three",
                                                                          "JPY")),
        (rc.RegisterStore("P2", "S4", "Four", "Asia/Shanghai"),
         rev.StoreRegistered(META, "P2", "S4", "Four", "Asia/Shanghai")),
        (rc.RegisterTerminal("S3", "T4"), rev.TerminalRegistered(META, "S3", "T4")),
        (rc.DefineCardClass("GOLD", 100, 60), rev.CardClassDefined(META, "GOLD", 100, 60)),
    ]
    for command, event in cases:
        decision = decide(state, command, META)
        assert decision.result == Result.APPROVED
        assert decision.events == (event,)


# ------------------------------------------------------------------------------ validate


def _ok_principal(role: Role) -> Principal:
    return {
        Role.ADMIN: Principal(Role.ADMIN),
        Role.AUDITOR: Principal(Role.AUDITOR),
        Role.FINANCE: Principal(Role.FINANCE),
        Role.PARTNER_MANAGER: Principal(Role.PARTNER_MANAGER, "P1"),
        Role.STORE_MANAGER: Principal(Role.STORE_MANAGER, "P1", "S1"),
        Role.GATEWAY: Principal(Role.GATEWAY, "P1", "S1"),
        Role.TERMINAL: Principal(Role.TERMINAL, "P1", "S1", "T1"),
    }[role]


VALID_COMMANDS = [
    rc.RegisterPartner("P_1-a", "Partner", "EUR"),
    rc.RegisterPartner("x" * 32, "n" * 200, "KWD"),
    rc.RegisterStore("P1", "S1", "Store", "Asia/Shanghai"),
    rc.RegisterStore("P1", "S1", "Store", "UTC"),
    rc.RegisterTerminal("S1", "T1"),
    *[rc.CreateCredential(_ok_principal(role), "label") for role in Role
      if role != Role.ROLE_UNSPECIFIED],
    rc.RevokeCredential("C-1"),
    rc.DefineCardClass("VIP_2", 1, rc.HOLD_TTL_SECONDS_MIN),
    rc.DefineCardClass("A", rc.MAX_BALANCE_MAJOR_LIMIT, rc.HOLD_TTL_SECONDS_MAX),
    cc.IssueCard("", "STANDARD", "EUR", "", ""),
    cc.IssueCard(CARD, "STANDARD", "JPY", "c" * 64, "S1"),
    cc.ActivateCard(CARD, ""),
    cc.BlockCard(CARD, "lost"),
    cc.UnblockCard(CARD, "found"),
    cc.CloseCard(CARD, "r" * 200),
    cc.ReplaceCard(CARD, "", "lost"),
    cc.ReplaceCard(CARD, luhn_complete("627700000000002"), "lost"),
    cc.LoadValue(CARD, 1, "EUR", "pay-1"),
    cc.LoadValue(CARD, AMOUNT_MAX_MINOR, "EUR", "p" * 128),
    cc.Authorize(CARD, 1, "EUR", False, ""),
    cc.Authorize(CARD, 100, "EUR", True, "s" * 32),
    cc.Capture(f"{CARD}.4", 0),
    cc.Capture(f"{CARD}.999999999999", 10),
    cc.Void(f"{CARD}.1"),
    cc.Refund(f"{CARD}.4", 1),
    cc.Reverse("req-1"),
    cc.Reverse("!" * 64),
    cc.GetCard(luhn_complete("12345678901")),  # 12 digits
    cc.GetBalance(luhn_complete("123456789012345678")),  # 19 digits
]


@pytest.mark.parametrize("command", VALID_COMMANDS, ids=lambda c: type(c).__name__)
def test_valid_commands_pass(command: object) -> None:
    command.validate()  # type: ignore[attr-defined]


BAD_LUHN = CARD[:-1] + str((int(CARD[-1]) + 1) % 10)

INVALID_COMMANDS: list[tuple[str, object, str]] = [
    # --- registry
    ("partner_id with a space", rc.RegisterPartner("P 1", "n", "EUR"), "partner_id"),
    ("partner_id empty", rc.RegisterPartner("", "n", "EUR"), "partner_id"),
    ("partner_id too long", rc.RegisterPartner("x" * 33, "n", "EUR"), "partner_id"),
    ("partner_id with a dot", rc.RegisterPartner("P.1", "n", "EUR"), "partner_id"),
    ("partner name empty", rc.RegisterPartner("P1", "", "EUR"), "name"),
    ("partner name blank", rc.RegisterPartner("P1", "   ", "EUR"), "name"),
    ("partner name too long", rc.RegisterPartner("P1", "n" * 201, "EUR"), "name"),
    ("partner name with a newline", rc.RegisterPartner("P1", "a\nb", "EUR"), "name"),
    ("currency XXX", rc.RegisterPartner("P1", "n", "XXX"), "currency"),
    ("currency lower case", rc.RegisterPartner("P1", "n", "eur"), "currency"),
    ("currency empty", rc.RegisterPartner("P1", "n", ""), "currency"),
    ("store partner_id bad", rc.RegisterStore("P 1", "S1", "n", "UTC"), "partner_id"),
    ("store_id bad", rc.RegisterStore("P1", "S/1", "n", "UTC"), "store_id"),
    ("store name empty", rc.RegisterStore("P1", "S1", "", "UTC"), "name"),
    ("timezone Mars/Base", rc.RegisterStore("P1", "S1", "n", "Mars/Base"), "timezone"),
    ("timezone empty", rc.RegisterStore("P1", "S1", "n", ""), "timezone"),
    ("timezone path escape", rc.RegisterStore("P1", "S1", "n", "../etc/passwd"), "timezone"),
    ("timezone absolute path", rc.RegisterStore("P1", "S1", "n", "/etc/localtime"), "timezone"),
    ("timezone too long", rc.RegisterStore("P1", "S1", "n", "Europe/" + "x" * 60), "timezone"),
    ("terminal store_id bad", rc.RegisterTerminal("", "T1"), "store_id"),
    ("terminal_id bad", rc.RegisterTerminal("S1", "T 1"), "terminal_id"),
    ("role unspecified", rc.CreateCredential(Principal(Role.ROLE_UNSPECIFIED), ""),
     "principal.role"),
    ("admin with a partner", rc.CreateCredential(Principal(Role.ADMIN, "P1"), ""),
     "principal.partner_id"),
    ("auditor with a store", rc.CreateCredential(Principal(Role.AUDITOR, "", "S1"), ""),
     "principal.store_id"),
    ("finance with a terminal", rc.CreateCredential(Principal(Role.FINANCE, "", "", "T1"), ""),
     "principal.terminal_id"),
    ("partner manager without partner",
     rc.CreateCredential(Principal(Role.PARTNER_MANAGER), ""), "principal.partner_id"),
    ("partner manager with a store",
     rc.CreateCredential(Principal(Role.PARTNER_MANAGER, "P1", "S1"), ""),
     "principal.store_id"),
    ("store manager without store",
     rc.CreateCredential(Principal(Role.STORE_MANAGER, "P1"), ""), "principal.store_id"),
    ("store manager with a terminal",
     rc.CreateCredential(Principal(Role.STORE_MANAGER, "P1", "S1", "T1"), ""),
     "principal.terminal_id"),
    ("gateway without partner", rc.CreateCredential(Principal(Role.GATEWAY, "", "S1"), ""),
     "principal.partner_id"),
    ("gateway with a terminal",
     rc.CreateCredential(Principal(Role.GATEWAY, "P1", "S1", "T1"), ""),
     "principal.terminal_id"),
    ("terminal without terminal_id",
     rc.CreateCredential(Principal(Role.TERMINAL, "P1", "S1"), ""), "principal.terminal_id"),
    ("terminal with a bad store_id",
     rc.CreateCredential(Principal(Role.TERMINAL, "P1", "S 1", "T1"), ""),
     "principal.store_id"),
    ("credential label too long",
     rc.CreateCredential(Principal(Role.ADMIN), "l" * 201), "label"),
    ("credential label with a tab", rc.CreateCredential(Principal(Role.ADMIN), "a\tb"),
     "label"),
    ("revoke bad id", rc.RevokeCredential(""), "credential_id"),
    ("card class lower case", rc.DefineCardClass("vip", 10, 3600), "card_class"),
    ("card class empty", rc.DefineCardClass("", 10, 3600), "card_class"),
    ("max balance zero", rc.DefineCardClass("VIP", 0, 3600), "max_balance_major"),
    ("max balance above limit",
     rc.DefineCardClass("VIP", rc.MAX_BALANCE_MAJOR_LIMIT + 1, 3600), "max_balance_major"),
    ("hold ttl too short", rc.DefineCardClass("VIP", 10, rc.HOLD_TTL_SECONDS_MIN - 1),
     "hold_ttl_seconds"),
    ("hold ttl too long", rc.DefineCardClass("VIP", 10, rc.HOLD_TTL_SECONDS_MAX + 1),
     "hold_ttl_seconds"),
    # --- cards
    ("issue bad Luhn", cc.IssueCard(BAD_LUHN, "STANDARD", "EUR", "", ""), "card_number"),
    ("issue card_number too short", cc.IssueCard(luhn_complete("1234567890"), "STANDARD",
                                                 "EUR", "", ""), "card_number"),
    ("issue card_number too long", cc.IssueCard(luhn_complete("1" * 19), "STANDARD", "EUR",
                                                "", ""), "card_number"),
    ("issue card_number with letters", cc.IssueCard("4111a11111111111", "STANDARD", "EUR",
                                                    "", ""), "card_number"),
    ("issue card_class lower case", cc.IssueCard("", "gold", "EUR", "", ""), "card_class"),
    ("issue card_class empty", cc.IssueCard("", "", "EUR", "", ""), "card_class"),
    ("issue currency XXX", cc.IssueCard("", "STANDARD", "XXX", "", ""), "currency"),
    ("issue customer_ref too long", cc.IssueCard("", "STANDARD", "EUR", "c" * 65, ""),
     "customer_ref"),
    ("issue store bad", cc.IssueCard("", "STANDARD", "EUR", "", "S 1"), "issuing_store_id"),
    ("action bad Luhn", cc.BlockCard(BAD_LUHN, "lost"), "card_number"),
    ("action empty card", cc.ActivateCard("", ""), "card_number"),
    ("action reason too long", cc.CloseCard(CARD, "r" * 201), "reason"),
    ("action reason control char", cc.UnblockCard(CARD, "a\x00b"), "reason"),
    ("replace bad Luhn", cc.ReplaceCard(BAD_LUHN, "", ""), "card_number"),
    ("replace new number bad Luhn", cc.ReplaceCard(CARD, BAD_LUHN, ""), "new_card_number"),
    ("replace onto itself", cc.ReplaceCard(CARD, CARD, ""), "new_card_number"),
    ("load bad Luhn", cc.LoadValue(BAD_LUHN, 1, "EUR", "p"), "card_number"),
    ("load amount 0", cc.LoadValue(CARD, 0, "EUR", "p"), "amount_minor"),
    ("load amount negative", cc.LoadValue(CARD, -1, "EUR", "p"), "amount_minor"),
    ("load amount too big", cc.LoadValue(CARD, AMOUNT_MAX_MINOR + 1, "EUR", "p"),
     "amount_minor"),
    ("load currency XXX", cc.LoadValue(CARD, 1, "XXX", "p"), "currency"),
    ("load payment_ref empty", cc.LoadValue(CARD, 1, "EUR", ""), "payment_ref"),
    ("load payment_ref too long", cc.LoadValue(CARD, 1, "EUR", "p" * 129), "payment_ref"),
    ("authorize bad Luhn", cc.Authorize(BAD_LUHN, 1, "EUR", False, ""), "card_number"),
    ("authorize amount 0", cc.Authorize(CARD, 0, "EUR", False, ""), "amount_minor"),
    ("authorize amount negative", cc.Authorize(CARD, -5, "EUR", True, ""), "amount_minor"),
    ("authorize currency unknown", cc.Authorize(CARD, 1, "ABC", False, ""), "currency"),
    ("authorize stan too long", cc.Authorize(CARD, 1, "EUR", False, "s" * 33), "stan"),
    ("capture bad authorization_id", cc.Capture("abc", 0), "authorization_id"),
    ("capture authorization_id version 0", cc.Capture(f"{CARD}.0", 0), "authorization_id"),
    ("capture authorization_id no version", cc.Capture(CARD, 0), "authorization_id"),
    ("capture authorization_id short card", cc.Capture("12345.4", 0), "authorization_id"),
    ("capture amount negative", cc.Capture(f"{CARD}.4", -1), "amount_minor"),
    ("void bad authorization_id", cc.Void(f"{CARD}.4.1"), "authorization_id"),
    ("refund bad authorization_id", cc.Refund("", 1), "authorization_id"),
    ("refund amount 0", cc.Refund(f"{CARD}.4", 0), "amount_minor"),
    ("refund amount negative", cc.Refund(f"{CARD}.4", -100), "amount_minor"),
    ("reverse empty original", cc.Reverse(""), "original_request_id"),
    ("reverse original with a space", cc.Reverse("req 1"), "original_request_id"),
    ("reverse original too long", cc.Reverse("r" * 65), "original_request_id"),
    ("get card bad Luhn", cc.GetCard(BAD_LUHN), "card_number"),
    ("get balance bad Luhn", cc.GetBalance(BAD_LUHN), "card_number"),
]


@pytest.mark.parametrize(("description", "command", "field"), INVALID_COMMANDS,
                         ids=[r[0] for r in INVALID_COMMANDS])
def test_invalid_commands_name_the_field(description: str, command: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        command.validate()  # type: ignore[attr-defined]
    assert info.value.field == field, description
    assert str(info.value).startswith(f"{field}: ")


# ------------------------------------------------------------------------------ access

ADMIN = Principal(Role.ADMIN)
AUDITOR = Principal(Role.AUDITOR)
FINANCE = Principal(Role.FINANCE)
NOBODY = Principal(Role.ROLE_UNSPECIFIED)
PM1 = Principal(Role.PARTNER_MANAGER, "P1")
PM2 = Principal(Role.PARTNER_MANAGER, "P2")
SM1 = Principal(Role.STORE_MANAGER, "P1", "S1")  # S1, S2 belong to P1
SM2 = Principal(Role.STORE_MANAGER, "P1", "S2")
SM3 = Principal(Role.STORE_MANAGER, "P2", "S3")  # S3 belongs to P2
TERM1 = Principal(Role.TERMINAL, "P1", "S1", "T1")
TERM2 = Principal(Role.TERMINAL, "P1", "S2", "T2")
TERM3 = Principal(Role.TERMINAL, "P2", "S3", "T3")
GW1 = Principal(Role.GATEWAY, "P1", "S1")
GW3 = Principal(Role.GATEWAY, "P2", "S3")

EVERYONE = {
    "ADMIN": ADMIN, "AUDITOR": AUDITOR, "FINANCE": FINANCE, "UNSPECIFIED": NOBODY,
    "PM1": PM1, "PM2": PM2, "SM1": SM1, "SM2": SM2, "SM3": SM3,
    "TERM1": TERM1, "TERM2": TERM2, "TERM3": TERM3, "GW1": GW1, "GW3": GW3,
}

Check = Callable[[Principal], "str | None"]

# check name -> (the check; the principals allowed). Everyone else in EVERYONE is denied.
# Card checks are about a card issued by P1; follow-ups about a hold made at store S1.
ACCESS_TABLE: dict[str, tuple[Check, set[str]]] = {
    "register partner (admin only)": (
        lambda p: access.admin_only(p, "register partners"), {"ADMIN"}),
    "register store of P1": (
        lambda p: access.admin_partner_scope(p, "P1", "register stores"), {"ADMIN", "PM1"}),
    "register terminal of P2": (
        lambda p: access.admin_partner_scope(p, "P2", "register terminals"), {"ADMIN", "PM2"}),
    "create ADMIN credential": (
        lambda p: access.create_credential(p, ADMIN), {"ADMIN"}),
    "create AUDITOR credential": (
        lambda p: access.create_credential(p, AUDITOR), {"ADMIN"}),
    "create FINANCE credential": (
        lambda p: access.create_credential(p, FINANCE), {"ADMIN"}),
    "create P1 PARTNER_MANAGER credential": (
        lambda p: access.create_credential(p, PM1), {"ADMIN", "PM1"}),
    "create P1 TERMINAL credential": (
        lambda p: access.create_credential(p, TERM1), {"ADMIN", "PM1"}),
    "create P2 GATEWAY credential": (
        lambda p: access.create_credential(p, GW3), {"ADMIN", "PM2"}),
    "create P1 STORE_MANAGER credential": (
        lambda p: access.create_credential(p, SM1), {"ADMIN", "PM1"}),
    "issue card from S1 (P1)": (
        lambda p: access.issue_card(p, "S1", "P1"), {"ADMIN", "PM1", "SM1", "GW1"}),
    "issue card from S3 (P2)": (
        lambda p: access.issue_card(p, "S3", "P2"), {"ADMIN", "PM2", "SM3", "GW3"}),
    "manage card of P1": (
        lambda p: access.manage_card(p, "P1", "block"), {"ADMIN", "PM1", "SM1", "SM2"}),
    "load card of P1": (
        lambda p: access.load_value(p, "P1"),
        {"ADMIN", "PM1", "SM1", "SM2", "TERM1", "TERM2", "GW1"}),
    "read card of P1": (
        lambda p: access.read_card(p, "P1"),
        {"ADMIN", "AUDITOR", "FINANCE", "PM1", "SM1", "SM2"}),
    "balance of card of P1": (
        lambda p: access.get_balance(p, "P1"),
        {"ADMIN", "AUDITOR", "FINANCE", "PM1", "SM1", "SM2", "TERM1", "TERM2", "TERM3", "GW1",
         "GW3"}),
    "authorize": (
        access.authorize, {"ADMIN", "TERM1", "TERM2", "TERM3", "GW1", "GW3"}),
    "capture hold made at S1": (
        lambda p: access.follow_up(p, "S1", "capture"), {"ADMIN", "TERM1", "GW1"}),
    "refund hold made at S3": (
        lambda p: access.follow_up(p, "S3", "refund"), {"ADMIN", "TERM3", "GW3"}),
    "reverse": (
        access.reverse, {"ADMIN", "TERM1", "TERM2", "TERM3", "GW1", "GW3"}),
}

ACCESS_ROWS = [
    (check_name, principal_name, principal_name in allowed)
    for check_name, (_, allowed) in ACCESS_TABLE.items()
    for principal_name in EVERYONE
]


def test_access_table_covers_every_role() -> None:
    assert {p.role for p in EVERYONE.values()} == set(Role)
    for _, allowed in ACCESS_TABLE.values():
        assert allowed <= set(EVERYONE)


@pytest.mark.parametrize(("check_name", "principal_name", "allowed"), ACCESS_ROWS,
                         ids=[f"{c}-{p}-{'allowed' if a else 'denied'}"
                              for c, p, a in ACCESS_ROWS])
def test_access(check_name: str, principal_name: str, allowed: bool) -> None:
    check, _ = ACCESS_TABLE[check_name]
    outcome = check(EVERYONE[principal_name])
    if allowed:
        assert outcome is None
    else:
        assert isinstance(outcome, str) and outcome, "a denial says why"


def test_denials_name_the_role_or_scope() -> None:
    assert access.authorize(AUDITOR) == "role AUDITOR may not authorize payments"
    assert "'P2'" in (access.admin_partner_scope(PM1, "P2", "register stores") or "")
    message = access.follow_up(TERM2, "S1", "capture") or ""
    assert "'S2'" in message and "'S1'" in message
