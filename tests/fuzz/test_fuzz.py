"""The fuzz suite: generated calls to every RPC of a real server, on SQLite and PostgreSQL.

Each store gets one server for the whole module (starting one per case would cost more than
the cases). The tests run in this order on it and each fails with the findings it added:
1. unary calls: valid requests (writes really happen), one-field mutations of valid requests
   and whole random messages, for every unary RPC of the four services;
2. Batch streams: valid, mutated, random and mixed operations, messages of 0, 1..1000 and
   1001 operations, streams the client cancels after a reply or before its first message;
3. every card the run touched: its movements end at its balance and held amount, and again
   after the clock moved past every hold's lifetime (an expired hold must show as a movement);
4. the server still answers the health check SERVING and logged no error or traceback.

Budget: --fuzz-seconds (per store; about 3/4 unary, 1/4 Batch), --fuzz-seed, --fuzz-calls.
"""

from __future__ import annotations

import pytest

from tests.fuzz.conftest import Target
from tests.fuzz.harness import Fuzzer, run_for

pytestmark = [pytest.mark.slow, pytest.mark.fuzz]

HOLD_LIFETIME_MAX_S = 31 * 86_400  # DefineCardClass accepts at most 31 days


def _new_findings(fuzzer: Fuzzer, before: set[tuple[str, str, str]]) -> list[str]:
    return [f"[{f.kind}] {f.rpc} x{f.count}: {f.detail}\n    e.g. {f.example}"
            for key, f in fuzzer.findings.items() if key not in before]


def _assert_none(fuzzer: Fuzzer, before: set[tuple[str, str, str]]) -> None:
    found = _new_findings(fuzzer, before)
    assert not found, f"{len(found)} findings on {fuzzer.store_name}:\n" + "\n".join(found)


def test_unary_calls(target: Target) -> None:
    fuzzer = target.fuzzer
    before = set(fuzzer.findings)
    target.elapsed += run_for(target.budget["seconds"] * 0.75, target.budget["calls"],
                              fuzzer.step, fuzzer)
    _assert_none(fuzzer, before)


def test_batch_streams(target: Target) -> None:
    fuzzer = target.fuzzer
    before = set(fuzzer.findings)
    calls_before = fuzzer.calls
    budget = target.budget["calls"]
    target.elapsed += run_for(target.budget["seconds"] * 0.25,
                              calls_before + budget if budget else 0,
                              fuzzer.batch_stream, fuzzer)
    _assert_none(fuzzer, before)


def test_cards_are_explained_by_their_movements(target: Target) -> None:
    fuzzer, world = target.fuzzer, target.world
    before = set(fuzzer.findings)
    # Every card an accepted call named; a bounded, seeded sample of them on short runs (the
    # world's own cards, with the coupon and the short hold, always).
    cards = sorted(world.touched)
    limit = max(60, int(target.budget["seconds"] * 3))
    core = [c for c in cards if c.startswith("60000000")]
    rest = [c for c in cards if c not in core]
    chosen = core + fuzzer.rng.sample(rest, k=min(len(rest), limit))
    # A hold that is sure to be open when the clock moves (the fuzzing may have captured or
    # voided the world's own): a new card of the class whose holds last a minute.
    chosen.append(target.world.hold_card())
    for number in chosen:
        fuzzer.check_movements(number, "after the run")
    target.clock.advance(HOLD_LIFETIME_MAX_S + 86_400)
    for number in chosen:
        fuzzer.check_movements(number, "after every hold expired")
    _assert_none(fuzzer, before)


def test_server_is_healthy_and_logged_no_error(target: Target) -> None:
    fuzzer = target.fuzzer
    before = set(fuzzer.findings)
    fuzzer.check_health()
    fuzzer.check_log()
    _assert_none(fuzzer, before)
