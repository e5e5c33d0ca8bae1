"""An auditor reads a card as it was at a past time over gRPC (`GetCard` with `as_of`): the
log folded up to then, held value and spendable points as of then; the same scopes as a
current read; a bad time is INVALID_ARGUMENT naming `as_of`."""

from __future__ import annotations

import grpc
import pytest

from domain.common import format_time_us
from grpc_api.generated import pos_pb2 as pb
from tests.support.alliance import Alliance, FakeClock
from tests.support.rpc import R, Server, call, issue, rid, status_of

pytestmark = pytest.mark.backends("sqlite", "postgres")


def test_an_auditor_reads_a_card_as_it_was(server: Server, alliance: Alliance,
                                           clock: FakeClock) -> None:
    before_issue = format_time_us(clock.now_us - 1_000_000)
    number = issue(server, alliance, 71, load=1_000)
    loaded_once = format_time_us(clock.now_us)
    clock.advance(60)
    call(server.cards.LoadValue, pb.LoadValueRequest(
        request_id=rid("load"), card_number=number, amount_minor=500, currency="USD",
        payment_ref="second"), alliance.tokens["t1"])
    held = call(server.pos.Authorize, pb.AuthorizeRequest(
        request_id=rid("auth"), card_number=number, amount_minor=300, currency="USD"),
        alliance.tokens["t1"])
    assert held.result == R.APPROVED
    auditor = alliance.tokens["auditor"]

    def as_of(when: str, token: str = auditor) -> pb.CardReply:
        return call(server.cards.GetCard, pb.GetCardRequest(card_number=number, as_of=when),
                    token)

    then = as_of(loaded_once)
    assert then.result == R.APPROVED
    assert (then.card.balance_minor, then.card.held_minor, then.card.available_minor) == \
        (1_000, 0, 1_000)
    now = as_of(format_time_us(clock.now_us))
    assert (now.card.balance_minor, now.card.held_minor, now.card.available_minor) == \
        (1_500, 300, 1_200)
    live = call(server.cards.GetCard, pb.GetCardRequest(card_number=number), auditor)
    assert live.card == now.card
    assert as_of(before_issue).result == R.DECLINED_CARD_NOT_FOUND
    # The hold lapses with time: a read far ahead sees it released.
    later = as_of(format_time_us(clock.now_us + 400 * 86_400_000_000))
    assert later.card.held_minor == 0 and later.card.available_minor == 1_500
    # Scopes as for a current read: the issuer's manager may, another partner's may not.
    assert as_of(loaded_once, alliance.tokens["p1_manager"]).result == R.APPROVED
    denied = status_of(server.cards.GetCard, pb.GetCardRequest(
        card_number=number, as_of=loaded_once), alliance.tokens["p2_manager"])
    assert denied is not None and denied.code == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("when", ["yesterday", "2026-11-30T10:00:00", "2026-13-01T00:00:00Z"])
def test_a_bad_as_of_names_the_field(server: Server, alliance: Alliance, when: str) -> None:
    refused = status_of(server.cards.GetCard, pb.GetCardRequest(
        card_number="4000000000000002", as_of=when), alliance.tokens["auditor"])
    assert refused is not None and refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "as_of" in refused.details
