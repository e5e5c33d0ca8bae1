"""A first story on both stores: load, authorize, capture, refund, retry, reverse."""

from domain.cards import commands as cc
from domain.common import Result
from tests.support.alliance import card_number, ok, rid


def test_a_card_story(ledger, alliance):
    number = card_number(1)
    ok(ledger.call(alliance.s1_manager, cc.IssueCard(number, "STANDARD", "USD", "c-1", ""),
                   request_id=rid()))
    ok(ledger.call(alliance.s1_manager, cc.ActivateCard(number, ""), request_id=rid()))
    loaded = ok(ledger.call(alliance.t1, cc.LoadValue(number, 10_000, "USD", "pay-1"),
                            request_id="load-1"))
    assert loaded.card.balance_minor == 10_000
    auth = ok(ledger.call(alliance.t1, cc.Authorize(number, 2_500, "USD", False, ""),
                          request_id="auth-1"))
    assert auth.result == Result.APPROVED and auth.card.available_minor == 7_500
    again = ok(ledger.call(alliance.t1, cc.Authorize(number, 2_500, "USD", False, ""),
                           request_id="auth-1"))
    assert again.replayed and again.authorization_id == auth.authorization_id
    assert again.card.available_minor == 7_500
    captured = ok(ledger.call(alliance.t1, cc.Capture(auth.authorization_id, 2_000),
                              request_id=rid()))
    assert captured.card.balance_minor == 8_000 and captured.card.held_minor == 0
    reversed_ = ok(ledger.call(alliance.t1, cc.Reverse("load-1"), request_id=rid()))
    assert reversed_.result == Result.DECLINED_INSUFFICIENT_FUNDS
