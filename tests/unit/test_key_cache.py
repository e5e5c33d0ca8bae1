"""The writer's request-key cache: what it returns is what was put, it never holds more than
its bound, and the oldest keys go first."""

from __future__ import annotations

from ledger.state import KeyCache
from ledger.store import KeyRow


def row(n: int, digest: bytes = b"h" * 16) -> KeyRow:
    return KeyRow("t:T1", f"request-{n}", digest, b"outcome %d" % n)


def test_a_key_comes_back_as_it_was_put():
    cache = KeyCache(10)
    cache.put(row(1))
    cache.put(row(2, digest=b""))  # a reversal marker or tombstone: no payload hash
    assert cache.get(("t:T1", "request-1")) == row(1)
    assert cache.get(("t:T1", "request-2")) == row(2, digest=b"")
    assert cache.get(("t:T2", "request-1")) is None
    cache.pop(("t:T1", "request-1"))
    assert cache.get(("t:T1", "request-1")) is None
    assert len(cache) == 1


def test_bounded_and_the_oldest_go_first():
    cache = KeyCache(10)
    for n in range(1, 101):
        cache.put(row(n))
        assert len(cache) <= 10
    assert all(cache.get(("t:T1", f"request-{n}")) == row(n) for n in range(96, 101))
    assert all(cache.get(("t:T1", f"request-{n}")) is None for n in range(1, 91))


def test_a_key_put_again_is_kept_once_and_as_new():
    cache = KeyCache(4)
    cache.put(row(1))
    cache.put(row(2))  # the young half is full: 1 and 2 are now the old half
    cache.put(row(1))
    assert len(cache) == 2
    cache.put(row(3))  # 1 and 3 become the old half, 2 is forgotten
    assert cache.get(("t:T1", "request-1")) == row(1)
    assert cache.get(("t:T1", "request-2")) is None
