"""The codec on the hot path: event and snapshot encoding (msgspec MessagePack), the stored
reply, the request fingerprint, stream ids, and the protobuf messages the server parses.

Per authorization the writer encodes one event and one Outcome and hashes the command once;
the server parses one AuthorizeRequest (or 1/1000 of a BatchRequest) and builds one reply.
"""

from __future__ import annotations

import time
import uuid

import pytest

from domain import postings
from domain.cards import commands as cc
from domain.cards import events as ev
from domain.cards.decide import CardState, fold
from domain.common import Meta, Role, luhn_complete
from grpc_api import server
from grpc_api.generated import pos_pb2 as pb
from ledger import codec
from ledger.codec import Outcome
from ledger.engine import Failure, Request

CARD = luhn_complete("800000000000001")
NOW_US = time.time_ns() // 1000
META = Meta("bench-req-000001", "c0123456789abcdef", int(Role.TERMINAL), "P1", "S1", "T1", NOW_US)


def _authorized(version: int) -> ev.ValueAuthorized:
    return ev.ValueAuthorized(
        META, f"{CARD}.{version}", 100, 100, NOW_US + 7 * 86_400_000_000, "P1", "",
        postings.move(postings.available(CARD), postings.held(CARD), 100))


def _card(authorizations: int) -> CardState:
    events: list[ev.CardEvent] = [
        ev.CardIssued(META, CARD, "STANDARD", "USD", "P1", "S1", "cust"),
        ev.CardActivated(META, ""),
        ev.ValueLoaded(META, 90_000_000, "pay", postings.move(
            postings.funding("P1"), postings.available(CARD), 90_000_000)),
    ]
    events += [_authorized(3 + i) for i in range(1, authorizations + 1)]
    state = fold(events)
    assert state is not None
    return state


EVENT = _authorized(17)
EVENT_BYTES = codec.encode(EVENT)
OUTCOME = codec.Outcome(1, "Authorize", CARD, f"{CARD}.17", 100,
                        codec.card_view(_card(10), 1_000, 0))
OUTCOME_BYTES = codec.encode(OUTCOME)
COMMAND = cc.Authorize(CARD, 100, "USD", False, "")


def test_encode_event(benchmark):
    data = benchmark(codec.encode, EVENT)
    assert data == EVENT_BYTES


def test_decode_event(benchmark):
    decoded = benchmark(codec.decode_event, EVENT_BYTES)
    assert decoded == EVENT


def test_encode_outcome(benchmark):
    assert benchmark(codec.encode, OUTCOME) == OUTCOME_BYTES


def test_decode_outcome(benchmark):
    assert benchmark(codec.decode_outcome, OUTCOME_BYTES) == OUTCOME


def test_payload_hash(benchmark):
    assert len(benchmark(codec.payload_hash, COMMAND)) == 16


@pytest.mark.parametrize("holds", [10, 100])
def test_encode_snapshot(benchmark, holds):
    state = _card(holds)
    data = benchmark(codec.encode, state)
    assert codec.decode_card_state(data).version == state.version


@pytest.mark.parametrize("holds", [10, 100])
def test_decode_snapshot(benchmark, holds):
    data = codec.encode(_card(holds))
    assert len(benchmark(codec.decode_card_state, data).holds) == holds


def test_card_stream_id_cached(benchmark):
    codec.card_stream_id(CARD)
    assert isinstance(benchmark(codec.card_stream_id, CARD), uuid.UUID)


def test_decode_and_fold_100_events(benchmark):
    """Loading a card from its stream: decode + evolve (what a snapshot interval bounds)."""
    rows = [codec.encode(e) for e in (
        ev.CardIssued(META, CARD, "STANDARD", "USD", "P1", "S1", "cust"),
        ev.CardActivated(META, ""),
        ev.ValueLoaded(META, 90_000_000, "pay", postings.move(
            postings.funding("P1"), postings.available(CARD), 90_000_000)),
        *(_authorized(3 + i) for i in range(1, 98)))]

    def load() -> CardState | None:
        return fold([codec.decode_event(row) for row in rows])  # type: ignore[misc]

    assert benchmark(load).version == 100  # type: ignore[union-attr]


# ------------------------------------------------------------------------------ protobuf

AUTHORIZE = pb.AuthorizeRequest(request_id="b0-12345-abcdef-1", card_number=CARD,
                                amount_minor=100, currency="USD")
AUTHORIZE_BYTES = AUTHORIZE.SerializeToString()
BATCH = pb.BatchRequest(operations=[
    pb.PosOperation(terminal_id="T1", authorize=pb.AuthorizeRequest(
        request_id=f"b0-12345-abcdef-{i}", card_number=CARD, amount_minor=100, currency="USD"))
    for i in range(1_000)])
BATCH_BYTES = BATCH.SerializeToString()


def test_proto_parse_authorize(benchmark):
    assert benchmark(pb.AuthorizeRequest.FromString, AUTHORIZE_BYTES).card_number == CARD


def test_proto_build_authorize_reply(benchmark):
    def build() -> bytes:
        return pb.AuthorizeReply(result=1, authorization_id=f"{CARD}.17",
                                 approved_amount_minor=100,
                                 available_minor=89_000_000).SerializeToString()

    assert benchmark(build)


def test_proto_parse_batch_1000(benchmark):
    assert len(benchmark(pb.BatchRequest.FromString, BATCH_BYTES).operations) == 1_000


def test_proto_batch_1000_to_commands(benchmark):
    """What the Batch handler does before submitting: read each operation into a command."""
    message = pb.BatchRequest.FromString(BATCH_BYTES)

    def convert() -> list[cc.Authorize]:
        out = []
        for op in message.operations:
            a = op.authorize
            command = cc.Authorize(a.card_number, a.amount_minor, a.currency, a.allow_partial,
                                   a.stan)
            command.validate()
            out.append(command)
        return out

    assert len(benchmark(convert)) == 1_000


def _batch_outcomes() -> tuple[list[Request], list[Outcome | Failure]]:
    view = codec.CardView(CARD, "STANDARD", 2, "USD", 90_000_000, 100, 89_999_900, "P1", "S1",
                          "", 0, 17)
    requests = [Request("c1", cc.Authorize(CARD, 100, "USD", False, ""), print, "", f"r{i}",
                        "T1", 0.0) for i in range(1_000)]
    outcomes: list[Outcome | Failure] = [
        Outcome(1, "Authorize", CARD, f"{CARD}.{i + 2}", 100, view) for i in range(1_000)]
    return requests, outcomes


def test_proto_batch_1000_reply_in_place(benchmark):
    """The Batch servicer's reply to 1,000 authorizations: each operation's reply filled inside
    the BatchReply (grpc_api.server._batch_reply)."""
    requests, outcomes = _batch_outcomes()

    def build() -> bytes:
        return server._batch_reply(len(requests), {}, requests, outcomes).SerializeToString()

    assert len(pb.BatchReply.FromString(benchmark(build)).replies) == 1_000


def test_proto_batch_1000_reply_by_constructors(benchmark):
    """The same reply built as before issue 14: a message per operation handed to the next
    constructor (each is copied), and the list of them to BatchReply (copied again). Kept as
    the reference for the test above, in the same run."""
    requests, outcomes = _batch_outcomes()
    expected = server._batch_reply(len(requests), {}, requests, outcomes).SerializeToString()

    def build() -> bytes:
        return pb.BatchReply(replies=[pb.PosOperationReply(reply=pb.AuthorizeReply(
            result=o.result, authorization_id=o.authorization_id,
            approved_amount_minor=o.approved_amount_minor,
            available_minor=o.card.available_minor if o.card else 0,
            replayed=o.replayed)) for o in outcomes]).SerializeToString()

    assert benchmark(build) == expected
