"""The CLI's one dataclass -> JSON helper gives the documents the commands printed before."""

from __future__ import annotations

from dataclasses import replace

from ownvault.cli.render import jsonable
from ownvault.core.cid import CID
from ownvault.engine.files.results import KN, ObjectInfo, ObjectListing, Usage
from ownvault.engine.ipfs.carimport import CarImport
from ownvault.engine.nft.results import (
    CollectionRun,
    PinOutcome,
    ReverifiedToken,
    TokenHealth,
    TokenOutcome,
)
from ownvault.engine.sharing.contacts import Contact, TagPolicy
from ownvault.engine.sharing.grants import Revocation
from ownvault.engine.store.repack import RepackResult

CID_TEXT = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_dataclasses_become_their_fields_and_lists_item_by_item() -> None:
    doc = {"contacts": [Contact("did:key:z1", None, 5)], "policy": TagPolicy("x", True)}
    assert jsonable(doc) == {
        "contacts": [{"did": "did:key:z1", "name": None, "added": 5}],
        "policy": {"tag": "x", "never_share": True},
    }


def test_a_value_with_a_text_form_stays_text() -> None:
    cid = CID.parse(CID_TEXT)
    assert jsonable({"cid": cid, "pair": (cid, 1)}) == {"cid": CID_TEXT, "pair": [CID_TEXT, 1]}


def test_revocation_json_has_repack_counts_only_when_it_re_encrypted() -> None:
    base = {
        "grant": "ab" * 16,
        "revoked": 7,
        "revocation_notices": 2,
        "refreshed_grants": 0,
        "objects_deleted": 3,
        "not_deleted": [],
    }
    again = Revocation("ab" * 16, True, 7, 2, 0, 3, [], None)
    assert jsonable(again) == base | {"already_revoked": True}
    rep = RepackResult(packs_read=1, packs_written=1, chunks_rekeyed=2, objects_deleted=1)
    first = Revocation("ab" * 16, False, 7, 2, 0, 3, [], rep)
    assert jsonable(first) == base | {
        "already_revoked": False,
        "packs_read": 1,
        "packs_written": 1,
        "chunks_kept": 0,
        "chunks_rekeyed": 2,
        "chunks_dropped": 0,
    }
    assert first.chunks_rekeyed == 2 and again.chunks_rekeyed == 0


def test_car_import_json_names_published_only_when_it_was() -> None:
    stored = CarImport("n", 1, CID_TEXT, 1, "kubo-v1", "profile", 2, 10, 3, 0, CID_TEXT)
    doc = jsonable(stored)
    assert isinstance(doc, dict) and "published" not in doc and doc["bytes"] == 10
    published = jsonable(replace(stored, published=f"ipfs://{CID_TEXT}"))
    assert isinstance(published, dict) and published["published"] == f"ipfs://{CID_TEXT}"


def test_files_results_keep_the_documents_keys() -> None:
    usage = Usage(1, 2, 3, 4, 5, 6, 7, 8, 9, 1.5, 2.0, KN(3, 5))
    doc = jsonable(usage)
    assert isinstance(doc, dict) and doc["policy"] == {"k": 3, "n": 5}
    assert set(doc) == {
        "objects",
        "versions",
        "logical_bytes",
        "latest_logical_bytes",
        "unique_bytes",
        "packed_bytes",
        "stored_bytes",
        "chunks",
        "packs",
        "dedup_ratio",
        "expansion",
        "policy",
    }
    listing = ObjectListing([ObjectInfo("a", 2, "file", 10, 1, 7, None, None, ["t"], 2)])
    assert jsonable(listing) == {
        "objects": [
            {
                "name": "a",
                "version": 2,
                "kind": "file",
                "size": 10,
                "files": 1,
                "created": 7,
                "cid": None,
                "cid_profile": None,
                "tags": ["t"],
                "versions": 2,
            }
        ]
    }


def test_nft_results_keep_the_documents_keys() -> None:
    health = TokenHealth(5, "ok", [PinOutcome("kubo", False, "provider", "down")], False)
    assert jsonable(ReverifiedToken("s", "n", "bafy", health)) == {
        "source": "s",
        "name": "n",
        "root": "bafy",
        "health": {
            "checked_at": 5,
            "copy": "ok",
            "pins": [{"target": "kubo", "ok": False, "how": "provider", "error": "down"}],
            "ok": False,
        },
    }
    run = CollectionRun(
        1,
        1,
        1,
        3,
        [
            TokenOutcome("a", "skipped"),
            TokenOutcome("b", "failed", error="gone"),
            TokenOutcome("c", "preserved", root="bafy", statuses={"verified": 2}),
        ],
    )
    assert jsonable(run) == {
        "preserved": 1,
        "skipped": 1,
        "failed": 1,
        "total": 3,
        "tokens": [
            {"source": "a", "outcome": "skipped"},
            {"source": "b", "outcome": "failed", "error": "gone"},
            {"source": "c", "outcome": "preserved", "root": "bafy", "statuses": {"verified": 2}},
        ],
    }
