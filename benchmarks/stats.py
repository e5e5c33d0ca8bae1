"""Latency statistics shared by the load generator (`loyalty-ledger bench`) and the demo's
report, so every p50 and p99 in the README is computed the same way."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th quantile (0 < q <= 1) of `values` by the nearest-rank method: the smallest
    observed value that at least q of all values are less than or equal to, i.e. the
    ceil(q * n)-th smallest of n (1-based). No interpolation, so the answer is always a
    latency that was actually measured; p99 of 100 values is the 99th smallest, p50 of an even
    count the lower of the two middle values. None when there are no values.

    q * n is rounded to 9 decimals before the ceiling so that float noise (0.29 * 100 is
    28.999999999999996) cannot move the rank.
    """
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    rank = math.ceil(round(q * len(ordered), 9))
    return ordered[min(len(ordered), max(1, rank)) - 1]
