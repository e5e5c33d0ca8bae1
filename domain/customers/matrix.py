"""The value matrix: customers by net spend (sales) and by gross margin over a period, in four
quadrants split at two points, by default the period's medians (the lower median: the middle
value, or the lower of the two middle values). A value above its split point is high; a value
equal to it is low (so when every customer spent the same, all are low sales)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

QUADRANTS = ("high_sales_high_margin", "low_sales_high_margin", "high_sales_low_margin",
             "low_sales_low_margin")


def lower_median(values: list[int]) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def quadrant(sales: int, margin: int, sales_split: int, margin_split: int) -> str:
    high_sales, high_margin = sales > sales_split, margin > margin_split
    if high_margin:
        return QUADRANTS[0] if high_sales else QUADRANTS[1]
    return QUADRANTS[2] if high_sales else QUADRANTS[3]


class Quadrant(msgspec.Struct, frozen=True):
    quadrant: str
    customers: int
    sales_minor: int
    margin_minor: int


class Matrix(msgspec.Struct, frozen=True):
    first_day: str
    last_day: str
    sales_split_minor: int
    margin_split_minor: int
    quadrants: list[Quadrant]


def matrix(figures: Mapping[str, tuple[int, int]], first_day: str, last_day: str,
           sales_split: int | None = None, margin_split: int | None = None) -> Matrix:
    """`figures`: customer -> (sales, margin) over the period."""
    if sales_split is None:
        sales_split = lower_median([s for s, _ in figures.values()])
    if margin_split is None:
        margin_split = lower_median([m for _, m in figures.values()])
    sums = {q: [0, 0, 0] for q in QUADRANTS}
    for sales, margin in figures.values():
        row = sums[quadrant(sales, margin, sales_split, margin_split)]
        row[0] += 1
        row[1] += sales
        row[2] += margin
    return Matrix(first_day, last_day, sales_split, margin_split,
                  [Quadrant(q, *sums[q]) for q in QUADRANTS])
