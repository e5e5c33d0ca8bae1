"""The lean decoder of projections (ledger/codec.py `lean_decoder`): it reads the fields it is
asked for and keeps the others before them undecoded, whatever they hold."""

from __future__ import annotations

import msgspec
import pytest

from domain.common import Meta
from ledger.codec import encode, lean_decoder


class Sample(msgspec.Struct, frozen=True, array_like=True, tag="sample.v1"):
    meta: Meta
    owner: str = ""  # optional, not asked for, before the field that is
    count: int = 0
    legs: tuple[tuple[str, int], ...] = ()
    after: str = ""


META = Meta("r-1", "c-1", 2, "P1", "S1", "T1", 1_700_000_000_000_000)


@pytest.mark.parametrize("owner", ["", "P2", "a much longer owner name"])
def test_an_unread_optional_field_may_hold_anything(owner: str) -> None:
    """It used to be typed `Raw | None`: only a stored null decoded, a string failed."""
    stored = encode(Sample(META, owner, 7, (("card:1:available", -5),), "x"))
    lean = lean_decoder(Sample, {"count", "legs"})(stored)
    assert (lean.meta.partner_id, lean.count, lean.legs) == ("P1", 7, (("card:1:available", -5),))
    assert not hasattr(lean, "after")  # fields after the last one asked for are not read


def test_fields_asked_for_keep_their_defaults() -> None:
    lean = lean_decoder(Sample, {"owner", "count"})(encode(Sample(META)))
    assert (lean.owner, lean.count) == ("", 0)
