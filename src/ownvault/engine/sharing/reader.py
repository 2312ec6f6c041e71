"""Opening a grant on the recipient's side: list and read shared data from the providers.

The recipient needs only the grant and their own keys (a vault of their own). Order of
checks, each with its own error: the grant parses (``FormatError``) and its signature
verifies against the sender's did:key (``IntegrityError``); it is addressed to this vault
(``GrantRecipientError``) and not expired (``GrantExpiredError``); the manifest key opens
(HPKE). Then the providers named in the grant are asked for a signed revocation notice
(``GrantRevokedError``) and for the newest manifest generation, which must verify (sender
signature, then AES-GCM under the manifest key). Reading verifies every share (size,
Merkle root, header), decodes k of them, and opens each chunk with its key (AES-GCM binds
the chunk id) and checks its length: exactly what ``get`` does for the owner.

Providers are opened with the *recipient's* keys: a provider kind that authenticates
requests (a storage node signs them with the vault's Ed25519 key) sees the recipient's
did:key. Storage nodes are sent the grant's read capability (``core.capability``) with
each request, signed by the owner for this recipient, and serve the owner's objects
read-only where it allows (docs/node-protocol.md, "Read capabilities").
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownvault.core.grants import (
    MAX_CARD_SIZE,
    MAX_MANIFEST_SIZE,
    Grant,
    decode_manifest,
    decode_revocation,
    grant_object_prefix,
    manifest_name,
    revocation_name,
)
from ownvault.core.keys import VaultKeys
from ownvault.core.pack import open_chunk
from ownvault.engine.store.catalog.rows import EntryKind, VersionKind
from ownvault.engine.store.outdir import OutputDir, split_rel
from ownvault.engine.store.shares import DATA_PREFIX, ShareStore
from ownvault.errors import (
    DataUnavailableError,
    FormatError,
    GrantRevokedError,
    IntegrityError,
    NotFoundError,
    OwnvaultError,
    ProviderError,
    UsageError,
)
from ownvault.providers.base import Provider, get_at_most
from ownvault.providers.registry import kind_of_url, open_provider

__all__ = ["GrantReader", "SharedEntry", "SharedItem", "SharedRestore", "open_grant"]

CACHE_PACKS = 4


def _as_int(value: object, what: str) -> int:
    if not isinstance(value, int) or value < 0:
        raise FormatError(f"grant manifest: {what} is not a non-negative integer")
    return value


def _as_str(value: object, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise FormatError(f"grant manifest: {what} is not a string")
    return value


def _text(value: object, what: str) -> str:
    return str(_as_str(value, what))


def _version_kind(value: object) -> VersionKind:
    if value == "file" or value == "tree":
        return value
    raise FormatError(f"grant manifest: unknown item kind {value!r:.40}")


def _entry_kind(value: object) -> EntryKind:
    if value == "file" or value == "dir" or value == "symlink":
        return value
    raise FormatError(f"grant manifest: unknown entry kind {value!r:.40}")


@dataclass(frozen=True, slots=True)
class SharedItem:
    """A version a grant covers (as its sender's manifest says); ``files`` counts its files."""

    name: str
    version: int
    kind: VersionKind
    size: int
    created: int
    cid: str | None
    files: int


@dataclass(frozen=True, slots=True)
class SharedEntry:
    path: str
    kind: EntryKind
    mode: int
    mtime_ns: int
    size: int
    cid: str | None
    target: str | None

    @classmethod
    def of(cls, e: dict[str, Any]) -> SharedEntry:
        """An entry of a (hostile) manifest, every field checked."""
        return cls(
            _text(e["path"], "path"),
            _entry_kind(e["kind"]),
            _as_int(e["mode"], "mode"),
            _as_int(e["mtime_ns"], "mtime_ns"),
            _as_int(e["size"], "size"),
            _as_str(e["cid"], "cid", optional=True),
            _as_str(e["target"], "target", optional=True),
        )


@dataclass(frozen=True, slots=True)
class SharedRestore:
    """Where ``get`` wrote a shared version (or a path in it): files and bytes written."""

    name: str
    version: int
    path: str
    files: int
    bytes: int


@dataclass
class GrantReader:
    """What a grant lets its recipient read. Use :func:`open_grant`; close when done."""

    grant: Grant
    manifest: dict[str, Any]
    store: ShareStore
    _manifest_providers: list[Provider] = field(default_factory=list)
    _cache: OrderedDict[int, bytes] = field(default_factory=OrderedDict)

    @property
    def items(self) -> list[SharedItem]:
        return [
            SharedItem(
                _text(item["name"], "name"),
                _as_int(item["version"], "version"),
                _version_kind(item["kind"]),
                _as_int(item["size"], "size"),
                _as_int(item["created"], "created"),
                _as_str(item["cid"], "cid", optional=True),
                sum(1 for e in item["entries"] if e["kind"] == "file"),
            )
            for item in self.manifest["items"]
        ]

    def entries(self, name: str) -> list[SharedEntry]:
        return [SharedEntry.of(e) for e in self._item(name)["entries"]]

    def file_entry(self, name: str) -> SharedEntry:
        """The entry of a shared file (or of a file inside a shared tree)."""
        item, inner = self._split(name)
        found = next((e for e in item["entries"] if e["path"] == inner), None)
        entry = None if found is None else SharedEntry.of(found)
        if entry is None or entry.kind != "file":
            raise UsageError(f"{name} is not a file in the grant", name=name)
        return entry

    def _item(self, name: str) -> dict[str, Any]:
        for item in self.manifest["items"]:
            if item["name"] == name.strip("/"):
                return dict(item)
        raise NotFoundError(f"the grant does not cover {name!r}", name=name)

    def _split(self, name: str) -> tuple[dict[str, Any], str]:
        clean = name.strip("/")
        for item in self.manifest["items"]:
            if clean == item["name"]:
                return item, ""
            if clean.startswith(item["name"] + "/") and item["kind"] == "tree":
                return item, clean[len(item["name"]) + 1 :]
        raise NotFoundError(f"the grant does not cover {name!r}", name=name)

    async def _pack(self, index: int) -> bytes:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        packs = self.manifest["packs"]
        if not 0 <= index < len(packs):
            raise FormatError("grant manifest refers to an unknown pack")
        p = packs[index]
        name_to_id = {n: i for i, n in self.store.names.items()}
        shares = [
            (
                _as_int(s["index"], "share index"),
                name_to_id.get(s["provider"], -1),
                _as_int(s["size"], "share size"),
                bytes.fromhex(s["root"]),
            )
            for s in p["shares"]
        ]
        data = await self.store.fetch_pack(
            DATA_PREFIX,
            bytes.fromhex(p["id"]),
            _as_int(p["size"], "pack size"),
            _as_int(p["k"], "k"),
            _as_int(p["n"], "n"),
            shares,
        )
        self._cache[index] = data
        while len(self._cache) > CACHE_PACKS:
            self._cache.popitem(last=False)
        return data

    async def read(self, name: str) -> AsyncIterator[bytes]:
        """The bytes of a shared file (or of a file inside a shared tree), verified."""
        item, inner = self._split(name)
        matches = [e for e in item["entries"] if e["path"] == inner]
        if not matches or matches[0]["kind"] != "file":
            raise UsageError(f"{name} is not a file")
        async for piece in self._read_entry(matches[0]):
            yield piece

    def _chunk(self, ci: object) -> dict[str, Any]:
        chunks = self.manifest["chunks"]
        if not isinstance(ci, int) or not 0 <= ci < len(chunks):
            raise FormatError("grant manifest refers to an unknown chunk")
        return dict(chunks[ci])

    async def _open_chunk(self, c: dict[str, Any]) -> bytes:
        data = await self._pack(_as_int(c["pack"], "pack"))
        offset, length = _as_int(c["offset"], "offset"), _as_int(c["length"], "length")
        blob = data[offset : offset + length]
        chunk_id = bytes.fromhex(c["id"])
        try:
            plain = open_chunk(bytes.fromhex(c["key"]), chunk_id, blob)
        except (IntegrityError, FormatError):
            raise IntegrityError(
                f"chunk {c['id']} failed authentication (tampered, or re-encrypted after a revocation)"
            ) from None
        if len(plain) != c["plain_len"]:
            raise IntegrityError(f"chunk {c['id']} has the wrong length")
        return plain

    async def read_range(self, name: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a shared file: only the chunks holding them are
        fetched and opened (each verified as in :meth:`read`)."""
        item, inner = self._split(name)
        matches = [e for e in item["entries"] if e["path"] == inner]
        if not matches or matches[0]["kind"] != "file":
            raise UsageError(f"{name} is not a file")
        parts: list[bytes] = []
        pos = 0
        for ci in matches[0]["chunks"]:
            if pos >= end:
                break
            c = self._chunk(ci)
            n = _as_int(c["plain_len"], "plain_len")
            if pos + n > start:
                plain = await self._open_chunk(c)
                parts.append(plain[max(0, start - pos) : min(n, end - pos)])
            pos += n
        return b"".join(parts)

    async def _read_entry(self, entry: dict[str, Any]) -> AsyncIterator[bytes]:
        total = 0
        for ci in entry["chunks"]:
            plain = await self._open_chunk(self._chunk(ci))
            total += len(plain)
            yield plain
        if total != entry["size"]:
            raise IntegrityError(
                f"{entry['path'] or 'file'}: {total} bytes read, {entry['size']} expected"
            )

    async def get(self, name: str, out: str | os.PathLike[str]) -> SharedRestore:
        """Write a shared file or tree (or a path inside a tree) to ``out``."""
        item, inner = self._split(name)
        chosen = [
            e
            for e in item["entries"]
            if e["path"] == inner or inner == "" or e["path"].startswith(inner + "/")
        ]
        if not chosen:
            raise NotFoundError(f"no such path in {item['name']}: {inner}", name=name)
        dest = Path(out)
        files = written = 0
        single = len(chosen) == 1 and chosen[0]["kind"] == "file" and chosen[0]["path"] == inner
        # A hostile sender chooses every path, kind, target and mode in the manifest:
        # OutputDir never writes through a symlink (not even one this manifest made).
        with OutputDir(dest.parent if single else dest) as tree:
            for e in chosen:
                rel = e["path"][len(inner) :].lstrip("/") if inner else e["path"]
                parts = [dest.name] if single else split_rel(rel, "grant manifest")
                mode = _as_int(e["mode"], "mode") & 0o777
                mtime_ns = _as_int(e["mtime_ns"], "mtime_ns")
                if e["kind"] == "dir":
                    tree.mkdir(parts, mode, mtime_ns)
                elif e["kind"] == "symlink":
                    tree.symlink(parts, str(e["target"] or ""), mtime_ns)
                elif e["kind"] == "file":
                    written += await tree.write_file(
                        parts, self._read_entry(e), mode=mode, mtime_ns=mtime_ns, durable=False
                    )
                    files += 1
            tree.finish()
        return SharedRestore(
            _text(item["name"], "name"),
            _as_int(item["version"], "version"),
            str(dest),
            files,
            written,
        )

    async def close(self) -> None:
        seen: set[int] = set()
        for p in [*self.store.providers.values(), *self._manifest_providers]:
            if id(p) not in seen:
                seen.add(id(p))
                with contextlib.suppress(Exception):
                    await p.close()


def _config(grant: Grant, kind: str) -> dict[str, Any]:
    """Provider config for the recipient: storage nodes get the grant's read capability."""
    if kind == "node" and grant.capability is not None:
        return {"capability": grant.capability}
    return {}


async def _scan(p: Provider, grant_id: bytes) -> tuple[bool, list[int]]:
    revoked = False
    gens = []
    async for o in p.list(grant_object_prefix(grant_id)):
        tail = o.name.rsplit("/", 1)[-1]
        if tail == "revoked":
            revoked = True
        elif tail.startswith("m."):
            with contextlib.suppress(ValueError):
                gens.append(int(tail[2:], 16))
    return revoked, gens


async def open_grant(
    keys: VaultKeys, grant_text: str | bytes, *, now: int | None = None
) -> GrantReader:
    """Verify a grant for the holder of ``keys`` and load its newest manifest."""
    grant = Grant.parse(grant_text)
    manifest_key = grant.open_key(keys, int(time.time()) if now is None else now)
    providers: list[Provider] = []
    for i, (kind, url) in enumerate(grant.providers):
        with contextlib.suppress(OwnvaultError):
            if kind_of_url(url) != kind:
                continue
            providers.append(open_provider(kind, url, _config(grant, kind), keys, f"grant-{i}"))
    try:
        revoked_on: list[Provider] = []
        gens: dict[int, list[Provider]] = {}
        for p in providers:
            try:
                r, g = await _scan(p, grant.grant_id)
            except ProviderError:
                continue
            if r:
                revoked_on.append(p)
            for gen in g:
                gens.setdefault(gen, []).append(p)
        for p in revoked_on:
            try:
                when = decode_revocation(
                    grant.sender,
                    grant.grant_id,
                    await get_at_most(p, revocation_name(grant.grant_id), MAX_CARD_SIZE),
                )
            except OwnvaultError:
                continue  # unreadable or forged: not the sender's word
            raise GrantRevokedError(f"the sender revoked this grant (at {when}, unix time)")
        manifest: dict[str, Any] | None = None
        errors: list[str] = []
        for gen in sorted(gens, reverse=True):
            for p in gens[gen]:
                try:
                    data = await get_at_most(
                        p, manifest_name(grant.grant_id, gen), MAX_MANIFEST_SIZE
                    )
                    manifest = decode_manifest(
                        grant.sender, manifest_key, grant.grant_id, gen, data
                    )
                    break
                except IntegrityError as exc:
                    errors.append(exc.message)
                except ProviderError:
                    continue
            if manifest is not None:
                break
        if manifest is None:
            if errors:
                raise IntegrityError(f"no grant manifest verifies: {errors[0]}")
            raise DataUnavailableError("no provider named in the grant holds its manifest")
    finally:
        for p in providers:
            with contextlib.suppress(Exception):
                await p.close()
    return _reader(grant, manifest, keys)


def _reader(grant: Grant, manifest: dict[str, Any], keys: VaultKeys) -> GrantReader:
    provs: dict[int, Provider] = {}
    names: dict[int, str] = {}
    try:
        plist = manifest["providers"]
        for i, p in enumerate(plist):
            names[i] = str(p["name"])
            with contextlib.suppress(OwnvaultError):
                if kind_of_url(str(p["url"])) == p["kind"]:
                    provs[i] = open_provider(
                        str(p["kind"]),
                        str(p["url"]),
                        _config(grant, str(p["kind"])),
                        keys,
                        str(p["name"]),
                    )
        for key in ("items", "chunks", "packs"):
            if not isinstance(manifest[key], list):
                raise FormatError(f"grant manifest {key} malformed")
    except (KeyError, TypeError) as exc:
        raise FormatError(f"grant manifest malformed: {exc}") from None
    return GrantReader(grant, manifest, ShareStore(provs, names))
