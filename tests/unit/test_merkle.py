"""RFC 6962 Merkle trees (domain/audit/merkle.py) against Certificate Transparency's published
test vectors, and the inclusion proofs against the RFC's recursive definition."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.audit import chain, merkle

# certificate-transparency/cpp/merkletree/merkle_tree_test.cc: the roots of the first n of
# these eight leaves.
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert merkle.root([]).hex() == \
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("n", range(1, 9))
def test_roots_equal_certificate_transparencys_vectors(n: int) -> None:
    leaves = [merkle.leaf_hash(bytes.fromhex(d)) for d in CT_LEAVES[:n]]
    assert merkle.root(leaves).hex() == CT_ROOTS[n - 1]
    assert merkle.Tree(leaves).root.hex() == CT_ROOTS[n - 1]


@given(st.integers(1, 80), st.data())
def test_every_proof_is_the_rfcs_path_and_verifies_only_for_its_leaf(n: int,
                                                                     data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree = merkle.Tree(leaves)
    m = data.draw(st.integers(0, n - 1))
    path = tree.proof(m)
    assert path == merkle.inclusion_proof(leaves, m)
    assert merkle.verify_inclusion(leaves[m], m, n, path, tree.root)
    other = data.draw(st.integers(0, n - 1))
    if leaves[other] != leaves[m]:
        assert not merkle.verify_inclusion(leaves[other], m, n, path, tree.root)
    if n > 1:
        assert not merkle.verify_inclusion(leaves[m], (m + 1) % n, n, path, tree.root)
    assert not merkle.verify_inclusion(leaves[m], m, n, [*path, leaves[m]], tree.root)


def test_a_leaf_and_a_checkpoint_message_byte_for_byte() -> None:
    """The README's worked example: what an auditor's own verifier must reproduce."""
    import uuid

    stream = uuid.UUID("00000000-0000-0000-0000-000000000001")
    data = chain.leaf_data(7, stream, 2, "card.loaded.v1", b"\x91\x01")
    assert data.hex() == ("0000000000000007" "00000000000000000000000000000001"
                          "0000000000000002" "0000000e" + b"card.loaded.v1".hex()
                          + "00000002" "9101")
    leaf = chain.leaf_hash(7, stream, 2, "card.loaded.v1", b"\x91\x01")
    assert leaf == hashlib.sha256(b"\x00" + data).digest()
    assert leaf.hex() == README_LEAF
    assert chain.link(chain.GENESIS, leaf) == hashlib.sha256(bytes(32) + leaf).digest()
    assert chain.link(chain.GENESIS, leaf).hex() == README_CHAIN
    checkpoint = chain.Checkpoint(0, 7, 7, 1, leaf.hex(), chain.GENESIS.hex(),
                                  chain.link(chain.GENESIS, leaf).hex(), 0, "00" * 8)
    assert checkpoint.message().startswith(b"loyalty-ledger/checkpoint/v1 partition=0 first=7 ")
    v2 = msgspec.structs.replace(checkpoint, entities="ab" * 32, entity_leaves=3)
    assert v2.message() == (
        f"loyalty-ledger/checkpoint/v2 partition=0 first=7 last=7 size=1 root={leaf.hex()} "
        f"entities={'ab' * 32} entity_leaves=3 chain_before={'00' * 32} "
        f"chain={README_CHAIN} at_us=0 key=0000000000000000").encode()


README_LEAF = "49f5e02db125067a29b04717068797d4eb8064c85fdd7ae4b2f6b5ff43a36489"
README_CHAIN = "bccb7fa851fd7dc13a69f0d3e88a0590f82121c85d22270ffce1d29ee1d78454"
