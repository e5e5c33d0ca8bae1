"""The fuzzer: sends generated calls to a real server one at a time and checks each one.

Calls are sequential on purpose: the database state (log position, request keys, registry
version) read just before and just after a call then belongs to that call alone, so "a call
answered with an error wrote nothing" is an exact check, not a statistical one.

What counts as a finding (each kept once per kind, RPC and message shape, with a count and the
first request that showed it):
- status UNKNOWN or INTERNAL (or any status a single well-behaved request must never get:
  RESOURCE_EXHAUSTED, UNAVAILABLE, DEADLINE_EXCEEDED, UNIMPLEMENTED, DATA_LOSS, CANCELLED);
- a status message over 1 KB, or one that carries a Python exception name or a traceback;
- an error status after which the database changed (a refused call wrote, or a write was
  acknowledged with an error);
- a record logged at ERROR or with an exception while the server ran;
- a Batch reply of the wrong length, or an operation reply that is both or neither of an error
  and a reply; a Batch message refused in full that wrote something;
- a retry of an accepted write that is not answered the same (replayed);
- points that differ from the plain-Python reference evaluator (domain/rules/reference.py) on a
  simulated purchase whose rules in force are all per-basket ones;
- a card whose movements (ListMovements, paged) do not end at its balance and held amount.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import random
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from domain.rules.model import Basket, Line, RuleSet
from domain.rules.reference import evaluate
from grpc_api.generated import pos_pb2 as pb
from tests.fuzz.generator import describe, mutate_one, random_message
from tests.fuzz.world import RPCS, STORE_OF, TILLS, UNARY, Rpc, World
from tests.support.rpc import db_state

NEVER = {"UNKNOWN", "INTERNAL", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED",
         "UNIMPLEMENTED", "DATA_LOSS", "CANCELLED"}
STATUS_MESSAGE_MAX = 1_024
PYTHON_LEAK = re.compile(r"Traceback|\b[A-Z][A-Za-z]*(Error|Exception)\b|File \"")
REQUEST_BYTES_MAX = 4_000_000  # half the server's grpc.max_receive_message_length
CALL_TIMEOUT_S = 120  # bounds a hang only; a deadline is never part of a check

# Weights of the unary RPCs: the purchase path, rule sets and coupons carry most of the logic.
WEIGHTS = {"Purchase": 4, "SimulatePurchase": 6, "PublishRuleSet": 3, "Return": 2,
           "Authorize": 2, "IssueCoupon": 2, "LoadValue": 2, "ListMovements": 2,
           "IssueCard": 2, "DefineCouponCampaign": 2,
           # Cards that stop spending would starve the purchase path: fewer of these.
           "ReplaceCard": 0.3, "BlockCard": 0.5, "CloseCard": 0.5}


class LogTrap(logging.Handler):
    """Collects what the server logs at ERROR or with an exception (a traceback)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            with self._lock:
                self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        with self._lock:
            taken, self.records = self.records, []
        return taken


@dataclass
class Finding:
    kind: str
    rpc: str
    detail: str
    example: str
    count: int = 1


def _shape(text: str) -> str:
    """A message with its numbers and long runs cut, so one defect is one finding."""
    text = re.sub(r"\d+", "N", text)
    text = re.sub(r"(.)\1{5,}", r"\1\1\1...", text)
    return text[:120]


@dataclass
class Fuzzer:
    world: World
    rng: random.Random
    trap: LogTrap
    store_name: str
    calls: int = 0
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    batch_operations: Counter[str] = field(default_factory=Counter)
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    modes: Counter[str] = field(default_factory=Counter)
    oracle: Counter[str] = field(default_factory=Counter)
    replayable: list[tuple[Rpc, Message, str, Any]] = field(default_factory=list)
    last_call: str = ""

    # ------------------------------------------------------------------ findings

    def find(self, kind: str, rpc: str, detail: str, example: str, shape: str = "") -> None:
        """Record a finding; `shape` (default: the detail without its numbers) tells two
        findings of one kind and RPC apart."""
        key = (kind, rpc, shape or _shape(detail))
        known = self.findings.get(key)
        if known is not None:
            known.count += 1
        else:
            self.findings[key] = Finding(kind, rpc, detail[:300], example)

    def check_log(self) -> None:
        for record in self.trap.take():
            first = record.getMessage().splitlines()[0] if record.getMessage() else ""
            exc = record.exc_info[1] if record.exc_info else None
            what = f"{record.name} {record.levelname}: {first}" + (
                f" [{type(exc).__name__}: {exc}]" if exc is not None else "")
            self.find("server log", self.last_call or "-", what, f"after {self.last_call}")

    # ------------------------------------------------------------------ one unary call

    def call(self, rpc: Rpc, request: Message, caller: str | None,
             mode: str) -> tuple[Any, str, str]:
        """Send one unary call and check it; returns (reply or None, status name, details)."""
        world = self.world
        if request.ByteSize() > REQUEST_BYTES_MAX:
            # gRPC refuses it with RESOURCE_EXHAUSTED before any handler runs: not news.
            self.modes["not sent: over 4 MB"] += 1
            return None, "NOT_SENT", ""
        metadata = () if caller is None else (
            ("authorization", f"Bearer {world.token(caller) if caller != '?' else 'llk_x_y'}"),)
        before = db_state(world.ledger)
        self.last_call = rpc.full
        reply, code, details = None, "OK", ""
        try:
            reply = world.method(rpc)(request, metadata=metadata, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            code, details = error.code().name, error.details() or ""
        self.calls += 1
        self.modes[mode] += 1
        self.statuses[rpc.group][code] += 1
        shown = f"[{mode}] as {caller}: {describe(request)}"
        self._check_status(rpc.full, code, details, shown)
        if code != "OK":
            after = db_state(world.ledger)
            if after != before:
                self.find("error status but the database changed", rpc.full,
                          f"{code}: {details[:200]} ({before} -> {after})", shown)
        self.check_log()
        return reply, code, details

    def _check_status(self, rpc: str, code: str, details: str, shown: str) -> None:
        leak = PYTHON_LEAK.search(details)
        if code in NEVER:
            self.find(f"status {code}" + (" (with a Python exception in the message)"
                                          if leak else ""), rpc, details, shown)
        if len(details.encode()) > STATUS_MESSAGE_MAX:
            self.find("status message over 1 KB", rpc,
                      f"{code}, {len(details.encode())} bytes: {details[:150]}", shown)
        if leak and code not in NEVER:
            self.find("Python exception in a status message", rpc, f"{code}: {details}", shown)

    # ------------------------------------------------------------------ the unary loop

    def pick_rpc(self) -> Rpc:
        return self.rng.choices(UNARY, weights=[WEIGHTS.get(r.name, 1) for r in UNARY])[0]

    def some_caller(self, usual: str) -> str | None:
        """Mostly the caller a valid request needs; sometimes another role, none, a bad one."""
        roll = self.rng.random()
        if roll < 0.85:
            return usual
        if roll < 0.97:
            return self.rng.choice(["admin", "auditor", "finance", "p2_manager", "t_air",
                                    "gw1", "t3", "s1_manager"])
        return self.rng.choice([None, "?"])

    def step(self) -> None:
        """One unary call: a valid request, a one-field mutation of one, or a random one."""
        rng, world = self.rng, self.world
        rpc = self.pick_rpc()
        made = world.valid_request(rpc, rng)
        roll = rng.random()
        if made is None or roll < 0.15:
            request = random_message(rng, rpc.request, world.pools)
            caller = self.some_caller(made[1] if made else rng.choice(["admin", "t1"]))
            self.call(rpc, request, caller, "random")
            return
        request, usual = made
        if roll < 0.55:
            mutated = type(request)()
            mutated.CopyFrom(request)
            mutate_one(rng, mutated, world.pools)
            reply, code, _ = self.call(rpc, mutated, self.some_caller(usual), "mutated")
            if code == "OK":
                world.learn(rpc.name, mutated, usual, reply)
            return
        reply, code, _ = self.call(rpc, request, usual, "valid")
        if code != "OK":
            return
        world.learn(rpc.name, request, usual, reply)
        if rpc.name == "SimulatePurchase":
            self.points_oracle(request, reply)
        if getattr(request, "request_id", "") and rng.random() < 0.15:
            self.retry(rpc, request, usual, reply)

    def retry(self, rpc: Rpc, request: Message, caller: str, first: Any) -> None:
        """The same request again: the same answer, marked replayed, nothing written."""
        before = db_state(self.world.ledger)
        reply, code, details = self.call(rpc, request, caller, "retry")
        shown = f"[retry] as {caller}: {describe(request)}"
        if code != "OK":
            self.find("a retry of an accepted write was refused", rpc.full,
                      f"{code}: {details}", shown)
            return
        if db_state(self.world.ledger) != before:
            self.find("a retry wrote again", rpc.full, "database changed", shown)
        if hasattr(reply, "replayed") and (not reply.replayed
                                           or reply.result != first.result):
            self.find("a retry was not replayed identically", rpc.full,
                      f"replayed={reply.replayed} result {first.result}->{reply.result}",
                      shown)

    # ------------------------------------------------------------------ the points oracle

    def points_oracle(self, request: pb.SimulatePurchaseRequest,
                      reply: pb.PurchaseReply) -> None:
        """A simulated purchase earns what the plain-Python reference says, when every rule in
        force is evaluated on the basket alone (no stamps, first-purchase bonus or per-card cap,
        which depend on the card's history) and nothing else changes the basket."""
        purchase = request.purchase
        skip = ("declined" if reply.result not in (pb.APPROVED, pb.PARTIALLY_APPROVED) else
                "no points earned" if not reply.points_earned else
                "no local time" if not purchase.local_time else
                "coupons" if purchase.coupon_codes else "")
        if skip:
            self.oracle[f"oracle skipped: {skip}"] += 1
            if skip == "declined":
                self.oracle[f"  {pb.Result.Name(reply.result)}"] += 1

            return
        registry = self.world.ledger.registry
        merged = []
        for ref in reply.rule_sets:
            rule_set_id, _, version = ref.rpartition("@")
            versions = [r for r in list(registry.rule_sets.get(rule_set_id, []))
                        if r.version == int(version)]
            if not versions:
                self.oracle["oracle skipped: rule set not found"] += 1
                return
            merged.extend(versions[0].rules)
        if not all(rule.per_basket for rule in merged):
            self.oracle["oracle skipped: rules on the card's history"] += 1
            return
        card = self._get_card(purchase.card_number)
        if card is None:
            self.oracle["oracle skipped: no card"] += 1
            return
        moment = dt.datetime.fromisoformat(purchase.local_time)
        basket = Basket(lines=tuple(Line(li.sku, li.category, li.quantity, li.unit_price_minor,
                                         li.margin_minor) for li in purchase.lines),
                        card_class=card.card_class, tier=card.tier, weekday=moment.weekday(),
                        minute_of_day=moment.hour * 60 + moment.minute)
        expected = evaluate(RuleSet(rule_set_id="in-force", version=1, scope="alliance",
                                    valid_from_us=0, valid_to_us=1, rules=tuple(merged)),
                            basket).points
        self.oracle["points checked against the reference"] += 1
        if expected != reply.points_earned:
            self.find("points differ from the reference evaluator", "PosService.SimulatePurchase",
                      f"server {reply.points_earned:,} vs reference {expected:,} "
                      f"(rule sets {list(reply.rule_sets)})",
                      f"{describe(request, 600)} | rules: "
                      + "; ".join(f"{r.rule_id} {r.effect.name} rate={r.rate_num}/{r.rate_den} "
                                  f"bp={r.multiplier_bp} {r.stacking.name} pts={r.points}"
                                  for r in merged)[:900], shape="points")

    def _get_card(self, number: str) -> pb.Card | None:
        rpc = next(r for r in RPCS if r.name == "GetCard")
        reply, code, _ = self.call(rpc, pb.GetCardRequest(card_number=number), "admin", "check")
        if code != "OK" or reply.result != pb.APPROVED:
            return None
        return reply.card

    # ------------------------------------------------------------------ movements

    def check_movements(self, number: str, label: str) -> None:
        """The card's movements end at what the card shows: the last movement's balance and
        held amount are the card's, its version the card's (plus lapsed holds not recorded yet),
        and versions have no gaps."""
        card = self._get_card(number)
        if card is None:
            return
        rpc = next(r for r in RPCS if r.name == "ListMovements")
        movements: list[pb.Movement] = []
        limit = self.rng.choice([1, 7, 100, 0])
        while True:
            after = movements[-1].version if movements else 0
            reply, code, _ = self.call(rpc, pb.ListMovementsRequest(
                card_number=number, after_version=after, limit=limit), "admin", "check")
            if code != "OK":
                return  # the status was recorded as a finding already
            if not reply.movements:
                break
            movements.extend(reply.movements)
            if len(movements) > 100_000:
                break
        self.oracle["cards checked"] += 1
        example = f"card {number} ({label}); GetCard: balance {card.balance_minor} held " \
                  f"{card.held_minor} version {card.version}"
        if not movements:
            self.find("card without movements", "CardService.ListMovements", label, example)
            return
        last = movements[-1]
        if (last.balance_minor, last.held_minor) != (card.balance_minor, card.held_minor):
            self.find("movements do not explain the card", "CardService.ListMovements",
                      f"{label}: last movement {last.kind} balance {last.balance_minor} "
                      f"held {last.held_minor}, card balance {card.balance_minor} "
                      f"held {card.held_minor}", example)
        versions = [m.version for m in movements]
        # A hold whose time is up shows as EXPIRED beyond the recorded version until the
        # ledger records it (projections/movements.py); nothing else may follow the card's version.
        pending = [m.kind for m in movements if m.version > card.version]
        if pending and set(pending) != {"EXPIRED"}:
            self.find("movements beyond the card's version", "CardService.ListMovements",
                      f"{label}: {pending[:5]}", example)
        if versions != list(range(1, len(versions) + 1)) or (
                versions[-1] - len(pending) != card.version):
            self.find("movement versions have gaps", "CardService.ListMovements",
                      f"{label}: versions {versions[:5]}..{versions[-3:]} card {card.version}",
                      example)

    # ------------------------------------------------------------------ Batch

    def batch_operation(self, caller: str | None) -> pb.PosOperation:
        """A valid, mutated or random operation for a Batch message sent by `caller`."""
        rng, world = self.rng, self.world
        kinds = {"authorize": "Authorize", "capture": "Capture", "void": "Void",
                 "refund": "Refund", "reverse": "Reverse", "load": "LoadValue",
                 "purchase": "Purchase", "purchase_return": "Return"}
        kind = rng.choice(list(kinds))
        rpc = next(r for r in RPCS if r.name == kinds[kind])
        roll = rng.random()
        made = world.valid_request(rpc, rng)
        if made is None or roll < 0.1:
            return random_message(rng, pb.PosOperation, world.pools)  # type: ignore[return-value]
        request, till = made
        # The terminal the operation acts for: a gateway names one of its store's; a terminal
        # names itself or nothing; other callers are refused per operation anyway.
        if caller == "gw1":
            terminal = rng.choice(["T1", "T2"])
        elif caller in STORE_OF:
            terminal = rng.choice(["", {"t1": "T1", "t2": "T2", "t3": "T3",
                                        "t_air": "TA1"}[caller]])
        else:
            terminal = {"t1": "T1", "t2": "T2", "t3": "T3", "t_air": "TA1"}.get(till, "T1")
        op = pb.PosOperation(terminal_id=terminal)
        getattr(op, kind).CopyFrom(request)
        if roll < 0.45:
            mutate_one(rng, op, world.pools)
        return op

    def batch_stream(self) -> None:
        """One Batch stream: 1..4 messages sent in lock step (the next message goes only after
        the previous reply), so the database change of each message is known; sometimes
        cancelled by the client after a reply, or before its first message."""
        rng, world = self.rng, self.world
        caller = rng.choice(["gw1", "gw1", "gw1", "gw1", "t1", "t3", "t_air", "admin",
                             "auditor", None])
        messages = []
        for _ in range(rng.choice([1, 1, 2, 4])):
            size = rng.choice([1, 2, 5, 20, 100, 0, 1000, 1001])
            if size == 1000:  # a full valid message: 1000 small authorizations
                terminal = {"t3": "T3", "t_air": "TA1"}.get(caller or "", "T1")
                ops = [pb.PosOperation(terminal_id=terminal, authorize=pb.AuthorizeRequest(
                    request_id=world.fresh_id("fz-b"), card_number=world.card(rng),
                    amount_minor=1, currency="USD")) for _ in range(1000)]
            else:
                first = [self.batch_operation(caller) for _ in range(min(size, 20))]
                # Under the server's 8 MB message limit (beyond it gRPC itself answers
                # RESOURCE_EXHAUSTED, which is not the ledger's doing): a message of many
                # operations repeats the small ones only.
                small = [op for op in first if op.ByteSize() * size <= 4_000_000]
                ops = [small[i % len(small)] for i in range(size)] if small else []
            messages.append(pb.BatchRequest(operations=ops))
        cancel_after = rng.choice([None, None, None, 0, 1])
        feed: queue.Queue[pb.BatchRequest | None] = queue.Queue()

        def requests() -> Any:
            while (item := feed.get()) is not None:
                yield item

        metadata = () if caller is None else (
            ("authorization", f"Bearer {world.token(caller)}"),)
        self.last_call = "PosService.Batch"
        stream = world.stubs["PosService"].Batch(requests(), metadata=metadata,
                                                 timeout=CALL_TIMEOUT_S)
        code, details = "OK", ""
        try:
            for index, message in enumerate(messages):
                if cancel_after == index:
                    break
                before = db_state(world.ledger)
                feed.put(message)
                try:
                    reply = next(stream)
                except StopIteration:
                    break
                self.calls += 1
                self._check_batch_reply(caller, message, reply, before)
            if cancel_after is not None:
                stream.cancel()
            feed.put(None)
            for _ in stream:  # the stream ends (or raises its status)
                pass
        except grpc.RpcError as error:
            code, details = error.code().name, error.details() or ""
        finally:
            feed.put(None)
        if cancel_after is not None and code == "CANCELLED":
            code = "CANCELLED (by the client)"
        self.statuses["Batch"][code] += 1
        shown = f"[batch] as {caller}: {len(messages)} messages of " \
                f"{[len(m.operations) for m in messages]} ops; first: " \
                f"{describe(messages[0], 300)}"
        if not code.startswith("CANCELLED (by"):
            self._check_status("PosService.Batch", code, details, shown)
        self.check_log()

    def _check_batch_reply(self, caller: str | None, message: pb.BatchRequest,
                           reply: pb.BatchReply, before: Any) -> None:
        shown = f"[batch] as {caller}: {describe(message, 400)}"
        if len(reply.replies) != len(message.operations):
            self.find("Batch reply of the wrong length", "PosService.Batch",
                      f"{len(message.operations)} ops, {len(reply.replies)} replies", shown)
        decided = 0
        for op, answer in zip(message.operations, reply.replies, strict=False):
            kind = op.WhichOneof("op") or "none"
            has_reply = (answer.HasField("reply") or answer.HasField("purchase")
                         or answer.HasField("issue"))
            if answer.error:
                code = answer.error.split(":", 1)[0]
                self.batch_operations[f"error {code}"] += 1
                self._check_status(f"PosService.Batch/{kind}", code, answer.error,
                                   f"[batch op] as {caller}: {describe(op)}")
                if has_reply:
                    self.find("Batch operation with both an error and a reply",
                              "PosService.Batch", answer.error, describe(op))
            elif not has_reply:
                self.find("Batch operation with neither error nor reply", "PosService.Batch",
                          kind, describe(op))
            else:
                decided += 1
                result = (answer.purchase.result if answer.HasField("purchase")
                          else answer.issue.result if answer.HasField("issue")
                          else answer.reply.result)
                self.batch_operations[pb.Result.Name(result)] += 1
                self._learn_batch(op, answer)
        after = db_state(self.world.ledger)
        keys = after.request_keys - before.request_keys
        # Exact when every operation was refused; with some decided, which operation wrote
        # what cannot be told from the outside (a reverse also writes a tombstone).
        if decided == 0 and after != before:
            self.find("refused Batch operations wrote", "PosService.Batch",
                      f"all {len(message.operations)} refused, but {keys} request keys "
                      f"written ({before} -> {after})", shown)

    def _learn_batch(self, op: pb.PosOperation, answer: pb.PosOperationReply) -> None:
        kind = op.WhichOneof("op")
        if kind == "issue":
            return  # a card issued by a gateway's batch: not one of the fuzzer's pool
        till = {"T1": "t1", "T2": "t2", "T3": "t3", "TA1": "t_air"}.get(op.terminal_id, "t1")
        names = {"authorize": "Authorize", "capture": "Capture", "void": "Void",
                 "refund": "Refund", "reverse": "Reverse", "load": "LoadValue",
                 "purchase": "Purchase", "purchase_return": "Return"}
        reply = answer.purchase if answer.HasField("purchase") else answer.reply
        self.world.learn(names[kind], getattr(op, kind), till, reply)

    # ------------------------------------------------------------------ the end

    def check_health(self) -> None:
        stub = health_pb2_grpc.HealthStub(self.world.channel)
        status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT_S)
        if status.status != health_pb2.HealthCheckResponse.SERVING:
            self.find("server not SERVING at the end", "grpc.health.v1.Health/Check",
                      str(status.status), "")

    def summary(self, seconds: float) -> str:
        lines = [f"fuzz on {self.store_name}: {self.calls:,} calls in {seconds:.1f} s "
                 f"({', '.join(f'{k} {v}' for k, v in sorted(self.modes.items()))})"]
        for group in ("Admin", "Card", "Pos", "Program", "Settlement", "Reconcile", "Agreement",
                      "Exchange", "Finance", "Insights", "Batch"):
            counts = self.statuses.get(group, Counter())
            shown = ", ".join(f"{code} {n:,}" for code, n in counts.most_common())
            lines.append(f"  {group:<8} {sum(counts.values()):>7,}  {shown}")
        if self.batch_operations:
            lines.append("  Batch operations: " + ", ".join(
                f"{k} {v:,}" for k, v in self.batch_operations.most_common()))
        lines.append("  checks: " + ", ".join(f"{k} {v:,}" for k, v in self.oracle.items()))
        lines.append(f"  findings: {len(self.findings)}")
        for finding in self.findings.values():
            lines.append(f"  - [{finding.kind}] {finding.rpc} x{finding.count}: "
                         f"{finding.detail[:300]}")
            if finding.example:
                lines.append(f"      e.g. {finding.example[:700]}")
        return "\n".join(lines)


def run_for(seconds: float, max_calls: int, step: Any, fuzzer: Fuzzer) -> float:
    """Call `step` until the budget is spent: seconds of wall time (the run's length, never
    part of a check) or, when given, an exact number of calls (a run to reproduce)."""
    started = time.monotonic()
    while True:
        if max_calls and fuzzer.calls >= max_calls:
            break
        if not max_calls and time.monotonic() - started >= seconds:
            break
        step()
    return time.monotonic() - started


__all__ = ["STORE_OF", "TILLS", "Fuzzer", "LogTrap", "run_for"]
