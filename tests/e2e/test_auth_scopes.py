"""Who may call what, over real gRPC: a matrix of roles x RPCs (allowed vs PERMISSION_DENIED,
nothing written when denied), and UNAUTHENTICATED for a missing, garbage or revoked token.

Scope rules (from the issue): ADMIN everything; AUDITOR and FINANCE every read (GetCard,
GetBalance, ListMovements), no writes; PARTNER_MANAGER(p) RegisterStore, RegisterTerminal,
CreateCredential, RevokeCredential inside p only (no ADMIN/AUDITOR/FINANCE credentials) and
all CardService operations on cards issued by p; STORE_MANAGER(p, s) IssueCard from s,
lifecycle, LoadValue and reads for cards issued by p; TERMINAL(p, s, t) and GATEWAY(p, s)
Authorize and GetBalance on any card, Capture/Void/Refund/Reverse only for operations made at
s, LoadValue only on cards issued by p, no AdminService. Anything else: PERMISSION_DENIED.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from grpc_api.generated import pos_pb2 as pb
from tests.support.alliance import Alliance, card_number
from tests.support.rpc import (
    R,
    Server,
    authorize,
    balance,
    batch_status,
    call,
    db_state,
    issue,
    metadata,
    rid,
    status_of,
)

# On SQLite; the tests marked backends("sqlite", "postgres") are the end-to-end smoke run on
# PostgreSQL (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

ROLES = ["admin", "p1_manager", "p2_manager", "s1_manager", "t1", "t3", "t_air", "gw1",
         "auditor", "finance"]
POS = {"t1", "t3", "t_air", "gw1"}
READERS = {"admin", "auditor", "finance"}
ACTING_TERMINAL = {"gw1": "T1"}  # the terminal a gateway names in Batch


@dataclass
class World:
    server: Server
    alliance: Alliance
    seeds: Iterator[int] = field(default_factory=lambda: itertools.count(1000))

    def token(self, name: str) -> str:
        return self.alliance.admin_token if name == "admin" else self.alliance.tokens[name]

    def card(self, partner: str = "P1", store: str = "", *, activate: bool = True,
             load: int = 0, block: bool = False) -> str:
        """A fresh card issued by `partner` (at `store`, by default its first store)."""
        store = store or {"P1": "S1", "P2": "A1"}[partner]
        number = issue(self.server, self.alliance, next(self.seeds), by="admin", store=store,
                       activate=activate, load=load)
        if block:
            reply = call(self.server.cards.BlockCard, pb.CardActionRequest(
                request_id=rid(), card_number=number), self.alliance.admin_token)
            assert reply.result == R.APPROVED
        return number

    def hold(self, by: str = "t1", partner: str = "P1", captured: bool = False) -> str:
        """A fresh authorization made by the terminal `by` (captured if asked)."""
        number = self.card(partner, load=10_000)
        held = authorize(self.server, self.token(by), number, 1_000)
        if captured:
            reply = call(self.server.pos.Capture, pb.CaptureRequest(
                request_id=rid(), authorization_id=held.authorization_id), self.token(by))
            assert reply.result == R.APPROVED
        return held.authorization_id

    def credential(self, principal: pb.Principal) -> str:
        reply = call(self.server.admin.CreateCredential, pb.CreateCredentialRequest(
            request_id=rid(), principal=principal), self.alliance.admin_token)
        assert reply.result == R.APPROVED
        return str(reply.credential_id)


Prepare = Callable[[World], tuple[str, Any]]  # -> ("service.Method", request)


@dataclass(frozen=True)
class Action:
    name: str
    allowed: frozenset[str]
    prepare: Prepare


def act(name: str, allowed: set[str], prepare: Prepare) -> Action:
    return Action(name, frozenset(allowed), prepare)


def _principal(role: int, partner: str = "", store: str = "", terminal: str = "") -> pb.Principal:
    return pb.Principal(role=role, partner_id=partner, store_id=store, terminal_id=terminal)


def _create(principal: pb.Principal) -> Prepare:
    return lambda w: ("admin.CreateCredential", pb.CreateCredentialRequest(
        request_id=rid(), principal=principal, label="new"))


def _revoke(principal: pb.Principal) -> Prepare:
    return lambda w: ("admin.RevokeCredential", pb.RevokeCredentialRequest(
        request_id=rid(), credential_id=w.credential(principal)))


def _lifecycle(rpc: str, partner: str, store: str = "") -> Prepare:
    def prepare(w: World) -> tuple[str, Any]:
        number = w.card(partner, store, activate=rpc != "ActivateCard",
                        block=rpc == "UnblockCard")
        if rpc == "ReplaceCard":
            return "cards.ReplaceCard", pb.ReplaceCardRequest(
                request_id=rid(), card_number=number,
                new_card_number=card_number(next(w.seeds)))
        return f"cards.{rpc}", pb.CardActionRequest(request_id=rid(), card_number=number)
    return prepare


def _issue(store: str) -> Prepare:
    return lambda w: ("cards.IssueCard", pb.IssueCardRequest(
        request_id=rid(), card_number=card_number(next(w.seeds)), card_class="STANDARD",
        currency="USD", issuing_store_id=store))


def _load(partner: str) -> Prepare:
    return lambda w: ("cards.LoadValue", pb.LoadValueRequest(
        request_id=rid(), card_number=w.card(partner), amount_minor=100, currency="USD",
        payment_ref="pay"))


def _read(rpc: str, partner: str, store: str = "") -> Prepare:
    def prepare(w: World) -> tuple[str, Any]:
        number = w.card(partner, store, load=500)
        if rpc == "GetCard":
            return "cards.GetCard", pb.GetCardRequest(card_number=number)
        if rpc == "ListMovements":
            return "cards.ListMovements", pb.ListMovementsRequest(card_number=number)
        return "pos.GetBalance", pb.GetBalanceRequest(card_number=number)
    return prepare


def _authorize(partner: str) -> Prepare:
    return lambda w: ("pos.Authorize", pb.AuthorizeRequest(
        request_id=rid(), card_number=w.card(partner, load=1_000), amount_minor=100,
        currency="USD"))


def _follow_up(rpc: str, by: str, partner: str = "P1") -> Prepare:
    def prepare(w: World) -> tuple[str, Any]:
        if rpc == "Refund":
            return "pos.Refund", pb.RefundRequest(
                request_id=rid(), authorization_id=w.hold(by, partner, captured=True),
                amount_minor=100)
        if rpc == "Void":
            return "pos.Void", pb.VoidRequest(request_id=rid(),
                                              authorization_id=w.hold(by, partner))
        return "pos.Capture", pb.CaptureRequest(request_id=rid(),
                                                authorization_id=w.hold(by, partner))
    return prepare


ADMIN_ONLY = {"admin"}
P1_ADMINS = {"admin", "p1_manager"}
P2_ADMINS = {"admin", "p2_manager"}
P1_CARD_MANAGERS = {"admin", "p1_manager", "s1_manager"}
P2_CARD_MANAGERS = {"admin", "p2_manager"}

ACTIONS: list[Action] = [
    # AdminService
    act("RegisterPartner", ADMIN_ONLY, lambda w: ("admin.RegisterPartner",
        pb.RegisterPartnerRequest(request_id=rid(), partner_id=f"PX{next(w.seeds)}",
                                  name="New", currency="USD"))),
    act("RegisterStore in P1", P1_ADMINS, lambda w: ("admin.RegisterStore",
        pb.RegisterStoreRequest(request_id=rid(), partner_id="P1", store_id=f"SX{next(w.seeds)}",
                                name="New", timezone="Asia/Shanghai"))),
    act("RegisterStore in P2", P2_ADMINS, lambda w: ("admin.RegisterStore",
        pb.RegisterStoreRequest(request_id=rid(), partner_id="P2", store_id=f"SX{next(w.seeds)}",
                                name="New", timezone="Europe/Paris"))),
    act("RegisterTerminal in S1", P1_ADMINS, lambda w: ("admin.RegisterTerminal",
        pb.RegisterTerminalRequest(request_id=rid(), store_id="S1",
                                   terminal_id=f"TX{next(w.seeds)}"))),
    act("RegisterTerminal in A1", P2_ADMINS, lambda w: ("admin.RegisterTerminal",
        pb.RegisterTerminalRequest(request_id=rid(), store_id="A1",
                                   terminal_id=f"TX{next(w.seeds)}"))),
    act("CreateCredential TERMINAL of P1", P1_ADMINS,
        _create(_principal(pb.TERMINAL, "P1", "S1", "T1"))),
    act("CreateCredential GATEWAY of P1", P1_ADMINS, _create(_principal(pb.GATEWAY, "P1", "S2"))),
    act("CreateCredential STORE_MANAGER of P1", P1_ADMINS,
        _create(_principal(pb.STORE_MANAGER, "P1", "S2"))),
    act("CreateCredential PARTNER_MANAGER of P1", P1_ADMINS,
        _create(_principal(pb.PARTNER_MANAGER, "P1"))),
    act("CreateCredential STORE_MANAGER of P2", P2_ADMINS,
        _create(_principal(pb.STORE_MANAGER, "P2", "A1"))),
    act("CreateCredential ADMIN", ADMIN_ONLY, _create(_principal(pb.ADMIN))),
    act("CreateCredential AUDITOR", ADMIN_ONLY, _create(_principal(pb.AUDITOR))),
    act("CreateCredential FINANCE", ADMIN_ONLY, _create(_principal(pb.FINANCE))),
    act("RevokeCredential TERMINAL of P1", P1_ADMINS,
        _revoke(_principal(pb.TERMINAL, "P1", "S1", "T2"))),
    act("RevokeCredential PARTNER_MANAGER of P1", P1_ADMINS,
        _revoke(_principal(pb.PARTNER_MANAGER, "P1"))),
    act("RevokeCredential TERMINAL of P2", P2_ADMINS,
        _revoke(_principal(pb.TERMINAL, "P2", "A1", "TA1"))),
    act("RevokeCredential AUDITOR", ADMIN_ONLY, _revoke(_principal(pb.AUDITOR))),
    act("RevokeCredential FINANCE", ADMIN_ONLY, _revoke(_principal(pb.FINANCE))),
    act("RevokeCredential ADMIN", ADMIN_ONLY, _revoke(_principal(pb.ADMIN))),
    act("DefineCardClass", ADMIN_ONLY, lambda w: ("admin.DefineCardClass",
        pb.DefineCardClassRequest(request_id=rid(), card_class="GOLD", max_balance_major=500,
                                  hold_ttl_seconds=3_600))),
    # CardService
    act("IssueCard at S1", P1_CARD_MANAGERS | {"gw1"}, _issue("S1")),  # its store's gateway
    act("IssueCard at S2", P1_ADMINS, _issue("S2")),
    act("IssueCard at A1", P2_ADMINS, _issue("A1")),
    *[act(f"{rpc} on a P1 card", P1_CARD_MANAGERS, _lifecycle(rpc, "P1"))
      for rpc in ("ActivateCard", "BlockCard", "UnblockCard", "CloseCard", "ReplaceCard")],
    *[act(f"{rpc} on a P1 card of S2", P1_CARD_MANAGERS, _lifecycle(rpc, "P1", "S2"))
      for rpc in ("BlockCard", "ReplaceCard")],
    *[act(f"{rpc} on a P2 card", P2_CARD_MANAGERS, _lifecycle(rpc, "P2"))
      for rpc in ("ActivateCard", "BlockCard", "UnblockCard", "CloseCard", "ReplaceCard")],
    act("LoadValue on a P1 card", P1_CARD_MANAGERS | {"t1", "t3", "gw1"}, _load("P1")),
    act("LoadValue on a P2 card", P2_CARD_MANAGERS | {"t_air"}, _load("P2")),
    act("GetCard of a P1 card", READERS | P1_CARD_MANAGERS, _read("GetCard", "P1")),
    act("GetCard of a P1 card of S2", READERS | P1_CARD_MANAGERS, _read("GetCard", "P1", "S2")),
    act("GetCard of a P2 card", READERS | P2_CARD_MANAGERS, _read("GetCard", "P2")),
    act("ListMovements of a P1 card", READERS | P1_CARD_MANAGERS,
        _read("ListMovements", "P1")),
    act("ListMovements of a P2 card", READERS | P2_CARD_MANAGERS,
        _read("ListMovements", "P2")),
    # PosService
    act("Authorize on a P1 card", {"admin"} | POS, _authorize("P1")),
    act("Authorize on a P2 card", {"admin"} | POS, _authorize("P2")),
    act("GetBalance of a P1 card", READERS | P1_CARD_MANAGERS | POS, _read("GetBalance", "P1")),
    act("GetBalance of a P2 card", READERS | P2_CARD_MANAGERS | POS, _read("GetBalance", "P2")),
    act("Capture of a hold made at S1", {"admin", "t1", "gw1"}, _follow_up("Capture", "t1")),
    act("Capture of a hold made at S1 on a P2 card", {"admin", "t1", "gw1"},
        _follow_up("Capture", "t1", "P2")),
    act("Capture of a hold made at S2", {"admin", "t3"}, _follow_up("Capture", "t3")),
    act("Capture of a hold made at A1", {"admin", "t_air"}, _follow_up("Capture", "t_air")),
    act("Void of a hold made at S1", {"admin", "t1", "gw1"}, _follow_up("Void", "t1")),
    act("Void of a hold made at A1", {"admin", "t_air"}, _follow_up("Void", "t_air")),
    act("Refund of a capture made at S1", {"admin", "t1", "gw1"}, _follow_up("Refund", "t1")),
    act("Refund of a capture made at S2", {"admin", "t3"}, _follow_up("Refund", "t3")),
    act("Reverse of an unknown request", {"admin"} | POS, lambda w: ("pos.Reverse",
        pb.ReverseRequest(request_id=rid(), original_request_id=rid("never-seen")))),
]


def _method(server: Server, path: str) -> Any:
    service, method = path.split(".")
    return getattr(getattr(server, service), method)


def _approved(reply: Any) -> bool:
    if isinstance(reply, pb.ListMovementsReply):
        return len(reply.movements) > 0
    return bool(reply.result == R.APPROVED)


@pytest.fixture
def world(server: Server, alliance: Alliance) -> World:
    return World(server, alliance)


@pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
def test_scope_matrix(world: World, action: Action) -> None:
    wrong: list[str] = []
    for role in ROLES:
        path, request = action.prepare(world)
        before = db_state(world.server.ledger)
        method = _method(world.server, path)
        failed = status_of(method, request, world.token(role))
        if role in action.allowed:
            if failed is not None:
                wrong.append(f"{role}: expected allowed, got {failed.code.name} {failed.details}")
            else:
                reply = call(method, request, world.token(role))  # a replay: same answer
                if not _approved(reply):
                    wrong.append(f"{role}: allowed but answered {str(reply).strip()!r:.200}")
        else:
            if failed is None or failed.code != grpc.StatusCode.PERMISSION_DENIED:
                wrong.append(f"{role}: expected PERMISSION_DENIED, got "
                             f"{'OK' if failed is None else failed.code.name}")
            if db_state(world.server.ledger) != before:
                wrong.append(f"{role}: denied but something was written")
    assert not wrong, f"{action.name}:\n" + "\n".join(wrong)


# ------------------------------------------------------------------------------ Batch scopes


def _batch_op(world: World, role: str, op: str) -> pb.PosOperation:
    terminal = ACTING_TERMINAL.get(role, "")
    if op == "authorize":
        return pb.PosOperation(terminal_id=terminal, authorize=pb.AuthorizeRequest(
            request_id=rid(), card_number=world.card("P2", load=1_000), amount_minor=100,
            currency="USD"))
    if op == "capture":
        return pb.PosOperation(terminal_id=terminal, capture=pb.CaptureRequest(
            request_id=rid(), authorization_id=world.hold("t1")))
    if op == "refund":
        return pb.PosOperation(terminal_id=terminal, refund=pb.RefundRequest(
            request_id=rid(), authorization_id=world.hold("t1", captured=True),
            amount_minor=10))
    return pb.PosOperation(terminal_id=terminal, load=pb.LoadValueRequest(
        request_id=rid(), card_number=world.card("P2"), amount_minor=100, currency="USD",
        payment_ref="pay"))


BATCH_ACTIONS = {
    "authorize": {"admin"} | POS,
    "capture": {"admin", "t1", "gw1"},  # holds made at S1
    "refund": {"admin", "t1", "gw1"},
    "load": {"admin", "t_air"},  # a P2 card: P2's roles (managers are not POS callers)
}


@pytest.mark.parametrize("op", BATCH_ACTIONS)
def test_batch_scope_matrix(world: World, op: str) -> None:
    wrong: list[str] = []
    for role in ROLES:
        if op == "load" and role == "p2_manager":
            continue  # a manager's load through Batch: not specified either way
        operation = _batch_op(world, role, op)
        before = db_state(world.server.ledger)
        replies, status = batch_status(world.server, world.token(role),
                                       pb.BatchRequest(operations=[operation]))
        if status is not None:
            wrong.append(f"{role}: the stream failed with {status}")
            continue
        (reply,) = replies[0].replies
        if role in BATCH_ACTIONS[op]:
            if reply.error or reply.reply.result != R.APPROVED:
                wrong.append(f"{role}: expected approved, got {str(reply).strip()!r:.200}")
        else:
            if not reply.error.startswith("PERMISSION_DENIED"):
                wrong.append(f"{role}: expected a PERMISSION_DENIED error, got "
                             f"{str(reply).strip()!r:.200}")
            if db_state(world.server.ledger) != before:
                wrong.append(f"{role}: denied but something was written")
    assert not wrong, "\n".join(wrong)


def test_a_gateway_acts_only_for_terminals_of_its_store(world: World) -> None:
    number = world.card(load=10_000)
    ops = [pb.PosOperation(terminal_id=terminal, authorize=pb.AuthorizeRequest(
        request_id=rid(), card_number=number, amount_minor=100, currency="USD"))
        for terminal in ("T1", "T2", "T3", "TA1", "T404")]
    before = db_state(world.server.ledger)
    replies, status = batch_status(world.server, world.token("gw1"),
                                   pb.BatchRequest(operations=ops))
    assert status is None
    t1, t2, *others = replies[0].replies
    assert t1.reply.result == R.APPROVED and t2.reply.result == R.APPROVED
    for reply in others:
        assert reply.error.startswith("PERMISSION_DENIED"), reply
    assert db_state(world.server.ledger).request_keys == before.request_keys + 2


def test_a_terminal_and_a_gateway_acting_for_it_share_a_key_space(world: World) -> None:
    number = world.card(load=10_000)
    original = authorize(world.server, world.token("t1"), number, 100, "shared-1")

    def op(terminal: str) -> pb.PosOperation:
        return pb.PosOperation(terminal_id=terminal, authorize=pb.AuthorizeRequest(
            request_id="shared-1", card_number=number, amount_minor=100, currency="USD"))

    replies, status = batch_status(world.server, world.token("gw1"),
                                   pb.BatchRequest(operations=[op("T1"), op("T2")]))
    assert status is None
    as_t1, as_t2 = replies[0].replies
    assert as_t1.reply.replayed and as_t1.reply.authorization_id == original.authorization_id
    assert not as_t2.reply.replayed and as_t2.reply.authorization_id != original.authorization_id
    # other roles' key spaces are their credentials: no collision with the terminal's
    again = authorize(world.server, world.token("admin"), number, 100, "shared-1")
    assert not again.replayed
    assert balance(world.server, world.alliance, number).held_minor == 300


def test_a_gateway_cannot_reverse_a_hold_made_at_another_store(world: World) -> None:
    """Unary PosService calls by two gateways: the airline's gateway (P2, A1) names the
    request id of a hold gw1 made at S1; the hold must stay (Reverse is for operations made at
    the caller's store) and the reply must not be gw1's reply. (Regression: unary calls by
    every gateway once shared the key space 't:'.)"""
    gw_air = call(world.server.admin.CreateCredential, pb.CreateCredentialRequest(
        request_id=rid(), principal=_principal(pb.GATEWAY, "P2", "A1")),
        world.alliance.admin_token).token
    number = world.card(load=10_000)
    held = authorize(world.server, world.token("gw1"), number, 1_000, "gw-req-1")
    reversed_ = call(world.server.pos.Reverse, pb.ReverseRequest(
        request_id=rid(), original_request_id="gw-req-1"), gw_air)
    assert reversed_.authorization_id != held.authorization_id
    assert balance(world.server, world.alliance, number).held_minor == 1_000
    replay = call(world.server.pos.Authorize, pb.AuthorizeRequest(
        request_id="gw-req-1", card_number=number, amount_minor=1_000, currency="USD"), gw_air)
    assert not replay.replayed and replay.authorization_id != held.authorization_id


# ------------------------------------------------------------------------------ UNAUTHENTICATED


def _every_unary_rpc(world: World) -> list[tuple[str, Any]]:
    """A valid request for every unary RPC, aimed at state the call could change."""
    number = world.card(load=10_000)
    auth = world.hold("t1")
    return [
        ("admin.RegisterPartner", pb.RegisterPartnerRequest(
            request_id=rid(), partner_id="PZ", name="Z", currency="USD")),
        ("admin.RegisterStore", pb.RegisterStoreRequest(
            request_id=rid(), partner_id="P1", store_id="SZ", name="Z", timezone="UTC")),
        ("admin.RegisterTerminal", pb.RegisterTerminalRequest(
            request_id=rid(), store_id="S1", terminal_id="TZ")),
        ("admin.CreateCredential", pb.CreateCredentialRequest(
            request_id=rid(), principal=_principal(pb.AUDITOR))),
        ("admin.RevokeCredential", pb.RevokeCredentialRequest(
            request_id=rid(), credential_id=world.alliance.credentials["t2"])),
        ("admin.DefineCardClass", pb.DefineCardClassRequest(
            request_id=rid(), card_class="Z", max_balance_major=5, hold_ttl_seconds=600)),
        ("cards.IssueCard", pb.IssueCardRequest(
            request_id=rid(), card_number=card_number(next(world.seeds)), card_class="STANDARD",
            currency="USD", issuing_store_id="S1")),
        *[(f"cards.{rpc}", pb.CardActionRequest(request_id=rid(), card_number=number))
          for rpc in ("ActivateCard", "BlockCard", "UnblockCard", "CloseCard")],
        ("cards.ReplaceCard", pb.ReplaceCardRequest(request_id=rid(), card_number=number)),
        ("cards.LoadValue", pb.LoadValueRequest(
            request_id=rid(), card_number=number, amount_minor=5, currency="USD",
            payment_ref="p")),
        ("cards.GetCard", pb.GetCardRequest(card_number=number)),
        ("cards.ListMovements", pb.ListMovementsRequest(card_number=number)),
        ("pos.Authorize", pb.AuthorizeRequest(
            request_id=rid(), card_number=number, amount_minor=5, currency="USD")),
        ("pos.Capture", pb.CaptureRequest(request_id=rid(), authorization_id=auth)),
        ("pos.Void", pb.VoidRequest(request_id=rid(), authorization_id=auth)),
        ("pos.Refund", pb.RefundRequest(request_id=rid(), authorization_id=auth,
                                        amount_minor=1)),
        ("pos.Reverse", pb.ReverseRequest(request_id=rid(), original_request_id="x")),
        ("pos.GetBalance", pb.GetBalanceRequest(card_number=number)),
    ]


def _bad_credentials(world: World) -> dict[str, tuple[tuple[str, str], ...]]:
    real = world.alliance.tokens["t1"]
    credential_id = world.alliance.credentials["t1"]
    return {
        "no metadata": (),
        "garbage token": metadata("garbage"),
        "empty bearer": (("authorization", "Bearer "),),
        "bearer without a token": (("authorization", "Bearer"),),
        "another scheme": (("authorization", f"Basic {real}"),),
        "token without the scheme": (("authorization", real),),
        "right id, wrong secret": metadata(f"llk_{credential_id}_{'A' * 43}"),
        "truncated token": metadata(real[:-1]),
        "unknown credential": metadata("llk_c0000000000000000_" + "A" * 43),
    }


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_every_rpc_without_a_valid_token_is_unauthenticated(world: World) -> None:
    wrong: list[str] = []
    for how, md in _bad_credentials(world).items():
        for path, request in _every_unary_rpc(world):
            before = db_state(world.server.ledger)
            try:
                _method(world.server, path)(request, metadata=md, timeout=30)
                wrong.append(f"{how} {path}: OK")
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                    wrong.append(f"{how} {path}: {error.code().name}")
            if db_state(world.server.ledger) != before:
                wrong.append(f"{how} {path}: something was written")
        op = _batch_op(world, "t1", "authorize")
        before = db_state(world.server.ledger)
        try:
            list(world.server.pos.Batch(iter([pb.BatchRequest(operations=[op])]), metadata=md,
                                        timeout=30))
            wrong.append(f"{how} Batch: OK")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                wrong.append(f"{how} Batch: {error.code().name}")
        if db_state(world.server.ledger) != before:
            wrong.append(f"{how} Batch: something was written")
    assert not wrong, "\n".join(wrong)


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_revocation_takes_effect_on_the_very_next_call(world: World) -> None:
    server, admin = world.server, world.alliance.admin_token
    created = call(server.admin.CreateCredential, pb.CreateCredentialRequest(
        request_id=rid(), principal=_principal(pb.TERMINAL, "P1", "S1", "T2")), admin)
    token = created.token
    number = world.card(load=10_000)
    authorize(server, token, number, 100)
    revoked = call(server.admin.RevokeCredential, pb.RevokeCredentialRequest(
        request_id=rid(), credential_id=created.credential_id), admin)
    assert revoked.result == R.APPROVED
    before = db_state(server.ledger)
    refused = status_of(server.pos.Authorize, pb.AuthorizeRequest(
        request_id=rid(), card_number=number, amount_minor=100, currency="USD"), token)
    assert refused is not None and refused.code == grpc.StatusCode.UNAUTHENTICATED
    assert db_state(server.ledger) == before
    wrong = []
    for path, request in _every_unary_rpc(world):
        failed = status_of(_method(server, path), request, token)
        if failed is None or failed.code != grpc.StatusCode.UNAUTHENTICATED:
            wrong.append(f"{path}: {failed}")
    replies, status = batch_status(server, token, pb.BatchRequest(
        operations=[_batch_op(world, "t1", "authorize")]))
    if status is None or status.code != grpc.StatusCode.UNAUTHENTICATED:
        wrong.append(f"Batch: {status} {replies}")
    assert not wrong, "\n".join(wrong)
    assert balance(server, world.alliance, number).held_minor == 100


def test_revocation_by_a_partner_manager_takes_effect_at_once(world: World) -> None:
    server = world.server
    manager = world.token("p1_manager")
    created = call(server.admin.CreateCredential, pb.CreateCredentialRequest(
        request_id=rid(), principal=_principal(pb.GATEWAY, "P1", "S2")), manager)
    assert created.result == R.APPROVED
    number = world.card(load=1_000)
    assert call(server.pos.GetBalance, pb.GetBalanceRequest(card_number=number),
                created.token).result == R.APPROVED
    assert call(server.admin.RevokeCredential, pb.RevokeCredentialRequest(
        request_id=rid(), credential_id=created.credential_id), manager).result == R.APPROVED
    failed = status_of(server.pos.GetBalance, pb.GetBalanceRequest(card_number=number),
                       created.token)
    assert failed is not None and failed.code == grpc.StatusCode.UNAUTHENTICATED


def test_revocation_reaches_an_open_batch_stream(world: World) -> None:
    """Messages sent on a Batch stream after its credential was revoked are refused
    (UNAUTHENTICATED as the stream's status or as each operation's error) and write nothing."""
    server, admin = world.server, world.alliance.admin_token
    created = call(server.admin.CreateCredential, pb.CreateCredentialRequest(
        request_id=rid(), principal=_principal(pb.GATEWAY, "P1", "S1")), admin)
    number = world.card(load=10_000)

    def op() -> pb.PosOperation:
        return pb.PosOperation(terminal_id="T1", authorize=pb.AuthorizeRequest(
            request_id=rid(), card_number=number, amount_minor=100, currency="USD"))

    outbox: queue.Queue[pb.BatchRequest | None] = queue.Queue()
    replies = server.pos.Batch(iter(outbox.get, None), metadata=metadata(created.token),
                               timeout=60)
    outbox.put(pb.BatchRequest(operations=[op(), op()]))
    first = next(replies)
    assert [r.reply.result for r in first.replies] == [R.APPROVED, R.APPROVED]
    call(server.admin.RevokeCredential, pb.RevokeCredentialRequest(
        request_id=rid(), credential_id=created.credential_id), admin)
    before = db_state(server.ledger)
    outbox.put(pb.BatchRequest(operations=[op(), op()]))
    outbox.put(None)
    try:
        rest = list(replies)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    else:
        (second,) = rest
        assert all(r.error.startswith("UNAUTHENTICATED") for r in second.replies), second
    assert db_state(server.ledger) == before
    assert balance(server, world.alliance, number).held_minor == 200
