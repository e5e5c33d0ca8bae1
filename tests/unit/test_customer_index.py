"""The customer views computed from the rows in memory (projections/customer_index.py: numba
kernels and numpy) equal the plain-Python views of domain/customers over the same rows, for
every view, scope, as-of day and period length, on random rows given in several pieces (a
key's sums split across pieces, as the index keeps them), with ties, returns and empty
scopes."""

from __future__ import annotations

import random

import msgspec
import numpy as np
import pytest

from domain.customers import activity as act
from domain.customers import rfm as rf
from domain.customers import views
from projections import customer_index as ci
from projections import customers

ZONES = {"S1": "Asia/Shanghai", "S2": "Asia/Shanghai", "A1": "Europe/Paris",
         "B1": "America/New_York"}
PARTNERS = {"S1": "P1", "S2": "P1", "A1": "P2", "B1": "P3"}
FIRST = act.day_number("2025-01-01")


def random_rows(seed: int, customers_n: int = 60, rows_n: int = 900) -> list[act.Activity]:
    rng = random.Random(seed)
    rows = []
    for _ in range(rows_n):
        customer = f"c{rng.randrange(customers_n)}"
        store = rng.choice(("S1", "S2", "A1", "B1") if rng.random() < 0.9 else ("S1",))
        day = FIRST + int(rng.triangular(0, 700, 650))
        returned = rng.random() < 0.08
        spend = rng.choice((100, 100, 250, rng.randint(-50, 20_000)))  # ties
        rows.append(act.Activity(customer, store, PARTNERS[store], day,
                                 rng.choice((9, 12, 18, rng.randrange(24))),
                                 0 if returned else rng.randint(1, 2),
                                 -abs(spend) // 3 if returned else spend,
                                 rng.randint(-10, 900)))
    return rows


def utc_of(r: act.Activity) -> int:
    return customers.utc_hour(r.day, r.hour, ZONES[r.store_id])


def expected(rows: list[act.Activity], name: str, as_of: int, months: int, partner: str,
             store_id: str) -> object:
    mine = [r for r in rows if r.day <= as_of and (not partner or r.partner_id == partner)
            and (not store_id or r.store_id == store_id)]
    if name == "pyramid":
        return views.pyramid(mine, as_of, months)
    if name == "matrix":
        return views.matrix(mine, as_of, months)
    if name == "rfm":
        return views.rfm(mine, as_of, months)
    if name == "churn":
        return views.churn(mine, as_of, months)
    if name == "visits":
        return views.visit_times(mine, as_of, months)
    period = act.period_ending(as_of, months)
    elsewhere: set[str] = set()
    if partner:
        seen = {r.customer for r in mine if period.first <= r.day}
        elsewhere = {r.customer for r in rows if r.partner_id != partner and r.customer in seen
                     and period.first <= r.day <= as_of}
    return views.affinity(mine, as_of, months, elsewhere, flows=not partner and not store_id,
                          top=7, when=utc_of)


def built(rows: list[act.Activity], pieces: int) -> ci.ActivityIndex:
    index = ci.ActivityIndex(zones=ZONES)
    step = len(rows) // pieces + 1
    for start in range(0, len(rows), step):
        index.add(rows[start:start + step])
    return index


SCOPES = (("", ""), ("P1", ""), ("P2", ""), ("P1", "S2"), ("", "A1"), ("P9", ""))


@pytest.mark.parametrize(("seed", "people"), [(1, 60), (2, 60), (3, 8)])  # 8: ~100 visits each
def test_every_view_from_memory_equals_the_plain_python_view(seed: int, people: int) -> None:
    rows = random_rows(seed, people)
    index = built(rows, pieces=seed + 1)
    for offset in (120, 400, 690, 700):
        as_of = FIRST + offset
        for months in (1, 3, 12):
            for partner, store_id in SCOPES:
                for name in customers.VIEWS:
                    got = ci.compute(index, name, as_of, months, partner, store_id, top=7)
                    assert got == expected(rows, name, as_of, months, partner, store_id), (
                        name, offset, months, partner, store_id)


def test_split_sums_and_a_customer_who_only_returned() -> None:
    a = act.Activity("a", "S1", "P1", FIRST + 10, 9, 1, 500, 50)
    rows = [a, a._replace(visits=0, spend_minor=-200), a._replace(customer="z", visits=0,
                                                                  spend_minor=-30)]
    index = built(rows, pieces=3)
    for name in customers.VIEWS:
        assert ci.compute(index, name, FIRST + 20, 1, top=7) == expected(
            rows, name, FIRST + 20, 1, "", "")


def test_an_empty_index_gives_empty_views() -> None:
    index = ci.ActivityIndex()
    for name in customers.VIEWS:
        assert ci.compute(index, name, FIRST, 12, top=7) == expected([], name, FIRST, 12, "",
                                                                    "")


@pytest.mark.parametrize("values", [[5], [5, 5], [3] * 7, [1, 1, 1, 1, 1, 1, 2, 3, 5, 9],
                                    list(range(1, 11)), [0, -4, 7, 7, 7, 2]])
def test_buckets_in_memory_equal_the_rfm_rule(values: list[int]) -> None:
    score, cuts = ci.buckets(np.array(values, np.int64))
    assert cuts == rf.thresholds(values)
    assert score.tolist() == [rf.buckets(values)[v] for v in values]


def test_listed_cuts_the_customer_lists_and_nothing_else() -> None:
    index = built(random_rows(4), pieces=2)
    as_of = FIRST + 690
    full_rfm, cut_rfm = (ci.compute(index, "rfm", as_of, 12, listed=n) for n in (None, 5))
    assert len(full_rfm.customers) > 5
    assert cut_rfm == msgspec.structs.replace(full_rfm, customers=full_rfm.customers[:5])
    full, cut = (ci.compute(index, "churn", as_of, 3, listed=n) for n in (None, 1))
    assert len(full.became_at_risk) > 1
    assert cut == msgspec.structs.replace(full, became_at_risk=full.became_at_risk[:1])


def test_ranks_follow_the_names_as_new_ones_arrive() -> None:
    rng = random.Random(5)
    codes = ci.Codes()
    for i in range(6):  # longer names later, none some rounds
        codes.encode([f"c{rng.randrange(500)}" for _ in range(rng.randrange(0, 60))]
                     + ["b" * i * 3])
        ranks = codes.rank().tolist()
        assert sorted(range(len(codes.names)), key=ranks.__getitem__) == sorted(
            range(len(codes.names)), key=codes.names.__getitem__)


def test_compaction_keeps_every_answer_and_one_row_per_key(monkeypatch) -> None:
    """Merges put a key's new rows beside its old ones; compaction sums them into one, so a
    process following a busy log keeps the index at the table's size. The views do not
    change."""
    monkeypatch.setattr(ci, "COMPACT_MIN", 1)  # compact at every tenth of the index
    rows = random_rows(4, 30, 1_200)
    index = built(rows, pieces=12)
    index.columns.compact()
    keys = {(r.customer, r.day, r.store_id, r.hour) for r in rows}
    assert len(index.columns.key) == len(keys)
    assert (np.diff(index.columns.key) >= 0).all()  # still sorted for the next merge
    for offset in (400, 700):
        for partner, store_id in SCOPES[:4]:
            for name in customers.VIEWS:
                got = ci.compute(index, name, FIRST + offset, 12, partner, store_id, top=7)
                assert got == expected(rows, name, FIRST + offset, 12, partner, store_id), (
                    name, offset, partner, store_id)
