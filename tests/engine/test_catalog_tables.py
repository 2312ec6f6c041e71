"""The feature table groups of the catalog (catalog.contacts, .grants, .dags, .nft)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.catalog.nft import NftTokenRow


def _catalog(tmp_path: Path) -> Catalog:
    return Catalog.create(tmp_path / "catalog.db", {"vault_id": "test"})


def test_nft_mark_never_downgrades_a_preserved_token(tmp_path: Path) -> None:
    cat = _catalog(tmp_path)
    try:
        with cat.transaction():
            cat.nft.add_pending([("eth:1:0xa:1", "a #1")], "coll", 10)
            cat.nft.mark(
                "eth:1:0xa:1",
                "a #1",
                "preserved",
                {"name": "a #1", "state": "preserved", "updated_at": 11, "root": "bafyroot"},
            )
            cat.nft.mark(
                "eth:1:0xa:1",
                "a #1",
                "failed",
                {"name": "a #1", "state": "failed", "updated_at": 12, "error": "gone"},
            )
        assert cat.nft.tokens(collection="coll") == [
            NftTokenRow(
                "eth:1:0xa:1",
                "a #1",
                "coll",
                "preserved",
                "bafyroot",
                None,
                "[]",
                None,
                "gone",
                12,
                None,
            )
        ]
        assert cat.nft.states() == {"eth:1:0xa:1": "preserved"}
        assert cat.nft.tokens(collection="other") == []
    finally:
        cat.close()


def test_nft_mark_refuses_a_column_it_may_not_set(tmp_path: Path) -> None:
    cat = _catalog(tmp_path)
    try:
        with pytest.raises(ValueError, match="verified_at"):
            cat.nft.mark("s", "n", "pending", {"updated_at": 1, "verified_at": 2})
        assert cat.nft.name_of("s") is None
    finally:
        cat.close()


def test_contacts_and_tag_policies(tmp_path: Path) -> None:
    cat = _catalog(tmp_path)
    try:
        cat.contacts.add("did:key:z1", "bob", "{card}", 5)
        assert cat.contacts.name_taken("bob", "did:key:z2")
        assert not cat.contacts.name_taken("bob", "did:key:z1")
        assert cat.contacts.card("bob") == cat.contacts.card("did:key:z1") == "{card}"
        cat.contacts.set_policy("health", never_share=True)
        cat.contacts.set_policy("work", never_share=False)
        assert cat.contacts.never_share() == {"health"}
        cat.contacts.remove("did:key:z1")
        assert cat.contacts.all() == [] and cat.contacts.card("bob") is None
    finally:
        cat.close()


def test_grant_lookup_by_prefix_and_revocation(tmp_path: Path) -> None:
    cat = _catalog(tmp_path)
    try:
        gid = bytes.fromhex("00ff" * 8)
        row = cat.grants.add(gid, "did:key:z1", None, {"items": []}, 1, None, b"k", "tok", [])
        assert [g.row for g in cat.grants.by_prefix("00FF00FF")] == [row]
        assert cat.grants.by_prefix("FF") == []
        cat.grants.mark_revoked(row, 9)
        (listed,) = cat.grants.all()
        assert (listed.state, listed.revoked_at, listed.scope) == ("revoked", 9, {"items": []})
        assert cat.grants.active() == [] and cat.grants.token(row) == "tok"
    finally:
        cat.close()
