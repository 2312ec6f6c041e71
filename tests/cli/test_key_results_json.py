"""``--json`` writes typed engine results (frozen dataclasses) as the same documents the
commands wrote when the engine returned dicts: field names as keys, nested values too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ownvault.cli.app import Ctx
from ownvault.cli.render import emit
from ownvault.engine.keys.keyring import KdfCost, KeyRotation, PassphraseChange
from ownvault.engine.keys.shred import ForgetResult
from ownvault.engine.store.repack import NotDeleted


def _emitted(capsys: pytest.CaptureFixture[str], document: object) -> object:
    emit(Ctx(Path("v"), True), document, lambda: None)
    return json.loads(capsys.readouterr().out)


def test_key_results_keep_their_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert _emitted(capsys, KeyRotation(2, 5)) == {"epoch": 2, "rewrapped": 5}
    assert _emitted(capsys, PassphraseChange("/v", KdfCost(3, 65536, 4))) == {
        "vault": "/v",
        "kdf": {"time_cost": 3, "memory_kib": 65536, "parallelism": 4},
    }


def test_forget_result_keeps_its_json(capsys: pytest.CaptureFixture[str]) -> None:
    result = ForgetResult(
        packs_read=1, packs_written=2, chunks_kept=3, chunks_rekeyed=0, chunks_dropped=4,
        name="diary", versions_forgotten=2, chunks_shredded=4,
        chunks_shared_with_other_names=1, grants_updated=1, snapshot=9,
        old_snapshot_objects_deleted=6, objects_deleted=7,
        not_deleted=[NotDeleted("local-1", "catalog/", "cannot list: down")],
    )  # fmt: skip
    assert _emitted(capsys, result) == {
        "packs_read": 1,
        "packs_written": 2,
        "chunks_kept": 3,
        "chunks_rekeyed": 0,
        "chunks_dropped": 4,
        "name": "diary",
        "versions_forgotten": 2,
        "chunks_shredded": 4,
        "chunks_shared_with_other_names": 1,
        "grants_updated": 1,
        "snapshot": 9,
        "old_snapshot_objects_deleted": 6,
        "objects_deleted": 7,
        "not_deleted": [
            {"provider": "local-1", "object": "catalog/", "reason": "cannot list: down"}
        ],
    }


def test_dataclasses_nested_in_a_document_are_written_as_objects(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = {"failed": [NotDeleted("p", "o", "r")], "rotation": KeyRotation(1, 0)}
    assert _emitted(capsys, doc) == {
        "failed": [{"provider": "p", "object": "o", "reason": "r"}],
        "rotation": {"epoch": 1, "rewrapped": 0},
    }
