"""A checkpoint's entity tree (domain/audit/entities.py): an entity's leaf proves that a package
holds all of its events in a checkpoint, its neighbours that it had none; every forgery of a
proof or of the events it covers is refused, naming what is wrong."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.audit import entities as en
from domain.audit import merkle


def _leaves(tag: str, n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"{tag}/{i}".encode()) for i in range(n)]


def _check(tree: en.EntityTree, entity: str, leaves: list[bytes],
           proof: en.EntityProof | None = None) -> str | None:
    return en.check(proof or tree.proof(1, entity), entity, leaves, tree.root, tree.size)


@pytest.mark.parametrize(("issuer", "partner", "store", "expected"), [
    ("P1", "P1", "S1", ["P1", "S1"]),  # P1's card at P1's store
    ("P1", "P2", "A1", ["P1", "P2", "A1"]),  # P1's card at P2's lounge: both partners
    ("", "P2", "", ["P2"]),  # not a card's event, by P2's manager
    ("", "", "", []),  # the alliance ADMIN's registry event: no entity's
    ("P1", "", "P1", ["P1"]),  # a store registered as its own entity, named like its partner
])
def test_the_entities_of_an_event(issuer: str, partner: str, store: str,
                                  expected: list[str]) -> None:
    assert en.entities_of(issuer, partner, store) == expected


EVENTS = {"P1": _leaves("p1", 5), "P2": _leaves("p2", 2), "S1": _leaves("s1", 4),
          "A1": _leaves("a1", 1)}


@pytest.mark.parametrize("entity", sorted(EVENTS))
def test_an_entitys_own_events_pass_and_any_change_to_them_is_named(entity: str) -> None:
    tree = en.EntityTree(EVENTS)
    mine = EVENTS[entity]
    assert _check(tree, entity, mine) is None
    assert "1 left out" in (_check(tree, entity, mine[:-1]) or "")
    assert "1 not its own (added?)" in (_check(tree, entity, [*mine, _leaves("x", 1)[0]]) or "")
    replaced = [*mine[:-1], _leaves("x", 1)[0]]
    assert "differ from the signed ones" in (_check(tree, entity, replaced) or "")
    if len(mine) > 1:  # the order is signed too
        assert "differ from the signed ones" in (_check(tree, entity, mine[::-1]) or "")


def test_a_forged_count_or_digest_is_not_in_the_signed_tree() -> None:
    tree = en.EntityTree(EVENTS)
    proof = tree.proof(1, "P1")
    forged = msgspec.structs.replace(proof, count=proof.count - 1)
    assert "is not in the signed entity tree" in (_check(tree, "P1", EVENTS["P1"][:-1], forged)
                                                  or "")
    other = msgspec.structs.replace(proof, events_digest=en.events_digest(EVENTS["P1"][:-1])
                                    .hex())
    assert "is not in the signed entity tree" in (_check(tree, "P1", EVENTS["P1"], other) or "")
    # another entity's leaf offered as P1's
    assert "is not in the signed entity tree" in (_check(
        tree, "P1", EVENTS["P2"], msgspec.structs.replace(tree.proof(1, "P2"), entity="P1"))
        or "")
    assert "not 'P1'" in (_check(tree, "P1", EVENTS["P2"], tree.proof(1, "P2")) or "")


@pytest.mark.parametrize("absent", ["0", "B", "Q", "Z", "P10"])  # before, between, after
def test_an_entity_without_events_shows_its_neighbours(absent: str) -> None:
    tree = en.EntityTree(EVENTS)  # sorted: A1 P1 P2 S1
    proof = tree.proof(1, absent)
    assert proof.count == 0
    assert _check(tree, absent, []) is None
    assert "has none" in (_check(tree, absent, EVENTS["P1"][:1]) or "")
    # one neighbour dropped: the other is not the first or last leaf, or nothing is left
    for side in ("before", "after"):
        if getattr(proof, side) is not None:
            cut = msgspec.structs.replace(proof, **{side: None})
            assert _check(tree, absent, [], cut) is not None


def test_non_adjacent_or_misplaced_neighbours_are_refused() -> None:
    tree = en.EntityTree(EVENTS)  # A1 P1 P2 S1
    a1, s1 = tree.proof(1, "A1"), tree.proof(1, "S1")
    assert a1.count and s1.count
    far = en.EntityProof(1, "P15", before=tree.neighbour(0), after=tree.neighbour(3))
    assert "not adjacent" in (_check(tree, "P15", [], far) or "")
    wrong_side = en.EntityProof(1, "B", before=tree.neighbour(1), after=tree.neighbour(2))
    assert "does not sort before" in (_check(tree, "B", [], wrong_side) or "")
    not_last = en.EntityProof(1, "Z", before=tree.neighbour(2))
    assert "is not the last leaf" in (_check(tree, "Z", [], not_last) or "")
    not_first = en.EntityProof(1, "0", after=tree.neighbour(1))
    assert "is not the first leaf" in (_check(tree, "0", [], not_first) or "")
    forged = msgspec.structs.replace(tree.neighbour(3), summary="00" * 32)
    assert "not in the signed entity tree" in (_check(
        tree, "Z", [], en.EntityProof(1, "Z", before=forged)) or "")
    assert "no neighbouring leaves" in (_check(tree, "Z", [], en.EntityProof(1, "Z")) or "")


def test_an_empty_tree_proves_every_entity_absent() -> None:
    tree = en.EntityTree({})
    assert tree.root == merkle.EMPTY_ROOT and tree.size == 0
    assert _check(tree, "P1", []) is None
    assert "has none" in (_check(tree, "P1", _leaves("x", 1)) or "")


@given(st.dictionaries(st.text("ABPS0123é", min_size=1, max_size=3), st.integers(1, 4),
                       max_size=12),
       st.text("ABPS0123é", min_size=1, max_size=3))
def test_any_tree_proves_exactly_each_entitys_events(counts: dict[str, int], entity: str
                                                     ) -> None:
    events = {e: _leaves(e, n) for e, n in counts.items()}
    tree = en.EntityTree(events)
    mine = events.get(entity, [])
    assert _check(tree, entity, mine) is None
    if mine:
        assert _check(tree, entity, mine[1:]) is not None
    else:
        assert _check(tree, entity, _leaves("x", 1)) is not None


def test_the_readme_entity_vector() -> None:
    """The README's worked example, recomputed here with hashlib alone."""
    event_leaf = bytes.fromhex(README_LEAF)
    digest = hashlib.sha256(event_leaf).digest()
    summary = hashlib.sha256((1).to_bytes(8, "big") + digest).digest()
    data = (2).to_bytes(4, "big") + b"P2" + summary
    leaf = hashlib.sha256(b"\x00" + data).digest()
    assert (digest.hex(), summary.hex(), leaf.hex()) == (README_DIGEST, README_SUMMARY,
                                                         README_ENTITY_LEAF)
    assert en.events_digest([event_leaf]) == digest and en.summary(1, digest) == summary
    assert en.leaf_data("P2", summary) == data and en.leaf_hash("P2", summary) == leaf
    # the tree of P1, P2 and S1, one event each: ((P1, P2), S1)
    p1, s1 = (hashlib.sha256(b"\x00" + (2).to_bytes(4, "big") + name + summary).digest()
              for name in (b"P1", b"S1"))
    root = hashlib.sha256(b"\x01" + hashlib.sha256(b"\x01" + p1 + leaf).digest() + s1).digest()
    tree = en.EntityTree({"S1": [event_leaf], "P2": [event_leaf], "P1": [event_leaf]})
    assert tree.root == root and root.hex() == README_ENTITY_ROOT


README_LEAF = "49f5e02db125067a29b04717068797d4eb8064c85fdd7ae4b2f6b5ff43a36489"
README_DIGEST = "83596e7c463ee33b7e654206466aa0b81ca00d115b253df66f5dd25e480a2581"
README_SUMMARY = "657c72ab62bd8a052ef1287ee957362a2d6ae8a59298edbb05c952dd6ceb36ef"
README_ENTITY_LEAF = "a3fa50410b3dcd7575cea88a358ac6aa0513743805d7dc6292d804e53ddc8279"
README_ENTITY_ROOT = "22a739c90f07ca1d816ee0900d14a08dfbf2729b80ab4933b9cf697644838018"
