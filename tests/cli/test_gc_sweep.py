"""``ownvault gc`` sweeps orphan shares (docs/design.md, "The orphan sweep"), two devices
of one vault as real processes on shared local-folder providers: ``--dry-run`` reports the
orphan per provider, the gc that lists it marks it, and it goes once the other device has
written a record after seeing that."""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.cli.test_devices_converge import _devices
from tests.cli.test_gc_devices import _deep_clean
from tests.cli.test_keys import js, ov


def test_gc_reports_and_sweeps_an_orphan_share_once_both_devices_saw_it(
    tmp_path: Path,
) -> None:
    a, b = _devices(tmp_path, 2)
    files = tmp_path / "files"
    files.mkdir()
    data = random.Random(1).randbytes(80_000)
    (files / "doc").write_bytes(data)
    ov(a, "put", str(files / "doc"))
    ov(b, "ls")
    pack = os.urandom(16).hex()  # a put killed before its record
    orphan = tmp_path / "ext-1" / "objects" / "shares" / pack[:2] / f"{pack}.0"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(os.urandom(7_000))

    dry = js(ov(a, "--json", "gc", "--dry-run"))["sweep"]
    assert dry["objects"] == 0 and dry["waiting"] == 1
    assert dry["providers"] == [
        {"provider": "ext-1", "objects": 0, "bytes": 0, "waiting": 1, "waiting_bytes": 7_000}
    ]
    human = ov(a, "gc", "--dry-run").stdout
    assert "orphan shares: would delete 0" in human and "ext-1" in human, human
    assert js(ov(a, "--json", "gc"))["sweep"]["waiting"] == 1  # marked, B not seen it
    assert orphan.exists()
    ov(b, "gc")  # B pulls A's record of the listing and writes its own
    got = js(ov(a, "--json", "gc"))["sweep"]
    assert got["objects"] == 1 and got["bytes"] == 7_000 and got["waiting"] == 0, got
    assert not orphan.exists()
    for v in (a, b):
        out = tmp_path / f"doc-{v.name}"
        ov(v, "get", "doc", "-o", str(out))
        assert out.read_bytes() == data
        _deep_clean(v)
