"""Backup profiles on real folders: runs, excludes, what changed, retention, space, recovery."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from ownvault.core.keys import phrase_to_entropy
from ownvault.core.retention import RetentionPolicy
from ownvault.engine.backup.profile import ExcludeRules, format_every, parse_every
from ownvault.engine.backup.prune import plan_forget
from ownvault.engine.backup.schedule import MAX_JITTER, jitter_offset, next_due, overdue
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.vault import Vault
from ownvault.errors import NotFoundError, UsageError

from .external import vault_with_external
from .helpers import FAST_KDF, Vaults, run

T0 = datetime(2026, 3, 2, 12, 0).timestamp()  # local time, as retention buckets are
DAY = 86400.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _vault(vaults: Vaults, tmp_path: Path, t: float = T0) -> tuple[Vault, Clock]:
    vault = vaults.create(tmp_path / "vault", providers=3, k=2, n=3)
    clock = Clock(t)
    vault.clock = clock
    return vault, clock


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6h", 21600), ("1d", 86400), ("90m", 5400), ("1h30m", 5400), ("2w", 1209600), ("60s", 60)],
)
def test_every_parses_strictly(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds
    assert parse_every(format_every(seconds)) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "6", "6 h", "6hours", "-6h", "1.5h", "30m1h", "1h1h", "0h", "59s", "367d", "6H", " 6h"],
)
def test_every_rejects_sloppy_intervals(text: str) -> None:
    with pytest.raises(UsageError, match="--every"):
        parse_every(text)


def test_jitter_is_bounded_seeded_per_profile_and_keeps_the_grid() -> None:
    offsets = {jitter_offset("vault-a", f"p{i}", 6 * 3600) for i in range(50)}
    assert len(offsets) == 50 and all(0 <= o < MAX_JITTER for o in offsets)
    assert jitter_offset("vault-a", "p1", 6 * 3600) == jitter_offset("vault-a", "p1", 6 * 3600)
    assert jitter_offset("vault-b", "p1", 6 * 3600) != jitter_offset("vault-a", "p1", 6 * 3600)
    assert all(0 <= jitter_offset("v", f"q{i}", 600) < 60 for i in range(50))  # 10% of 10m
    every, off = 3600.0, 100.0
    assert next_due(0, every, off, None) == 100  # never run: due at once (after its offset)
    assert next_due(0, every, off, 100) == 3700  # ran on time: the next grid point
    assert next_due(0, every, off, 120) == 3700  # a late start does not shift the grid
    assert next_due(0, every, off, 3000) == 7300  # a manual run 10 min before: skip one
    assert next_due(0, every, off, 1800) == 3700  # half an interval before: still on time
    assert not overdue(0, every, 100, 100 + 2 * every + MAX_JITTER)
    assert overdue(0, every, 100, 101 + 2 * every + MAX_JITTER)
    assert overdue(0, every, None, 1 + 2 * every + MAX_JITTER)  # never ran since made


def _tree(root: Path) -> None:
    (root / "sub" / "cache").mkdir(parents=True)
    (root / "keep.txt").write_text("keep me\n")
    (root / "drop.tmp").write_text("temporary\n")
    (root / "sub" / "notes.md").write_text("notes\n")
    (root / "sub" / "cache" / "blob").write_bytes(b"x" * 1000)
    (root / "sub" / "important.tmp").write_text("kept by a negation\n")


def test_run_stores_the_folder_without_excluded_paths(vaults: Vaults, tmp_path: Path) -> None:
    vault, _ = _vault(vaults, tmp_path)
    src = tmp_path / "Documents"
    _tree(src)
    ignore = tmp_path / ".ovignore"
    ignore.write_text("# caches\ncache/\n!important.tmp\n")
    p = run(vault.backups.add("docs", src, every="6h", excludes=("*.tmp",), exclude_file=ignore))
    assert p.dest == "docs" and p.source == str(src) and p.every == 21600
    r = run(vault.backups.run("docs"))
    assert r.result == "ok", r.error
    assert (r.version, r.files, r.added, r.changed, r.removed) == (1, 3, 3, 0, 0)
    stored = {e.path for e in run(vault.files.ls("docs")).entries}
    assert stored == {"keep.txt", "sub"}
    sub = {e.path for e in run(vault.files.ls("docs/sub")).entries}
    assert sub == {"sub/notes.md", "sub/important.tmp"}
    run(vault.files.get("docs", tmp_path / "out"))
    assert (tmp_path / "out" / "sub" / "important.tmp").read_text() == "kept by a negation\n"
    assert not (tmp_path / "out" / "drop.tmp").exists()

    # What changed, next time: one edited, one added, one deleted.
    (src / "keep.txt").write_text("edited\n")
    (src / "new.txt").write_text("new\n")
    (src / "sub" / "notes.md").unlink()
    r2 = run(vault.backups.run("docs"))
    assert (r2.result, r2.version, r2.added, r2.changed, r2.removed) == ("ok", 2, 1, 1, 1)
    assert [x.version for x in vault.backups.runs("docs")] == [2, 1]


def test_an_exclude_file_is_read_at_each_run(vaults: Vaults, tmp_path: Path) -> None:
    vault, _ = _vault(vaults, tmp_path)
    src = tmp_path / "src"
    _tree(src)
    ignore = tmp_path / "ignore"
    ignore.write_text("")
    run(vault.backups.add("s", src, exclude_file=ignore))
    assert run(vault.backups.run("s")).files == 5
    ignore.write_text("sub/\n")
    assert run(vault.backups.run("s")).files == 2
    ignore.unlink()
    failed = run(vault.backups.run("s"))
    assert failed.result == "failed" and "exclude file not found" in (failed.error or "")


def test_bad_profiles_are_refused(vaults: Vaults, tmp_path: Path) -> None:
    vault, _ = _vault(vaults, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    with pytest.raises(UsageError, match="not a folder"):
        run(vault.backups.add("x", tmp_path / "missing"))
    with pytest.raises(UsageError, match="profile name"):
        run(vault.backups.add("../x", src))
    with pytest.raises(UsageError, match="--every"):
        run(vault.backups.add("x", src, every="soon"))
    with pytest.raises(UsageError, match="exclude file not found"):
        run(vault.backups.add("x", src, exclude_file=tmp_path / "nope"))
    run(vault.backups.add("x", src))
    with pytest.raises(UsageError, match="exists already"):
        run(vault.backups.add("x", src))
    run(vault.backups.rm("x"))
    with pytest.raises(NotFoundError):
        run(vault.backups.run("x"))


def test_a_vanished_source_is_a_failed_run_not_a_crash(vaults: Vaults, tmp_path: Path) -> None:
    vault, clock = _vault(vaults, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    run(vault.backups.add("s", src, every="1h"))
    assert run(vault.backups.run("s")).result == "ok"
    (src / "a").unlink()
    src.rmdir()
    clock.t += 3600
    r = run(vault.backups.run("s"))
    assert r.result == "failed" and "source folder is gone" in (r.error or "")
    (state,) = vault.backups.ls()
    assert state.failed and state.last is not None and state.last.id == r.id
    assert state.last_success == T0
    assert vault.ctx.catalog.backups.failing() == ["s"]
    assert vault.ctx.catalog.backups.overdue(clock.t, MAX_JITTER) == []
    assert vault.ctx.catalog.backups.overdue(clock.t + 3 * 3600 + MAX_JITTER, MAX_JITTER) == ["s"]
    (late,) = vault.backups.ls(clock.t + 3 * 3600 + MAX_JITTER)
    assert late.overdue
    status = run(vault.health.status()).to_json()
    assert status["backups"] == {"failing": ["s"], "overdue": []}
    assert any(a.startswith("backups last run failed: s") for a in status["advice"])


def test_retention_runs_after_each_backup_and_frees_space(vaults: Vaults, tmp_path: Path) -> None:
    """Twelve daily runs, each of a changed 200 KB file plus a shared one; keep-last 2,
    keep-daily 4: the kept versions are restic's, and the forgotten ones' packs are gone."""
    vault, clock = _vault(vaults, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    rnd = random.Random(5)
    (src / "shared.bin").write_bytes(rnd.randbytes(100_000))
    run(vault.backups.add("d", src, every="1d", retention=RetentionPolicy(last=2, daily=4)))
    for day in range(12):
        clock.t = T0 + day * DAY
        (src / "daily.bin").write_bytes(rnd.randbytes(200_000))
        r = run(vault.backups.run("d"))
        assert r.result == "ok", r.error
    kept = [v.version for v in run(vault.files.versions("d"))]
    # keep-last 2 -> 12, 11; keep-daily 4 -> the days of 12, 11, 10, 9 (one version each).
    assert kept == [9, 10, 11, 12]
    usage = vault.ctx.catalog.usage.totals()
    assert usage["unique_bytes"] < 5 * 200_000 + 100_000
    assert vault.ctx.catalog.unreferenced_packs() == []
    run(vault.files.get("d", tmp_path / "out", version=9))
    assert (tmp_path / "out" / "shared.bin").read_bytes() == (src / "shared.bin").read_bytes()


def test_forget_dry_run_previews_and_changes_nothing(vaults: Vaults, tmp_path: Path) -> None:
    vault, clock = _vault(vaults, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("0")
    run(vault.backups.add("d", src, every="1h"))
    for hour in range(5):
        clock.t = T0 + hour * 3600
        (src / "f").write_text(str(hour))
        run(vault.backups.run("d"))
    assert len(run(vault.files.versions("d"))) == 5  # no retention: every version stays
    with vault.ctx.catalog.transaction() as c:
        c.execute("UPDATE backup_profiles SET retention = '{\"last\": 2}'")
    preview = run(vault.backups.forget("d", dry_run=True))
    assert [k["version"] for k in preview.keep] == [5, 4]
    assert [k["version"] for k in preview.remove] == [3, 2, 1]
    assert preview.keep[0]["reasons"] == ["last snapshot"]
    assert len(run(vault.files.versions("d"))) == 5
    done = run(vault.backups.forget("d"))
    assert [v.version for v in run(vault.files.versions("d"))] == [4, 5]
    assert done.packs_deleted >= 1 and done.bytes_freed > 0


def test_partly_referenced_packs_are_repacked_over_the_threshold(
    vaults: Vaults, tmp_path: Path
) -> None:
    """A big and a small file share a pack; forgetting the version with the big one leaves
    the pack mostly unreferenced: it is rewritten with the small file's chunk only."""
    vault, clock = _vault(vaults, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(random.Random(1).randbytes(300_000))
    (src / "small.txt").write_text("small and kept\n")
    run(vault.backups.add("d", src, every="1h", retention=RetentionPolicy(last=1)))
    run(vault.backups.run("d"))
    (packs_before,) = [vault.ctx.catalog.live_packs()]
    assert len(packs_before) == 1
    stored_before = vault.ctx.catalog.usage.totals()["stored_bytes"]
    (src / "big.bin").unlink()
    clock.t += 3600
    r = run(vault.backups.run("d"))
    assert (r.result, r.forgotten, r.removed) == ("ok", 1, 1)
    packs_after = vault.ctx.catalog.live_packs()
    assert packs_after and set(packs_after).isdisjoint(packs_before)
    assert vault.ctx.catalog.usage.totals()["stored_bytes"] < stored_before / 4
    run(vault.files.get("d", tmp_path / "out"))
    assert (tmp_path / "out" / "small.txt").read_text() == "small and kept\n"


def test_profiles_and_runs_survive_recovery(vaults: Vaults, tmp_path: Path) -> None:
    vault, dirs = vault_with_external(tmp_path)
    vaults.track(vault)
    src = tmp_path / "src"
    _tree(src)
    run(vault.backups.add("docs", src, every="6h", excludes=("*.tmp",)))
    r = run(vault.backups.run("docs"))
    assert r.result == "ok"
    phrase = vault.keys.phrase
    vaults.close_all()
    new = tmp_path / "recovered"
    run(recover_vault(new, phrase_to_entropy(phrase), "p2", [dirs[0].as_uri()], kdf=FAST_KDF))
    back = vaults.open(new, "p2")
    (state,) = back.backups.ls()
    assert state.profile.excludes == ("*.tmp",) and state.profile.every == 21600
    assert state.last is not None and state.last.to_json() == r.to_json()


def test_excludes_are_gitignore_patterns() -> None:
    skip = ExcludeRules(("*.log", "/top-only", "build/", "!keep.log", "a/**/z")).skipper()
    assert skip("x.log", False) and skip("d/x.log", False) and not skip("d/keep.log", False)
    assert skip("top-only", False) and not skip("d/top-only", False)
    assert skip("build", True) and not skip("build", False) and skip("d/build", True)
    assert skip("a/b/c/z", False) and not skip("b/z", False)
    assert os.sep == "/"


@pytest.mark.skipif(
    shutil.which("restic") is None and os.environ.get("CI") != "true",
    reason="restic is installed by scripts/setup.d/restic.sh (required under CI)",
)
def test_a_profiles_retention_agrees_with_real_restic(vaults: Vaults, tmp_path: Path) -> None:
    """The same run times given to restic (`backup --time`, then `forget --dry-run`): restic
    keeps the snapshots whose times are the versions the profile kept. Runs: twice a day
    for three weeks, with gaps (the design doc's "Backup profiles" example)."""
    vault, clock = _vault(vaults, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    policy = RetentionPolicy(last=3, daily=5, weekly=3)
    run(vault.backups.add("d", src, every="12h", retention=policy))
    times = [T0 + day * DAY + h * 3600 for day in range(21) if day % 5 != 3 for h in (0, 9)]
    for i, t in enumerate(times):
        clock.t = t
        (src / "f").write_text(str(i))
        assert run(vault.backups.run("d")).result == "ok"
    kept = sorted(v.created for v in run(vault.files.versions("d")))

    env = {
        **os.environ,
        "RESTIC_PASSWORD": "backup-retention",
        "RESTIC_REPOSITORY": str(tmp_path / "repo"),
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
    }

    def restic(*args: str) -> str:
        return subprocess.run(
            ["restic", "-q", *args], env=env, check=True, capture_output=True, text=True
        ).stdout

    restic("init")
    for t in times:
        stamp = datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")
        restic("backup", "--host", "h", "--time", stamp, str(src))
    out = json.loads(
        restic(
            "forget", "--dry-run", "--json", "--keep-last", "3", "--keep-daily", "5",
            "--keep-weekly", "3",
        )
    )  # fmt: skip
    restic_kept = sorted(datetime.fromisoformat(s["time"]).timestamp() for s in out[0]["keep"])
    assert kept == restic_kept
    assert len(kept) < len(times)


def test_a_run_left_running_by_a_killed_process_is_marked_failed(
    vaults: Vaults, tmp_path: Path
) -> None:
    vault, clock = _vault(vaults, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    run(vault.backups.add("d", src, every="1h"))
    p = vault.backups.profile("d")
    vault.ctx.catalog.backups.start_run(p.id, clock.t)  # as a process killed mid-run leaves it
    clock.t += 60
    assert run(vault.backups.run("d")).result == "ok"
    old, new = sorted(vault.backups.runs("d"), key=lambda r: r.id)
    assert (old.result, old.error, old.finished_at) == (
        "failed",
        "interrupted (the process running it ended)",
        clock.t,
    )
    assert new.result == "ok"


def test_retention_only_forgets_versions_the_profile_made(vaults: Vaults, tmp_path: Path) -> None:
    """A destination that already holds versions put by hand: keep-last 1 leaves them."""
    vault, clock = _vault(vaults, tmp_path)
    src = tmp_path / "docs"
    src.mkdir()
    for i in range(3):
        (src / "f").write_text(f"by hand {i}")
        run(vault.files.put([src]))
    run(vault.backups.add("docs", src, every="1h", retention=RetentionPolicy(last=1)))
    for i in range(3):
        clock.t += 3600
        (src / "f").write_text(f"by the profile {i}")
        assert run(vault.backups.run("docs")).result == "ok"
    assert [v.version for v in run(vault.files.versions("docs"))] == [1, 2, 3, 6]
    preview = run(vault.backups.forget("docs", dry_run=True))
    assert [k["version"] for k in preview.keep] == [6] and preview.remove == ()


def test_versions_made_within_one_second_are_planned_newest_first(
    vaults: Vaults, tmp_path: Path
) -> None:
    """created_at has whole seconds: two runs in one second tie on time, and the newer
    number must still come first (CI once saw [1, 2] where [2, 1] was kept)."""
    vault = vaults.create(tmp_path / "v")
    src = tmp_path / "f.txt"
    for text in ("one\n", "two\n", "three\n"):
        src.write_text(text)
        run(vault.files.put([src], name="f"))
    with vault.catalog.transaction():
        vault.catalog.conn.execute("UPDATE versions SET created_at = 1700000000")
    plan = plan_forget(vault.ctx, "f", RetentionPolicy(last=2), now=1700000100)
    assert [i.key for i in plan.keep] == [3, 2]
    assert [i.key for i in plan.remove] == [1]
