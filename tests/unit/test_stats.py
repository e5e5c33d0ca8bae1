"""The one percentile of every p50 and p99 we print (demo report, bench table): nearest rank,
always an observed value, and float noise in q * n does not move the rank."""

from __future__ import annotations

import pytest

from benchmarks.stats import percentile

HUNDRED = [float(v) for v in range(1, 101)]  # 1.0 .. 100.0, so the k-th smallest is k


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([], 0.99, None),                     # nothing measured
    ([7.0], 0.5, 7.0),
    ([7.0], 0.99, 7.0),
    (HUNDRED, 0.99, 99.0),                # ceil(99.0) = 99th smallest, not the maximum
    (HUNDRED, 0.50, 50.0),
    (HUNDRED, 0.29, 29.0),                # 0.29 * 100 = 28.999999999999996 in floats
    (HUNDRED, 1.0, 100.0),
    ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),     # unsorted input; the lower middle of an even count
    ([float(v) for v in range(1, 11)], 0.99, 10.0),  # ceil(9.9) = 10th of 10
    ([float(v) for v in range(1, 201)], 0.99, 198.0),
])
def test_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


@pytest.mark.parametrize("q", [0.0, -0.5, 1.5])
def test_a_quantile_outside_0_to_1_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        percentile([1.0], q)
