"""What the audit replay reads in bulk (projections/audit_read.py): the card a stored reply
showed, decoded alone, and the shares of the log."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from ledger.codec import REGISTRY_ID, CardView, Outcome, PurchaseView, card_stream_id, encode
from projections.audit_read import REGISTRY_TOPICS, Row, Share, _decode_reply

CARD = CardView("8000000000000019", "VIP", 2, "USD", 12_345, 45, 12_300, "P1", "S1", "", 77, 9,
                "gold")


@pytest.mark.parametrize("reply", [
    Outcome(0, "purchase", CARD.card_number, "", 0, CARD,
            purchase=PurchaseView(purchase_id="p1", total_minor=500, points_earned=5)),
    Outcome(0, "authorize", CARD.card_number, "a1", 300, CARD, replayed=True),
])
def test_the_card_a_reply_showed_is_read_as_the_reply_gave_it(reply):
    shown = _decode_reply(encode(reply)).card
    assert (shown.card_number, shown.status, shown.balance_minor, shown.version, shown.tier) \
        == (CARD.card_number, CARD.status, CARD.balance_minor, CARD.version, CARD.tier)


def test_a_reply_without_a_card_shows_none():
    assert _decode_reply(encode(Outcome(7, "close_period"))).card is None


def test_a_reply_stored_before_the_card_had_a_tier_shows_no_tier():
    older = msgspec.msgpack.encode([0, "load", CARD.card_number, "", 0,
                                    list(msgspec.structs.astuple(CARD))[:12]])
    shown = _decode_reply(older).card
    assert shown.version == CARD.version and shown.tier == ""


def test_a_reply_whose_card_is_not_a_card_does_not_decode():
    with pytest.raises(msgspec.ValidationError):
        _decode_reply(msgspec.msgpack.encode([0, "load", "", "", 0, ["not", "a", "card"]]))


@pytest.mark.parametrize("count", [1, 2, 3])
def test_every_card_is_in_exactly_one_share_and_the_registry_in_all(count):
    for seed in range(200):
        stream = card_stream_id(f"80000000000{seed:05d}")
        row = Row(stream.bytes, "sv.loaded.v1", b"", seed + 1)
        assert sum(Share(i, count).keeps_stream(stream.bytes) for i in range(count)) == 1
        assert [Share(i, count).keeps_row(row) for i in range(count)] \
            == [Share(i, count).keeps_stream(stream.bytes) for i in range(count)]
    for row in (Row(REGISTRY_ID.bytes, "reg.partner.v1", b"", 1),
                Row(uuid.uuid4().bytes, REGISTRY_TOPICS[0], b"", 2)):
        assert all(Share(i, count).keeps_row(row) for i in range(count))


def test_a_share_reopens_the_database_by_a_url_that_parses_back() -> None:
    """The replay's second process opens the database from this URL: the password kept
    (the store's own url hides it), an IPv6 host in brackets."""
    import urllib.parse

    from projections.audit_read import postgres_url

    for host in ("127.0.0.1", "::1", "db.example"):
        url = postgres_url({"user": "ledger", "password": "p@ss:w/rd", "host": host,
                            "port": 5433, "dbname": "loyalty"})
        parts = urllib.parse.urlsplit(url)
        assert (parts.hostname, parts.port, parts.path) == (host, 5433, "/loyalty"), url
        assert urllib.parse.unquote(parts.password or "") == "p@ss:w/rd"
