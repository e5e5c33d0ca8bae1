"""Exchange quotes as signed tokens: the terms, and an HMAC under the deployment's key (as
coupon codes are), so quoting writes nothing and any server process can check a quote.

A quote id is `<terms>.<mac>` in URL-safe base64. The MAC is what "already used" remembers
(domain/exchange/decide.py). A token whose MAC does not match was made up or made by another
deployment: it is refused as foreign, like a quote for another card or partner.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

import msgspec

from domain.common import InvalidInput

QUOTE_ID_PATTERN = re.compile(r"([A-Za-z0-9_-]{8,400})\.([A-Za-z0-9_-]{22})")
MAC_BYTES = 16  # 128 bits
TOKEN_VERSION = 1
_DOMAIN = b"loyalty-ledger exchange quote v1\x00"


class Quote(msgspec.Struct, frozen=True, array_like=True):
    card_number: str
    from_program: str
    to_program: str
    rate_version: int
    points_taken: int  # fee included
    fee_points: int
    points_given: int
    quoted_at_us: int
    expires_at_us: int
    partner_id: str  # the quoting credential's partner: only its credentials may execute it
    nonce: bytes  # random: two quotes of the same terms at the same moment are two quotes


def quote_key(deployment_key: bytes) -> bytes:
    """A key of its own for quotes, derived from the deployment's key (a coupon code and a
    quote can never stand for each other)."""
    return hmac.new(deployment_key, _DOMAIN, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:MAC_BYTES]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(type=tuple[int, Quote])


def sign(key: bytes, quote: Quote) -> str:
    payload = _encoder.encode((TOKEN_VERSION, quote))
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def check_quote_id(token: str, field: str = "quote_id") -> str:
    if not QUOTE_ID_PATTERN.fullmatch(token):
        raise InvalidInput(field, "is not a quote id of this ledger")
    return token


def open_quote(key: bytes, token: str) -> tuple[Quote, str] | None:
    """(the terms, the quote's id to remember) if the MAC is right; None otherwise."""
    found = QUOTE_ID_PATTERN.fullmatch(token)
    if found is None:
        return None
    try:
        payload, mac = _unb64(found.group(1)), _unb64(found.group(2))
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    try:
        version, quote = _decoder.decode(payload)
    except msgspec.DecodeError:
        return None  # signed by us but of another shape: cannot happen without a key leak
    if version != TOKEN_VERSION:
        return None
    return quote, found.group(2)
