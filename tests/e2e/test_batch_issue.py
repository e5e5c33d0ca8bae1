"""IssueCard inside Batch (issue 12, bulk issuance): a manager's stream of issues is decided
like unary IssueCard (same access rules, checks, events and request keys); a malformed or
refused operation gets its own `error` with nothing written, its neighbours go on."""

from __future__ import annotations

from typing import Any

import pytest

from domain.common import luhn_valid
from grpc_api.generated import pos_pb2 as pb
from tests.support.alliance import Alliance, card_number
from tests.support.rpc import (
    R,
    Server,
    all_movements,
    batch_status,
    call,
    db_state,
    get_card,
    rid,
)

pytestmark = pytest.mark.backends("sqlite")


def _issue_op(number: str, request_id: str | None = None, **fields: Any) -> pb.PosOperation:
    message = pb.IssueCardRequest(request_id=rid("bi") if request_id is None else request_id,
                                  card_number=number,
                                  card_class="STANDARD", currency="USD", customer_ref="cust-1",
                                  issuing_store_id="S1")
    for name, value in fields.items():
        setattr(message, name, value)
    return pb.PosOperation(issue=message)


def _send(server: Server, token: str, ops: list[pb.PosOperation]) -> list[pb.PosOperationReply]:
    replies, status = batch_status(server, token, pb.BatchRequest(operations=ops))
    assert status is None, status
    assert len(replies) == 1 and len(replies[0].replies) == len(ops)
    return list(replies[0].replies)


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_a_batch_of_issues_is_approved_and_retried_idempotently(server: Server,
                                                                alliance: Alliance) -> None:
    token = alliance.tokens["s1_manager"]
    numbers = [card_number(9_000 + i) for i in range(200)]
    ops = [_issue_op(n, f"bulk-{i}") for i, n in enumerate(numbers)]
    before = db_state(server.ledger)
    first = _send(server, token, ops)
    for number, reply in zip(numbers, first, strict=True):
        assert not reply.error and not reply.HasField("reply"), reply
        assert (reply.issue.result, reply.issue.replayed) == (R.APPROVED, False)
        card = reply.issue.card
        assert (card.card_number, card.status, card.issuing_store_id, card.issuing_partner_id,
                card.card_class, card.version) == (number, pb.ISSUED, "S1", "P1", "STANDARD", 1)
    middle = db_state(server.ledger)
    assert middle.request_keys - before.request_keys == 200
    assert middle.last_event - before.last_event == 200  # one CardIssued each

    again = _send(server, token, ops)  # the same request ids: replayed, nothing written
    assert [(r.issue.result, r.issue.replayed, r.issue.card.card_number) for r in again] == [
        (R.APPROVED, True, n) for n in numbers]
    assert db_state(server.ledger) == middle
    # the unary IssueCard with the same request id and payload replays the Batch's decision
    unary = call(server.cards.IssueCard, ops[7].issue, token)
    assert (unary.result, unary.replayed, unary.card.card_number) == (R.APPROVED, True,
                                                                        numbers[7])
    assert [m.kind for m in all_movements(server, token, numbers[0])] == ["ISSUED"]


def test_a_card_number_issued_twice_is_declined(server: Server, alliance: Alliance) -> None:
    token = alliance.tokens["s1_manager"]
    number = card_number(9_500)
    first, second, other = _send(server, token, [
        _issue_op(number), _issue_op(number), _issue_op(card_number(9_501))])
    assert first.issue.result == R.APPROVED
    assert second.issue.result == R.DECLINED_CARD_EXISTS and not second.issue.card.card_number
    assert other.issue.result == R.APPROVED
    # across messages, and against a card issued unary
    (later,) = _send(server, token, [_issue_op(number)])
    assert later.issue.result == R.DECLINED_CARD_EXISTS
    assert get_card(server, alliance, number).card.version == 1
    # the same request id with another payload: a mismatch, in the issue reply
    (used,) = _send(server, token, [_issue_op(card_number(9_502), "dup-req")])
    (again,) = _send(server, token, [_issue_op(card_number(9_503), "dup-req")])
    assert used.issue.result == R.APPROVED
    assert again.issue.result == R.DUPLICATE_REQUEST_MISMATCH and not again.error


def test_an_issue_without_a_number_gets_a_generated_one(server: Server,
                                                        alliance: Alliance) -> None:
    replies = _send(server, alliance.tokens["s1_manager"], [_issue_op("") for _ in range(5)])
    numbers = {r.issue.card.card_number for r in replies}
    assert all(r.issue.result == R.APPROVED for r in replies) and len(numbers) == 5
    assert all(n.isdigit() and luhn_valid(n) for n in numbers)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"card_number": "1234"}, "card_number"),
    ({"card_number": card_number(1)[:-1] + str((int(card_number(1)[-1]) + 1) % 10)},
     "card_number"),
    ({"card_class": "lower"}, "card_class"),
    ({"card_class": ""}, "card_class"),
    ({"currency": "XXX"}, "currency"),
    ({"currency": ""}, "currency"),
    ({"customer_ref": "c" * 65}, "customer_ref"),
    ({"issuing_store_id": "no such store!"}, "issuing_store_id"),
    ({"issuing_store_id": "S9"}, "issuing_store_id"),  # well formed, unknown
    ({"request_id": ""}, "request_id"),
    ({"request_id": "r" * 65}, "request_id"),
]


def test_malformed_issue_operations_are_per_operation_errors(server: Server,
                                                             alliance: Alliance) -> None:
    """Each bad issue sits between two good ones: an INVALID_ARGUMENT error naming the field,
    nothing written for it (its request id stays free), its neighbours issued."""
    token = alliance.tokens["s1_manager"]
    problems = []
    for seed, (fields, field) in enumerate(BAD):
        good = [_issue_op(card_number(20_000 + 2 * seed)),
                _issue_op(card_number(20_001 + 2 * seed))]
        bad = _issue_op(card_number(30_000 + seed), **fields)
        before = db_state(server.ledger)
        first, middle, last = _send(server, token, [good[0], bad, good[1]])
        if not middle.error.startswith("INVALID_ARGUMENT") or field not in middle.error \
                or middle.HasField("issue"):
            problems.append(f"{fields}: {str(middle).strip()!r:.200}")
        if first.issue.result != R.APPROVED or last.issue.result != R.APPROVED:
            problems.append(f"{fields}: neighbours {first} / {last}")
        after = db_state(server.ledger)
        if (after.request_keys - before.request_keys,
                after.last_event - before.last_event) != (2, 2):
            problems.append(f"{fields}: {after} after {before}")
    assert not problems, "\n".join(problems)


SCOPES = [
    ("admin", "S1", True),
    ("p1_manager", "S2", True),      # any store of its partner
    ("s1_manager", "S1", True),
    ("s1_manager", "S2", False),     # not its store
    ("p2_manager", "S1", False),     # another partner's store
    ("gw1", "S1", True),             # a gateway issues from its own store (gift cards sold)
    ("gw1", "S2", False),
    ("t1", "S1", False),
    ("auditor", "S1", False),
]


@pytest.mark.parametrize(("who", "at_store", "allowed"), SCOPES)
def test_who_may_issue_in_a_batch_is_who_may_issue_unary(server: Server, alliance: Alliance,
                                                         who: str, at_store: str,
                                                         allowed: bool) -> None:
    token = alliance.admin_token if who == "admin" else alliance.tokens[who]
    seed = 40_000 + 10 * SCOPES.index((who, at_store, allowed))
    op = _issue_op(card_number(seed), issuing_store_id=at_store)
    if who == "gw1":
        op.terminal_id = "T1"
    unary_request = pb.IssueCardRequest()
    unary_request.CopyFrom(op.issue)
    unary_request.card_number = card_number(seed + 10_000)
    unary_request.request_id = rid("unary")
    before = db_state(server.ledger)
    (reply,) = _send(server, token, [op])
    try:
        unary_ok = call(server.cards.IssueCard, unary_request, token).result == R.APPROVED
    except Exception as error:  # grpc.RpcError: PERMISSION_DENIED
        unary_ok = False
        assert "PERMISSION_DENIED" in str(error.code()), error  # type: ignore[attr-defined]
    assert unary_ok == allowed
    if allowed:
        assert reply.issue.result == R.APPROVED and not reply.error
    else:
        assert reply.error.startswith("PERMISSION_DENIED"), reply
        assert db_state(server.ledger) == before  # the unary one was refused too
