"""Hypothesis on the matching (domain/reconcile/matching.py): every row of either side lands
in exactly one class, a file equal to the ledger's own rows matches fully, the order of the
file changes nothing, and an independent count per key agrees with the classes."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.reconcile.journal import TYPES, JournalRow, read_csv, write_csv
from domain.reconcile.matching import MatchClass, match

# A small vocabulary so keys collide often (duplicates, mismatches).
rows = st.builds(JournalRow, st.sampled_from(["S1", "S2"]), st.sampled_from(["r1", "r2", "r3"]),
                 st.sampled_from(TYPES[:3]), st.integers(0, 3), st.sampled_from(["USD", "EUR"]))
sides = st.tuples(st.lists(rows, max_size=25), st.lists(rows, max_size=25))


def _placed(items, side: int) -> Counter:
    return Counter(getattr(item, ("file_row", "ledger_row")[side]) for item in items
                   if getattr(item, ("file_row", "ledger_row")[side]) is not None)


@settings(max_examples=300, deadline=None)
@given(sides)
def test_every_row_lands_in_exactly_one_class(both):
    theirs, ours = both
    found = match(theirs, ours, "P1/1")
    # each row appears in exactly one item (as a multiset: equal rows are distinct rows)
    assert _placed(found.items, 0) == Counter(theirs)
    assert _placed(found.items, 1) == Counter(ours)
    for item in found.items:
        two = item.file_row is not None and item.ledger_row is not None
        assert two == (item.match_class in (MatchClass.MATCHED, MatchClass.AMOUNT_MISMATCH))
        if item.match_class == MatchClass.MATCHED:
            assert item.file_row == item.ledger_row and item.break_id == ""
        if item.match_class == MatchClass.AMOUNT_MISMATCH:
            assert item.file_row.key == item.ledger_row.key
            assert item.file_row != item.ledger_row
    ids = [item.break_id for item in found.breaks()]
    assert len(set(ids)) == len(ids) and all(len(i) == 16 for i in ids)
    assert sum(found.counts()) == len(found.items)


@settings(max_examples=200, deadline=None)
@given(sides)
def test_an_independent_count_per_key_agrees(both):
    """Per key: pairs = min(file, ledger); the rows beyond are lone (missing) when the other
    side has none, else duplicates; matched pairs are the common multiset of (amount,
    currency) values."""
    theirs, ours = both
    found = match(theirs, ours, "P1/1")
    by_class: Counter = Counter()
    for key in {r.key for r in theirs + ours}:
        mine = [r for r in theirs if r.key == key]
        other = [r for r in ours if r.key == key]
        common = sum((Counter(mine) & Counter(other)).values())
        pairs = min(len(mine), len(other))
        by_class[MatchClass.MATCHED] += common
        by_class[MatchClass.AMOUNT_MISMATCH] += pairs - common
        for rest, counterpart, lone, dup in (
                (len(mine) - pairs, other, MatchClass.MISSING_IN_LEDGER,
                 MatchClass.DUPLICATE_IN_FILE),
                (len(other) - pairs, mine, MatchClass.MISSING_IN_FILE,
                 MatchClass.DUPLICATE_IN_LEDGER)):
            if rest and not counterpart:
                by_class[lone] += 1
                by_class[dup] += rest - 1
            else:
                by_class[dup] += rest
    assert found.counts() == tuple(by_class[c] for c in MatchClass)


@settings(max_examples=200, deadline=None)
@given(st.lists(rows, max_size=40), st.randoms())
def test_the_ledgers_own_rows_match_fully_in_any_order(ours, rng):
    """A file equal to the ledger's own export (written and read back as CSV, shuffled)
    matches every row, whatever duplicates the ledger holds."""
    exported, bad = read_csv(write_csv(ours))
    assert bad == []
    rng.shuffle(exported)
    found = match(exported, ours, "P1/1")
    assert found.breaks() == ()
    assert found.counts()[0] == len(ours)
    assert found.file_digest == match(list(ours), [], "P1/1").file_digest


@settings(max_examples=150, deadline=None)
@given(sides, st.randoms())
def test_the_same_file_in_another_order_finds_the_same_result(both, rng):
    theirs, ours = both
    shuffled = list(theirs)
    rng.shuffle(shuffled)
    assert match(theirs, ours, "P1/1") == match(shuffled, ours, "P1/1")
    assert match(theirs, ours, "P1/1").breaks() == () or (
        match(theirs, ours, "P1/2").breaks()[0].break_id
        != match(theirs, ours, "P1/1").breaks()[0].break_id)  # ids name the period
