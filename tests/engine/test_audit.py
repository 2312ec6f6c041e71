"""Audits on local-folder providers (range reads), deep checks, the statistics, status."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from ownvault.core.pack import ShareLayout
from ownvault.engine.health.audit import (
    AuditSample,
    _Share,
    choose_blocks,
    detection_probability,
    holds_at_least,
)
from ownvault.engine.vault import Vault
from ownvault.errors import NotFoundError, UsageError

from .helpers import Vaults, run


def share_files(vault: Vault, provider: str) -> list[Path]:
    return sorted((vault.path / "providers" / provider / "objects" / "shares").rglob("*.*"))


@pytest.fixture
def vault(vaults: Vaults, tmp_path: Path) -> Vault:
    v = vaults.create(tmp_path / "v", providers=6, k=3, n=6)
    (tmp_path / "a").write_bytes(random.Random(1).randbytes(3_000_000))
    (tmp_path / "b").write_bytes(random.Random(2).randbytes(200_000))
    run(v.files.put([tmp_path / "a", tmp_path / "b"]))
    return v


def test_statistics() -> None:
    assert detection_probability(64, 0.10) == pytest.approx(0.99882, abs=1e-5)
    assert detection_probability(44, 0.10) > 0.99 > detection_probability(43, 0.10)
    assert holds_at_least(64, 0) == pytest.approx(1 - 0.0457, abs=1e-3)  # rule of three: ~3/c
    assert holds_at_least(0, 0) is None and holds_at_least(5, 5) == 0.0
    # Clopper-Pearson: 1 failure in 64 -> lost at most ~8.3% at 95%.
    assert holds_at_least(64, 1) == pytest.approx(1 - 0.0716, abs=2e-3)
    assert holds_at_least(1000, 100) < 0.9 < holds_at_least(1000, 80)
    with pytest.raises(UsageError):
        AuditSample(None, None)
    with pytest.raises(UsageError):
        AuditSample(None, 1.5)
    assert AuditSample(None, 0.1).count(1000) == 100 and AuditSample(64).count(10) == 10


def test_challenges_are_distinct_and_uniform_over_blocks() -> None:
    sizes = [ShareLayout(n * 16384).total for n in (1, 3, 6)]  # 10 blocks in all
    shares = [_Share(i, bytes(16), i, s, b"r") for i, s in enumerate(sizes)]
    rng = random.Random(5)
    counts = {i: 0 for i in range(3)}
    for _ in range(2000):
        picks = choose_blocks(shares, AuditSample(4), rng)
        assert len(set(picks)) == 4
        for s, b in picks:
            assert 0 <= b < ShareLayout.for_total(s.size).blocks
            counts[s.idx] += 1
    # Expected 8000 * (1, 3, 6) / 10 picks per share.
    for idx, weight in enumerate((1, 3, 6)):
        assert abs(counts[idx] - 800 * weight) < 5 * math.sqrt(800 * weight)


def test_clean_vault_passes_and_is_recorded(vault: Vault) -> None:
    report = run(vault.health.audit())
    assert report.ok and report.at_fault == []
    for p in report.providers:
        assert (
            p.method == "ranges" and p.failed == 0 and p.passed == p.challenges == min(64, p.blocks)
        )
        assert p.holds_at_least is not None and p.holds_at_least > 0.9
        # Reads: the challenged blocks, each challenged share's leaf level (and a listing).
        files = share_files(vault, p.provider)
        leaves = sum(ShareLayout.for_total(f.stat().st_size).leaves_len for f in files)
        assert p.bytes <= p.challenges * 16384 + leaves + 64 * len(files)
    assert report.run is not None
    rows = vault.catalog.healthlog.audit_history()
    assert {r.provider_name for r in rows} == {f"local-{i}" for i in range(1, 7)}
    assert vault.catalog.healthlog.faults() == []
    with pytest.raises(NotFoundError):
        run(vault.health.audit(providers=["nope"]))
    only = run(vault.health.audit(providers=["local-2"], sample=AuditSample(3)))
    assert [p.provider for p in only.providers] == ["local-2"] and only.providers[0].challenges == 3


def test_missing_corrupt_and_tree_damage_are_found(vault: Vault) -> None:
    share_files(vault, "local-1")[0].unlink()
    victim = share_files(vault, "local-2")[0]
    blob = bytearray(victim.read_bytes())
    blob[5000] ^= 0x10  # in block 0 of the data part
    victim.write_bytes(bytes(blob))
    tree = share_files(vault, "local-3")[0]
    blob = bytearray(tree.read_bytes())
    blob[-20] ^= 0x01  # in the stored leaf level
    tree.write_bytes(bytes(blob))
    report = run(vault.health.audit(sample=AuditSample(None, 1.0)))
    assert report.at_fault == ["local-1", "local-2", "local-3"]
    by = {p.provider: p for p in report.providers}
    assert by["local-1"].missing_shares == 1
    assert by["local-2"].failed == 1 and by["local-2"].faults[0].kind == "corrupt"
    assert by["local-3"].failed >= 1 and "Merkle tree" in by["local-3"].faults[0].detail
    recorded = {(f.provider, f.kind) for f in vault.catalog.healthlog.faults()}
    assert recorded == {(1, "missing"), (2, "corrupt"), (3, "corrupt")}
    status = run(vault.health.status()).to_json()
    assert status["verdict"] in ("DEGRADED", "AT RISK") and status["known_bad_shares"] == 3
    assert status["providers_failing_audits"] == ["local-1", "local-2", "local-3"]
    # The deep check finds the same three, and reads everything to do so.
    deep = run(vault.health.deep_check()).to_json()
    assert {(b["provider"], b["kind"]) for b in deep["bad"]} == {
        ("local-1", "missing"),
        ("local-2", "corrupt"),
        ("local-3", "corrupt"),
    }
    assert not deep["healthy"] and deep["readable"]
    assert "tree" in next(b["reason"] for b in deep["bad"] if b["provider"] == "local-3")
    # Each file's missing shares are the bad ones, with their kind; the run recorded for
    # `status` is the document without the files.
    assert {m["kind"] for f in deep["files"] for m in f["missing"]} == {"missing", "corrupt"}
    run_row = vault.catalog.healthlog.last_run("deep")
    assert run_row is not None and "files" not in run_row.summary
    assert run_row.summary["bad"] == deep["bad"] and run_row.summary["deep"] is True
    assert run_row.summary["shares_verified"] == deep["shares_verified"]
    # The cheap check sees only the missing one.
    cheap = run(vault.health.check()).to_json()
    assert {m["provider"] for f in cheap["files"] for m in f["missing"]} == {"local-1"}


def test_unreachable_provider_is_not_at_fault(vault: Vault) -> None:
    marker = vault.path / "providers" / "local-4" / "ownvault-provider.json"
    marker.rename(marker.with_suffix(".away"))  # an unmounted disk
    report = run(vault.health.audit())
    assert report.at_fault == [] and report.unreachable == ["local-4"]
    p = next(p for p in report.providers if p.provider == "local-4")
    assert p.unreachable == p.challenges and p.holds_at_least is None
    assert run(vault.health.status()).to_json()["providers_unreachable"] == ["local-4"]
