"""`init --split --place SPANS=URL`: every partition's server, and each bad option refused with
a message naming it (ledger/partitioned.py parse_places)."""

from __future__ import annotations

import pytest

from ledger.partitioned import parse_places, with_password, without_password
from ledger.store import ConfigError

HOME = "postgresql://postgres@127.0.0.1:5432/ledger"
OTHER = "postgresql://postgres@127.0.0.1:5433/ledger2"


def test_ranges_single_partitions_and_lists_place_partitions():
    assert parse_places([], 4, HOME) == [HOME] * 4
    assert parse_places([f"2-3={OTHER}"], 4, HOME) == [HOME, HOME, OTHER, OTHER]
    assert parse_places([f"1,3={OTHER}"], 4, HOME) == [HOME, OTHER, HOME, OTHER]
    assert parse_places([f"0={OTHER}", f"0-1,3={HOME}"], 4, HOME) == [HOME] * 4  # last wins


@pytest.mark.parametrize(("place", "says"), [
    (f"x={OTHER}", "expected FIRST-LAST=URL"),
    (f"2-9={OTHER}", "partitions are 0..3"),
    (f"3-1={OTHER}", "partitions are 0..3"),
    ("1-2", "needs a URL"),
    ("1-2=", "needs a URL"),
    ("1=sqlite:///x.db", "PostgreSQL only"),
])
def test_a_bad_place_is_refused_naming_it(place, says):
    with pytest.raises(ConfigError, match=says) as refused:
        parse_places([place], 4, HOME)
    assert repr(place) in str(refused.value)


def test_a_placed_url_is_stored_without_its_password_and_opened_with_the_ledgers():
    stored = without_password("postgresql://app:s%40cret@db2:5433/ledger")
    assert stored == "postgresql://app@db2:5433/ledger"
    assert with_password(stored, "postgresql://app:s%40cret@db1/ledger") == (
        "postgresql://app:s%40cret@db2:5433/ledger")
    assert with_password(OTHER, HOME) == OTHER  # no password anywhere: unchanged
