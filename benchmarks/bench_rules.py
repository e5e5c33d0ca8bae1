"""pytest-benchmark: rule evaluation, kernel against the reference (see benchmarks/rules.py for
the one-run comparison with ratios, including the rule-engine package)."""

from __future__ import annotations

import pytest

from benchmarks.rules import RuleEngineEvaluator, random_baskets, spring_campaign
from domain.rules.reference import evaluate
from ledger.rule_kernel import compile_rule_set, encode_baskets, evaluate_batch, warm_up

RULE_SET = spring_campaign()
BASKETS = random_baskets(2_000)


@pytest.fixture(scope="module")
def compiled():  # type: ignore[no-untyped-def]
    warm_up()
    return compile_rule_set(RULE_SET)


def test_kernel_2000_baskets(benchmark, compiled):
    encoded = encode_baskets(compiled, BASKETS)
    points = benchmark(evaluate_batch, compiled, encoded).points
    assert int(points[0]) == evaluate(RULE_SET, BASKETS[0]).points


def test_kernel_with_encoding_2000_baskets(benchmark, compiled):
    benchmark(lambda: evaluate_batch(compiled, encode_baskets(compiled, BASKETS)))


def test_reference_2000_baskets(benchmark):
    awards = benchmark(lambda: [evaluate(RULE_SET, b) for b in BASKETS])
    assert len(awards) == len(BASKETS)


def test_rule_engine_100_baskets(benchmark):
    engine = RuleEngineEvaluator(RULE_SET)
    awards = benchmark(lambda: [engine.evaluate(b) for b in BASKETS[:100]])
    assert [a.points for a in awards] == [evaluate(RULE_SET, b).points for b in BASKETS[:100]]
