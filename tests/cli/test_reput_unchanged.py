"""`ownvault put` of a tree that is its name's latest version already makes no version and
writes nothing to the providers, whether the files cache answers it without the keys
(``engine.files.reput``) or the full put reads every file (``--force-read``); any change
(a file, a tag to add) still makes one. Real CLI processes, the real clock."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ownvault.engine.store.filescache import GRANULARITY_NS

from .test_cli_tour import js, ov, vault  # noqa: F401 - the vault fixture


def _providers(at: Path) -> dict[str, tuple[int, int]]:
    """Every object the vault's local folders hold: relative path -> (size, mtime_ns)."""
    root = at / "providers"
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def _tree(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.bin").write_bytes(os.urandom(10_000))
    (docs / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    os.symlink("a.bin", docs / "link")
    time.sleep(GRANULARITY_NS / 1e9 + 0.2)  # older than the cache's timestamp granularity
    return docs


def _put(at: Path, *args: str, passphrase: str | None = None) -> dict:  # type: ignore[type-arg]
    extra = {} if passphrase is None else {"passphrase": passphrase}
    doc = js(ov(at, "put", *args, "--json", **extra))["stored"]  # type: ignore[arg-type]
    assert len(doc) == 1
    return doc[0]  # type: ignore[no-any-return]


def test_an_unchanged_put_writes_nothing_to_the_providers(
    vault: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    docs = _tree(tmp_path)
    first = _put(vault, str(docs))
    assert (first["version"], first["new_version"]) == (1, True)
    before = _providers(vault)
    assert any("/journal/" in p for p in before)  # the probe sees the journal

    again = _put(vault, str(docs))  # the files cache, from the local catalog
    assert (again["version"], again["new_version"], again["unchanged"]) == (1, False, 2)
    assert again["cid"] == first["cid"] and again["read_bytes"] == 0
    forced = _put(vault, "--force-read", str(docs))  # the full put, every byte read
    assert (forced["version"], forced["new_version"], forced["read_bytes"]) == (1, False, 310_000)
    assert _providers(vault) == before
    assert [v["version"] for v in js(ov(vault, "versions", "docs", "--json"))["versions"]] == [1]

    (docs / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    changed = _put(vault, str(docs))
    assert (changed["version"], changed["new_version"], changed["unchanged"]) == (2, True, 1)
    assert _providers(vault) != before  # a change is written


def test_an_unchanged_put_needs_no_passphrase_and_a_change_does(
    vault: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Finding a put unchanged reads only what ``ls`` shows without the passphrase (the
    plaintext local catalog) and writes nothing a key protects: it does not unlock. A
    put that changes anything unlocks, and a wrong passphrase is refused."""
    docs = _tree(tmp_path)
    _put(vault, str(docs))
    before = _providers(vault)
    again = _put(vault, str(docs), passphrase="not the passphrase")
    assert (again["version"], again["new_version"]) == (1, False)
    (docs / "a.bin").write_bytes(b"changed")
    refused = ov(vault, "put", str(docs), "--json", passphrase="wrong", check=None)
    assert refused.returncode != 0 and js(refused)["error"]["code"] == "auth"
    assert _providers(vault) == before


def test_a_tag_to_add_or_a_changed_mode_makes_a_version(
    vault: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    docs = _tree(tmp_path)
    _put(vault, str(docs))
    tagged = _put(vault, "--tag", "work", str(docs))
    assert (tagged["version"], tagged["new_version"]) == (2, True)
    assert _put(vault, "--tag", "work", str(docs))["new_version"] is False  # has it now
    os.chmod(docs / "a.bin", 0o600)  # a new mode (and ctime): read again, same content
    moded = _put(vault, str(docs))
    assert (moded["version"], moded["new_version"], moded["new_bytes"]) == (3, True, 0)
