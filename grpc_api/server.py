"""The gRPC services. Servicers only translate: proto -> command -> engine -> reply.

Every RPC authenticates the bearer token, validates the input (INVALID_ARGUMENT naming the
proto field, nothing written), submits the command to the ledger's writer and awaits the reply,
which arrives only after the events are durable.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from domain import access
from domain.cards import commands as cc
from domain.common import (
    InvalidInput,
    Principal,
    Role,
    check_request_id,
    parse_time_us,
)
from domain.coupons.model import IssueCoupon, ListCoupons
from domain.purchases.commands import SimulatePurchase
from domain.registry import commands as rc
from domain.registry.decide import Credential
from domain.rules.commands import GetRuleSet, ListRuleSets, PublishRuleSet
from grpc_api import translate
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from ledger import limits
from ledger.codec import CardView, Outcome
from ledger.engine import Failure, Ledger, Request, Sync
from ledger.history import read_as_of
from ledger.refusals import Refusal, StillWriting, internal_failure
from ledger.store import Unavailable
from projections.movements import Movement, Refused, list_movements, movements_runner

log = logging.getLogger("grpc_api.server")

# The ledger's refusals as gRPC statuses (the contract's meanings: RESOURCE_EXHAUSTED is
# overload, UNAVAILABLE a database outage; INTERNAL a bug, with a logged reference).
STATUS = {
    Refusal.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    Refusal.DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Refusal.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Refusal.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Refusal.NOT_CONFIGURED: grpc.StatusCode.FAILED_PRECONDITION,
    Refusal.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Refusal.DEADLINE_PASSED: grpc.StatusCode.DEADLINE_EXCEEDED,
    Refusal.DATABASE_DOWN: grpc.StatusCode.UNAVAILABLE,
    Refusal.BUG: grpc.StatusCode.INTERNAL,
}

# A status message travels in a trailer whose size gRPC limits; past it the client sees
# RESOURCE_EXHAUSTED (which the contract keeps for overload). Every message is cut here, as a
# last guard behind the field checks that already keep echoed values short.
STATUS_MESSAGE_MAX = 1_000


def _status_message(message: str) -> str:
    return message if len(message) <= STATUS_MESSAGE_MAX else (
        message[:STATUS_MESSAGE_MAX - 3] + "...")

SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["AdminService"].full_name,
    pb.DESCRIPTOR.services_by_name["CardService"].full_name,
    pb.DESCRIPTOR.services_by_name["PosService"].full_name,
    pb.DESCRIPTOR.services_by_name["ProgramService"].full_name,
    pb.DESCRIPTOR.services_by_name["SettlementService"].full_name,
    "loyalty.v1.AgreementService",
    "loyalty.v1.ReconciliationService",  # grpc_api/reconcile.py (issue 9)
    "loyalty.v1.ExchangeService",
    "loyalty.v1.FinanceService",  # grpc_api/finance.py (proto/loyalty/v1/finance.proto)
    "loyalty.v1.InsightsService",  # grpc_api/insights.py (proto/loyalty/v1/insights.proto)
    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
    reflection.SERVICE_NAME,
)

# Server settings shared with the benchmark's do-nothing server, so (a) measures the same thing.
SERVER_OPTIONS = [
    ("grpc.so_reuseport", 1),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.max_concurrent_streams", 1000),
]


class Rejected(Exception):
    """An RPC answered with a gRPC status instead of a reply message."""

    def __init__(self, code: Refusal, message: str) -> None:
        super().__init__(message)
        self.code = code


class Gateway:
    """The bridge between asyncio handlers and the ledger's writer thread."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # Replies from the writer thread land here; one wake-up of the event loop drains many
        # (a wake-up per reply costs a syscall each and halves Batch throughput).
        self._inbox: collections.deque[tuple[asyncio.Future[Any], Any]] = collections.deque()
        self._drain_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.calls_started = 0  # every RPC authenticates first: counted there (see shutdown)
        # The movements read model: caught up by each ListMovements; followed between calls
        # by a projector process (`loyalty-ledger project`, which `serve` starts), not here.
        self.movements = movements_runner(ledger.store)

    def _deliver(self, future: asyncio.Future[Any], reply: Any) -> None:
        """Called on the writer thread."""
        self._inbox.append((future, reply))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        while self._inbox:
            future, reply = self._inbox.popleft()
            if not future.done():
                future.set_result(reply)

    async def authenticate(self, context: grpc.aio.ServicerContext) -> Credential:
        self.calls_started += 1
        token = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                token = value[len("Bearer "):].strip()
        credential = self.ledger.authenticate(token) if token else None
        if credential is None and token.startswith("llk_"):
            # Perhaps created through another server process a moment ago: follow the log.
            await self.sync()
            credential = self.ledger.authenticate(token)
        if credential is None:
            raise Rejected(Refusal.UNAUTHENTICATED, "missing, unknown or revoked bearer token")
        return credential

    async def sync(self) -> None:
        """Return once the writer has followed the log (revocations and new credentials from
        other processes are then known here)."""
        reply = await self.submit(None, Sync(), "", math.inf)
        if isinstance(reply, Failure):
            raise Rejected(reply.code, reply.message)

    async def execute(self, credential: Credential, command: Any, request_id: str,
                      deadline: float, terminal_id: str = "") -> Outcome:
        reply = await self.submit(credential, command, request_id, deadline, terminal_id)
        if isinstance(reply, Failure):
            raise Rejected(reply.code, reply.message)
        return reply

    def submit(self, credential: Credential | None, command: Any, request_id: str,
               deadline: float, terminal_id: str = "") -> asyncio.Future[Outcome | Failure]:
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[Outcome | Failure] = loop.create_future()
        deliver = self._deliver

        def done(reply: Outcome | Failure) -> None:
            deliver(future, reply)

        credential_id = credential.credential_id if credential is not None else ""
        self.ledger.submit(Request(credential_id, command, done, "", request_id, terminal_id,
                                   deadline))
        return future


    def submit_all(self, requests: list[Request]) -> asyncio.Future[list[Outcome | Failure]]:
        """Submit many requests; one future for all their replies, in order. Replies come
        from the decider and the committer threads, hence the lock around the count."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[list[Outcome | Failure]] = loop.create_future()
        replies: list[Any] = [None] * len(requests)
        remaining = [len(requests)]
        lock = threading.Lock()
        deliver = self._deliver

        def answer(index: int) -> Callable[[Outcome | Failure], None]:
            def done(reply: Outcome | Failure) -> None:
                replies[index] = reply
                with lock:
                    remaining[0] -= 1
                    last = remaining[0] == 0
                if last:
                    deliver(future, replies)
            return done

        for index, request in enumerate(requests):
            request.callback = answer(index)
        self.ledger.submit_all(requests)
        return future


def _deadline(context: grpc.aio.ServicerContext) -> float:
    remaining = context.time_remaining()
    return math.inf if remaining is None else time.monotonic() + remaining


def _validated(command: Any, request_id: str | None) -> Any:
    if request_id is not None:
        check_request_id(request_id)
    command.validate()
    return command


def rpc(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate, translate errors to gRPC statuses, and keep handlers free of plumbing."""

    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            credential = await self.gateway.authenticate(context)
            return await handler(self, request, context, credential)
        except InvalidInput as error:
            failure = Failure(Refusal.INVALID_INPUT, str(error))
        except Rejected as error:
            failure = Failure(error.code, str(error))
        except Unavailable as error:
            failure = Failure(Refusal.DATABASE_DOWN, f"database unavailable: {error}")
        except StillWriting as busy:  # a read model waits on the ledger's writes: retry
            failure = Failure(Refusal.OVERLOADED, str(busy))
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception:  # a bug: INTERNAL with a reference, never UNKNOWN with a traceback
            failure = internal_failure(f"RPC {handler.__name__}")
        await context.abort(STATUS[failure.code], _status_message(failure.message))

    wrapper.__name__ = handler.__name__
    return wrapper


def issue_command(message: pb.IssueCardRequest) -> cc.IssueCard:
    """IssueCard, unary or as a Batch operation: one translation, so both are the same
    command (same payload hash, so a retry through the other path replays)."""
    return cc.IssueCard(message.card_number, message.card_class, message.currency,
                        message.customer_ref, message.issuing_store_id)


def card_reply(outcome: Outcome) -> pb.CardReply:
    return pb.CardReply(result=outcome.result, card=card_message(outcome.card),
                        replayed=outcome.replayed)


def card_message(view: CardView | None) -> pb.Card | None:
    if view is None:
        return None
    return pb.Card(card_number=view.card_number, card_class=view.card_class, status=view.status,
                   currency=view.currency, balance_minor=view.balance_minor,
                   held_minor=view.held_minor, available_minor=view.available_minor,
                   issuing_partner_id=view.issuing_partner_id,
                   issuing_store_id=view.issuing_store_id, replaced_by=view.replaced_by,
                   points=view.points, version=view.version, tier=view.tier,
                   purse_points={p.program: p.points for p in view.purses},
                   purse_pending={p.program: p.pending for p in view.purses if p.pending})


def authorize_reply(outcome: Outcome) -> pb.AuthorizeReply:
    return _fill_authorize_reply(pb.AuthorizeReply(), outcome)


def _fill_authorize_reply(reply: pb.AuthorizeReply, outcome: Outcome) -> pb.AuthorizeReply:
    """Set `reply`'s fields in place: a Batch fills the message inside its BatchReply instead
    of building one to be copied in."""
    reply.SetInParent()  # present in its oneof even if every field keeps its default
    reply.result = outcome.result
    reply.authorization_id = outcome.authorization_id
    reply.approved_amount_minor = outcome.approved_amount_minor
    card = outcome.card
    reply.available_minor = card.available_minor if card is not None else 0
    reply.replayed = outcome.replayed
    return reply


def _principal(message: pb.Principal) -> Principal:
    if message.role not in Role._value2member_map_:
        raise InvalidInput("principal.role", f"unknown role {message.role}")
    return Principal(Role(message.role), message.partner_id, message.store_id,
                     message.terminal_id)


class _AdminWrites:
    """What AdminService and ProgramService share: writes answered with an AdminReply."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def _admin(self, request: Any, context: Any, credential: Credential,
                     command: Any) -> pb.AdminReply:
        outcome = await self.gateway.execute(credential, _validated(command, request.request_id),
                                             request.request_id, _deadline(context))
        return pb.AdminReply(result=outcome.result, replayed=outcome.replayed)


class AdminService(_AdminWrites, pb_grpc.AdminServiceServicer):

    @rpc
    async def RegisterPartner(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._admin(request, context, credential, rc.RegisterPartner(
            request.partner_id, request.name, request.currency))

    @rpc
    async def RegisterStore(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._admin(request, context, credential, rc.RegisterStore(
            request.partner_id, request.store_id, request.name, request.timezone))

    @rpc
    async def RegisterTerminal(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._admin(request, context, credential, rc.RegisterTerminal(
            request.store_id, request.terminal_id))

    @rpc
    async def RevokeCredential(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._admin(request, context, credential, rc.RevokeCredential(
            request.credential_id))

    @rpc
    async def DefineCardClass(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._admin(request, context, credential, rc.DefineCardClass(
            request.card_class, request.max_balance_major, request.hold_ttl_seconds))

    @rpc
    async def CreateCredential(self, request: Any, context: Any, credential: Credential) -> Any:
        command = _validated(rc.CreateCredential(_principal(request.principal), request.label),
                             request.request_id)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        return pb.CredentialReply(result=outcome.result, credential_id=outcome.credential_id,
                                  token=outcome.token, replayed=outcome.replayed)


class CardService(pb_grpc.CardServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def _card(self, request: Any, context: Any, credential: Credential,
                    command: Any) -> pb.CardReply:
        request_id = getattr(request, "request_id", None)
        outcome = await self.gateway.execute(credential, _validated(command, request_id),
                                             request_id or "", _deadline(context))
        return card_reply(outcome)

    @rpc
    async def IssueCard(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._card(request, context, credential, issue_command(request))

    @rpc
    async def ActivateCard(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._card(request, context, credential,
                                cc.ActivateCard(request.card_number, request.reason))

    @rpc
    async def BlockCard(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._card(request, context, credential,
                                cc.BlockCard(request.card_number, request.reason))

    @rpc
    async def UnblockCard(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._card(request, context, credential,
                                cc.UnblockCard(request.card_number, request.reason))

    @rpc
    async def CloseCard(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._card(request, context, credential,
                                cc.CloseCard(request.card_number, request.reason))

    @rpc
    async def ReplaceCard(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._card(request, context, credential, cc.ReplaceCard(
            request.card_number, request.new_card_number, request.reason))

    @rpc
    async def GetCard(self, request: Any, context: Any, credential: Credential) -> Any:
        if not request.as_of:
            return await self._card(request, context, credential,
                                    cc.GetCard(request.card_number))
        cc.GetCard(request.card_number).validate()
        as_of_us = parse_time_us(request.as_of, "as_of", 0)
        principal = await self._fresh(credential)
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, read_as_of, self.gateway.ledger.store,
                                           principal, request.card_number, as_of_us)
        if isinstance(found, str):
            raise Rejected(Refusal.DENIED, found)
        return card_reply(found)

    async def _fresh(self, credential: Credential) -> Principal:
        """The caller's principal once this process has followed the log (a credential
        revoked through another process is refused here too), for reads that bypass the
        writer."""
        await self.gateway.sync()
        fresh = self.gateway.ledger.registry.credentials.get(credential.credential_id)
        if fresh is None or fresh.revoked:
            raise Rejected(Refusal.UNAUTHENTICATED, "missing, unknown or revoked bearer token")
        return credential.principal

    @rpc
    async def LoadValue(self, request: Any, context: Any, credential: Credential) -> Any:
        command = _validated(cc.LoadValue(request.card_number, request.amount_minor,
                                          request.currency, request.payment_ref),
                             request.request_id)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        view = outcome.card
        return pb.ValueReply(result=outcome.result,
                             balance_minor=view.balance_minor if view else 0,
                             available_minor=view.available_minor if view else 0,
                             replayed=outcome.replayed)

    @rpc
    async def ListMovements(self, request: Any, context: Any, credential: Credential) -> Any:
        cc.GetCard(request.card_number).validate()
        # Read straight from the store, not through the writer: follow the log first so a
        # credential revoked through another process is refused here too.
        principal = await self._fresh(credential)
        loop = asyncio.get_running_loop()
        # The read model catches up with the log's end first (what this and every other
        # process committed before the call), so a client sees its own writes.
        found = await loop.run_in_executor(
            None, list_movements, self.gateway.movements, principal,
            request.card_number, request.after_version, request.limit,
            self.gateway.ledger.clock_us())
        if isinstance(found, Refused):
            raise Rejected(Refusal.DENIED, found.message)
        if isinstance(found, Outcome):
            return pb.ListMovementsReply()  # unknown card: no movements
        return pb.ListMovementsReply(movements=[_movement(m) for m in found])


def _movement(m: Movement) -> pb.Movement:
    recorded = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(m.recorded_at_us // 1_000_000))
    return pb.Movement(version=m.version, kind=m.kind, amount_minor=m.amount_minor,
                       balance_minor=m.balance_minor, held_minor=m.held_minor,
                       store_id=m.store_id, terminal_id=m.terminal_id, request_id=m.request_id,
                       recorded_at=f"{recorded}.{m.recorded_at_us % 1_000_000:06d}Z")


def pos_command(name: str, message: Any, approver: str = "") -> Any:
    """The command for one POS operation (`name` is the oneof field or the RPC)."""
    if name == "purchase":
        return translate.purchase(message, approver)
    if name == "purchase_return":
        return translate.return_command(message)
    if name == "authorize":
        return cc.Authorize(message.card_number, message.amount_minor, message.currency,
                            message.allow_partial, message.stan)
    if name == "capture":
        return cc.Capture(message.authorization_id, message.amount_minor)
    if name == "void":
        return cc.Void(message.authorization_id)
    if name == "refund":
        return cc.Refund(message.authorization_id, message.amount_minor)
    if name == "reverse":
        return cc.Reverse(message.original_request_id)
    if name == "issue":
        return issue_command(message)
    assert name == "load"
    return cc.LoadValue(message.card_number, message.amount_minor, message.currency,
                        message.payment_ref)


class PosService(pb_grpc.PosServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def _pos(self, name: str, request: Any, context: Any,
                   credential: Credential) -> pb.AuthorizeReply:
        command = _validated(pos_command(name, request), request.request_id)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        return authorize_reply(outcome)

    @rpc
    async def Authorize(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._pos("authorize", request, context, credential)

    @rpc
    async def Capture(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._pos("capture", request, context, credential)

    @rpc
    async def Void(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._pos("void", request, context, credential)

    @rpc
    async def Refund(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._pos("refund", request, context, credential)

    @rpc
    async def Reverse(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._pos("reverse", request, context, credential)

    @rpc
    async def GetBalance(self, request: Any, context: Any, credential: Credential) -> Any:
        command = _validated(cc.GetBalance(request.card_number), None)
        outcome = await self.gateway.execute(credential, command, "", _deadline(context))
        view = outcome.card
        if view is None:
            return pb.BalanceReply(result=outcome.result)
        return pb.BalanceReply(result=outcome.result, currency=view.currency,
                               balance_minor=view.balance_minor, held_minor=view.held_minor,
                               available_minor=view.available_minor, status=view.status,
                               points=view.points)

    async def _basket(self, credential: Credential, command: Any, request_id: str,
                      context: Any) -> pb.PurchaseReply:
        outcome = await self.gateway.execute(credential, command, request_id,
                                             _deadline(context))
        return translate.purchase_reply(outcome, card_message(outcome.card))

    def _approver(self, message: Any) -> str:
        """The credential id behind a purchase's override token ("" without one)."""
        if not message.override_token:
            return ""
        approver = self.gateway.ledger.authenticate(message.override_token)
        if approver is None:
            raise Rejected(Refusal.DENIED, "override_token: unknown or revoked credential")
        return approver.credential_id

    @rpc
    async def Purchase(self, request: Any, context: Any, credential: Credential) -> Any:
        command = _validated(translate.purchase(request, self._approver(request)),
                             request.request_id)
        return await self._basket(credential, command, request.request_id, context)

    @rpc
    async def SimulatePurchase(self, request: Any, context: Any, credential: Credential) -> Any:
        purchase = translate.purchase(request.purchase, self._approver(request.purchase))
        command = _validated(SimulatePurchase(purchase, request.store_id), None)
        return await self._basket(credential, command, "", context)

    @rpc
    async def Return(self, request: Any, context: Any, credential: Credential) -> Any:
        command = _validated(translate.return_command(request), request.request_id)
        return await self._basket(credential, command, request.request_id, context)

    async def Batch(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            credential = await self.gateway.authenticate(context)
        except Rejected as error:
            await context.abort(STATUS[error.code], _status_message(str(error)))
        try:
            async for reply in self._batch_replies(credential, request_iterator, context):
                yield reply
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception:  # a bug: INTERNAL with a reference, never UNKNOWN
            failure = internal_failure("RPC Batch")
            await context.abort(grpc.StatusCode.INTERNAL, failure.message)

    async def _batch_replies(self, credential: Credential, request_iterator: Any,
                             context: grpc.aio.ServicerContext) -> Any:
        async for message in request_iterator:
            count = len(message.operations)
            if not 1 <= count <= limits.BATCH_OPERATIONS_MAX:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"operations: must hold 1..{limits.BATCH_OPERATIONS_MAX}")
            deadline = _deadline(context)
            refused: dict[int, str] = {}  # operation index -> its error
            requests: list[Request] = []
            terminals = _TerminalsOf(credential.principal, self.gateway.ledger.registry)
            for index, op in enumerate(message.operations):
                checked = self._batch_operation(credential, op, deadline, terminals)
                if isinstance(checked, Request):
                    requests.append(checked)
                else:
                    refused[index] = checked
            outcomes: list[Outcome | Failure] = []
            if requests:
                # One future for the whole message: a wake-up of this task per operation
                # would cost more than deciding it.
                outcomes = await self.gateway.submit_all(requests)
            yield _batch_reply(count, refused, requests, outcomes)

    def _batch_operation(self, credential: Credential, op: pb.PosOperation, deadline: float,
                         terminals: _TerminalsOf) -> Request | str:
        """Validate one operation: the request to submit, or the error that refuses it."""
        name = op.WhichOneof("op")
        try:
            if name is None:
                raise InvalidInput("op", "one of authorize, capture, void, refund, reverse, "
                                   "load, purchase, purchase_return, issue is required")
            terminal_id = terminals.acting(op.terminal_id)
            message = getattr(op, name)
            approver = self._approver(message) if name == "purchase" else ""
            command = _validated(pos_command(name, message, approver), message.request_id)
        except InvalidInput as error:
            return _operation_error(Failure(Refusal.INVALID_INPUT, str(error)))
        except Rejected as error:
            return _operation_error(Failure(error.code, str(error)))
        except Exception:  # a bug in one operation: its neighbours are decided normally
            failure = internal_failure(f"Batch operation {name}")
            return _operation_error(failure)
        return Request(credential.credential_id, command, _ignore, "", message.request_id,
                       terminal_id, deadline)


class _TerminalsOf:
    """The terminal each operation of one Batch message acts for, looked up once per terminal
    id named in the message (a gateway's thousand operations name a few tills). The message is
    checked in one step of the event loop, so the registry's answer cannot change meanwhile."""

    def __init__(self, principal: Principal, registry: Any) -> None:
        self.principal = principal
        self.registry = registry
        self.seen: dict[str, tuple[str, str | None]] = {}

    def _store_of(self, terminal: str) -> str | None:
        found = self.registry.terminals.get(terminal)
        return found.store_id if found is not None else None

    def acting(self, terminal_id: str) -> str:
        answer = self.seen.get(terminal_id)
        if answer is None:
            answer = self.seen[terminal_id] = access.acting_terminal(
                self.principal, terminal_id, self._store_of)
        acting, denial = answer
        if denial is not None:
            raise Rejected(Refusal.DENIED, denial)
        return acting


def _ignore(reply: Outcome | Failure) -> None:
    """Placeholder callback: Gateway.submit_all sets the real one."""


def _operation_error(failure: Failure) -> str:
    """A Batch operation's refusal: "STATUS: message", the status named as gRPC names it."""
    return _status_message(f"{STATUS[failure.code].name}: {failure.message}")


def _batch_reply(count: int, refused: dict[int, str], requests: list[Request],
                 outcomes: list[Outcome | Failure]) -> pb.BatchReply:
    """The reply to one Batch message, in the order of its operations: the refused ones' errors
    and the submitted ones' outcomes. Each operation's reply is filled in place inside the
    BatchReply (a message given to a constructor is copied, and the list of them copied again:
    1.6-1.8x the time of filling in place, benchmarks/bench_codec.py)."""
    batch = pb.BatchReply()
    add = batch.replies.add
    decided = zip(requests, outcomes, strict=True)
    for index in range(count):
        error = refused.get(index)
        if error is not None:
            add(error=error)
        else:
            request, outcome = next(decided)
            _fill_operation_reply(add(), outcome, request.command)
    return batch


def _fill_operation_reply(slot: pb.PosOperationReply, reply: Outcome | Failure,
                          command: Any) -> None:
    if isinstance(reply, Failure):
        slot.error = _operation_error(reply)
    elif isinstance(command, cc.IssueCard):  # also its DUPLICATE_REQUEST_MISMATCH, kind ""
        slot.issue.CopyFrom(card_reply(reply))
    elif reply.kind in ("Purchase", "Return") or reply.purchase is not None:
        slot.purchase.CopyFrom(translate.purchase_reply(reply, card_message(reply.card)))
    else:
        _fill_authorize_reply(slot.reply, reply)


class ProgramService(_AdminWrites, pb_grpc.ProgramServiceServicer):

    @rpc
    async def DefineProgram(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._admin(request, context, credential,
                                 translate.define_program(request))

    @rpc
    async def PublishRuleSet(self, request: Any, context: Any, credential: Credential) -> Any:
        return await self._admin(request, context, credential,
                                 PublishRuleSet(translate.rule_set(request.rule_set)))

    @rpc
    async def GetRuleSet(self, request: Any, context: Any, credential: Credential) -> Any:
        command = _validated(GetRuleSet(request.rule_set_id, request.version), None)
        outcome = await self.gateway.execute(credential, command, "", _deadline(context))
        return pb.RuleSetReply(rule_set=translate.rule_set_message(outcome.rule_sets[0]))

    @rpc
    async def ListRuleSets(self, request: Any, context: Any, credential: Credential) -> Any:
        outcome = await self.gateway.execute(credential,
                                             _validated(ListRuleSets(request.scope), None), "",
                                             _deadline(context))
        return pb.ListRuleSetsReply(
            rule_sets=[translate.rule_set_message(r) for r in outcome.rule_sets])

    @rpc
    async def DefineCouponCampaign(self, request: Any, context: Any,
                                   credential: Credential) -> Any:
        command = translate.define_campaign(request)
        return await self._admin(request, context, credential, command)

    @rpc
    async def IssueCoupon(self, request: Any, context: Any, credential: Credential) -> Any:
        command = _validated(IssueCoupon(request.card_number, request.campaign_id),
                             request.request_id)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        coupon = translate.coupon_message(outcome.coupons[0]) if outcome.coupons else None
        return pb.CouponReply(result=outcome.result, coupon=coupon, replayed=outcome.replayed)

    @rpc
    async def ListCoupons(self, request: Any, context: Any, credential: Credential) -> Any:
        command = _validated(ListCoupons(request.card_number), None)
        outcome = await self.gateway.execute(credential, command, "", _deadline(context))
        return pb.ListCouponsReply(result=outcome.result, coupons=[
            translate.coupon_message(c) for c in outcome.coupons])


# ------------------------------------------------------------------------------ server factory


class Served(NamedTuple):
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    gateway: Gateway


async def create_server(ledger: Ledger, listen: str = "127.0.0.1:0") -> Served:
    """An aio server with the three services, health and reflection. Binds `listen` (port 0
    picks a free port); not started yet."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    gateway = Gateway(ledger)
    pb_grpc.add_AdminServiceServicer_to_server(AdminService(gateway), server)
    pb_grpc.add_CardServiceServicer_to_server(CardService(gateway), server)
    pb_grpc.add_PosServiceServicer_to_server(PosService(gateway), server)
    pb_grpc.add_ProgramServiceServicer_to_server(ProgramService(gateway), server)
    from grpc_api.settlement import SettlementService  # it builds on this module's helpers

    pb_grpc.add_SettlementServiceServicer_to_server(SettlementService(gateway), server)
    from grpc_api.agreements import AgreementService
    from grpc_api.generated import agreements_pb2_grpc

    agreements_pb2_grpc.add_AgreementServiceServicer_to_server(AgreementService(gateway), server)
    from grpc_api.generated import reconcile_pb2_grpc  # issue 9: reconciliation
    from grpc_api.reconcile import ReconciliationService

    reconcile_pb2_grpc.add_ReconciliationServiceServicer_to_server(
        ReconciliationService(gateway), server)
    from grpc_api.exchange import ExchangeService, xpb_grpc

    xpb_grpc.add_ExchangeServiceServicer_to_server(ExchangeService(gateway), server)
    from grpc_api.finance import FinanceService, fpb_grpc  # the finance reports

    fpb_grpc.add_FinanceServiceServicer_to_server(FinanceService(gateway), server)
    from grpc_api.insights import InsightsService, ipb_grpc  # the customer views

    ipb_grpc.add_InsightsServiceServicer_to_server(InsightsService(gateway), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(SERVICE_NAMES, server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    return Served(server, port, health_servicer, gateway)


async def shutdown(served: Served, grace_s: float,
                   quiet_s: float = limits.DRAIN_QUIET_S) -> None:
    """Drain, then stop: report NOT_SERVING, keep taking the calls clients already sent until
    none has arrived for `quiet_s` (gRPC would cancel calls it received but had not yet
    handed to us), then stop accepting and let the calls in progress finish, all within
    `grace_s`. `quiet_s=0` skips the quiet wait: for a caller that knows no client has a call
    on the way (a test whose clients have their replies), the calls in progress still
    finish."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    await served.health.enter_graceful_shutdown()
    seen = -1
    while quiet_s > 0 and served.gateway.calls_started != seen and loop.time() < deadline:
        seen = served.gateway.calls_started
        await asyncio.sleep(quiet_s)
    await served.server.stop(max(deadline - loop.time(), limits.DRAIN_QUIET_S))
    served.gateway.movements.stop()


class ServerThread:
    """A real server on its own event loop thread: for tests, the demo and benchmarks."""

    def __init__(self, ledger: Ledger, listen: str = "127.0.0.1:0") -> None:
        self.ledger = ledger
        self.listen = listen
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grpc-server", daemon=True)
        self._server: grpc.aio.Server | None = None
        self._grace_s = 5.0
        self._quiet_s = limits.DRAIN_QUIET_S

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.wait(30)
        if not self.port:
            raise RuntimeError("the gRPC server did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        served = await create_server(self.ledger, self.listen)
        self._server, self.port = served.server, served.port
        await served.server.start()
        await served.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self._started.set()
        await self._stopping.wait()
        await shutdown(served, self._grace_s, self._quiet_s)

    def stop(self, grace_s: float = 5.0, *, quiet_s: float = limits.DRAIN_QUIET_S) -> None:
        """Stop accepting calls, let in-flight ones finish for up to `grace_s`, then return.
        `quiet_s` is shutdown's quiet wait; 0 skips it (tests, once their clients are done)."""
        self._grace_s = grace_s
        self._quiet_s = quiet_s
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(grace_s + 30)
