"""The publishing commands as real subprocesses: output contract and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from ownvault.core.unixfs import PROFILES
from ownvault.engine.ipfs.localcid import cid_of_path

from .test_cli_tour import js, ov, vault

__all__ = ["vault"]


def test_publish_verify_export_import(vault: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "index.html").write_text("<p>hi</p>\n")
    (site / "img" / "a.bin").write_bytes(bytes(range(256)) * 2000)
    want = str(cid_of_path(site, PROFILES["kubo-v1"], hidden=True).cid)
    # a PATH is stored first, then published
    p = ov(vault, "publish", str(site))
    assert p.stdout.strip() == f"ipfs://{want}"
    listing = js(ov(vault, "ls", "--json"))["objects"]
    assert listing[0]["name"] == "site" and listing[0]["cid"] == want
    doc = js(ov(vault, "publish", "site", "--json"))  # a NAME; publishing again is harmless
    assert doc["cid"] == want and doc["published"] and doc["blocks"] == 6
    doc = js(ov(vault, "verify-cid", "site", "--json"))
    assert doc["ok"] and doc["cid"] == want
    pubs = js(ov(vault, "published", "--json"))["published"]
    assert [p["cid"] for p in pubs] == [want]
    ov(vault, "car", "export", want, str(tmp_path / "site.car"))
    ov(vault, "cid", "--hidden", str(site), "--car", str(tmp_path / "ref.car"))
    assert (tmp_path / "site.car").read_bytes() == (tmp_path / "ref.car").read_bytes()
    doc = js(ov(vault, "car", "import", str(tmp_path / "site.car"), "--as", "copy", "--json"))
    assert doc["root"] == want and doc["profile"] == "kubo-v1" and doc["files"] == 2
    ov(vault, "get", "copy", "-o", str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "img" / "a.bin").read_bytes() == (
        site / "img" / "a.bin"
    ).read_bytes()
    out = js(ov(vault, "unpublish", "site", "--json"))["unpublished"]
    assert [u["cid"] for u in out] == [want]
    assert js(ov(vault, "published", "--json"))["published"] == []


def test_errors_are_one_line(vault: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.car").write_bytes(b"\x0a\xa1garbage")
    p = ov(vault, "car", "import", str(tmp_path / "bad.car"), check=5)
    assert p.stderr.startswith("ownvault: ") and "Traceback" not in p.stderr
    p = ov(vault, "car", "import", str(tmp_path / "bad.car"), "--json", check=5)
    assert json.loads(p.stdout)["error"]["code"] == "format"
    p = ov(vault, "publish", "nothing-here", check=4)
    assert "Traceback" not in p.stderr
    p = ov(vault, "unpublish", "nothing-here", check=4)
    p = ov(
        vault,
        "car",
        "export",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        str(tmp_path / "x.car"),
        check=4,
    )
    assert not (tmp_path / "x.car").exists()
    p = ov(vault, "serve", "--listen", "nowhere", check=2)
    assert "HOST:PORT" in p.stderr
