"""The customer pyramid: customers ranked by net spend over a period.

A = the top 1 % of the period's customers, B = the top 5 % without A, C = the top 20 %
without A and B, D = the rest. With n customers the top p % is the first ceil(p x n / 100)
ranks (so A always has a customer when there is one; with fewer than 20 customers B may be
empty).

Ties: customers with equal spend are never split across levels. A group of equal spend takes
the level of its best rank, so a tie group that straddles a boundary goes whole to the higher
level (that level is then larger than its quota and the next level starts after the group).
Customers whose net spend is zero or negative (returns took back everything) are always D.
Order within a level (for lists): spend descending, then customer reference.

Movement: each customer's level in the previous period of the same length against this one;
"-" stands for "not a customer in that period".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import msgspec

from domain.customers.activity import share_bps

LEVELS = ("A", "B", "C", "D")
QUOTAS_BPS = (100, 500, 2_000)  # cumulative top shares of customers: 1 %, 5 %, 20 %
NONE = "-"


def quota(n: int, bps: int) -> int:
    return (n * bps + 9_999) // 10_000  # ceil(n x bps / 10000)


def ranked(spend: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(spend.items(), key=lambda item: (-item[1], item[0]))


def levels(spend: Mapping[str, int]) -> dict[str, str]:
    """customer -> level, by the rule above."""
    order = ranked(spend)
    n = len(order)
    bounds = [quota(n, bps) for bps in QUOTAS_BPS]
    found: dict[str, str] = {}
    i = 0
    while i < n:
        j = i
        while j < n and order[j][1] == order[i][1]:
            j += 1
        level = "D" if order[i][1] <= 0 else next(
            (name for name, bound in zip(LEVELS, bounds, strict=False) if i < bound), "D")
        for customer, _ in order[i:j]:
            found[customer] = level
        i = j
    return found


class Level(msgspec.Struct, frozen=True):
    level: str
    customers: int
    spend_minor: int
    share_bps: int  # of the period's net spend
    min_spend_minor: int  # the level's smallest and largest customer spend (0 when empty)
    max_spend_minor: int


class Move(msgspec.Struct, frozen=True):
    previous: str  # a level or "-"
    current: str
    customers: int


class Pyramid(msgspec.Struct, frozen=True):
    first_day: str
    last_day: str
    customers: int
    spend_minor: int
    levels: list[Level]
    movement: list[Move]


def pyramid(spend: Mapping[str, int], previous_spend: Mapping[str, int], first_day: str,
            last_day: str) -> Pyramid:
    current = levels(spend)
    total = sum(spend.values())
    rows = []
    for name in LEVELS:
        members = [spend[c] for c, level in current.items() if level == name]
        rows.append(Level(name, len(members), sum(members), share_bps(sum(members), total),
                          min(members, default=0), max(members, default=0)))
    before = levels(previous_spend)
    moved: Counter[tuple[str, str]] = Counter()
    for customer in current.keys() | before.keys():
        moved[(before.get(customer, NONE), current.get(customer, NONE))] += 1
    order = {name: i for i, name in enumerate((*LEVELS, NONE))}
    movement = [Move(a, b, n) for (a, b), n in sorted(
        moved.items(), key=lambda item: (order[item[0][0]], order[item[0][1]]))]
    return Pyramid(first_day, last_day, len(spend), total, rows, movement)
