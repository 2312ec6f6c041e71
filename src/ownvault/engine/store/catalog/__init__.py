"""The catalog: a local SQLite database (WAL mode) of everything the vault knows.

Names, versions, chunk lists, packs, share locations and wrapped chunk keys. The schema is
versioned (``meta.schema_version``) and specified in docs/design.md ("Catalog"). The
catalog is also sealed, erasure-coded and written to the providers after each change
(``engine.store.snapshots``), so it can be recovered from the recovery phrase alone.

Visibility rule (crash safety): a pack becomes ``live`` only after all its shares are
durably stored; chunks are inserted only with a live pack; a version is inserted, with its
entries, in one transaction after all of its chunks are live. So nothing visible ever
refers to a share that was not durably written.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ownvault.core.jsonvalue import JSONValue
from ownvault.engine.store.catalog.groups import TableGroups
from ownvault.engine.store.catalog.rows import ChunkRef, EntryRow, ProviderRow, ShareRow, VersionRow
from ownvault.engine.store.catalog.schema import MIGRATIONS, SCHEMA, statements
from ownvault.engine.store.layout import create_private
from ownvault.errors import FormatError, NotFoundError, VaultStateError

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "ChunkRef",
    "EntryRow",
    "ProviderRow",
    "ShareRow",
    "VersionRow",
]

SCHEMA_VERSION = 1 + len(MIGRATIONS)


def _now() -> int:
    return int(time.time())


class Catalog(TableGroups):
    """Typed access to the catalog database. One connection; not shared across threads.
    Its table groups (``catalog.packs``, ``catalog.journal``, ...: ``catalog/groups.py``)
    are made on first use."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self.conn = conn
        self.path = path

    # -- lifecycle ----------------------------------------------------------------------

    @staticmethod
    def _connect(path: Path | str) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 10000")
        return conn

    @classmethod
    def create(cls, path: Path, meta: dict[str, str]) -> Catalog:
        if path.exists() or path.is_symlink():
            raise VaultStateError(f"catalog exists already: {path}")
        create_private(path)
        conn = cls._connect(path)
        conn.executescript(SCHEMA)
        cat = cls(conn, path)
        with cat.transaction():
            for k, v in {"schema_version": "1", "seq": "0", **meta}.items():
                conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (k, v))
        cat.migrate()
        return cat

    def migrate(self) -> None:
        """Bring an older catalog up to SCHEMA_VERSION (each step in one transaction)."""
        raw = self.meta("schema_version")
        try:
            version = int(raw or "")
        except ValueError:
            raise FormatError(f"catalog has an invalid schema version {raw!r}") from None
        if version > SCHEMA_VERSION:
            raise FormatError(
                f"catalog schema version {version} is newer than this ownvault ({SCHEMA_VERSION}); upgrade ownvault"
            )
        while version < SCHEMA_VERSION:
            version += 1
            with self.transaction() as c:
                for statement in statements(MIGRATIONS[version]):
                    c.execute(statement)
                self.set_meta("schema_version", str(version))

    @classmethod
    def open(cls, path: Path) -> Catalog:
        if not path.exists():
            raise VaultStateError(f"no catalog at {path}")
        conn = cls._connect(path)
        cat = cls(conn, path)
        try:
            cat.migrate()
        except BaseException:
            conn.close()
            raise
        return cat

    @classmethod
    def from_image(cls, path: Path, image: bytes) -> Catalog:
        """Write a database image (from a snapshot) to ``path`` and open it."""
        if len(image) >= 100 and image[18:20] == b"\x02\x02":
            # A WAL-mode database's header (file format 2) cannot be deserialized into an
            # in-memory database; format 1 is the same file in rollback-journal mode.
            image = image[:18] + b"\x01\x01" + image[20:]
        mem = sqlite3.connect(":memory:")
        try:
            mem.deserialize(image)
            # quick_check: pages and b-trees well formed (what keeps SQLite safe), not
            # integrity_check's index-to-table comparison (10 s at 750,000 files): the image
            # is sealed under the catalog key, so only a device of the vault made it.
            check = mem.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise FormatError("catalog snapshot failed SQLite's quick check")
            create_private(path)
            disk = sqlite3.connect(str(path))
            with disk:
                mem.backup(disk)
            disk.close()
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"catalog snapshot is not a valid database: {exc}") from None
        finally:
            mem.close()
        cat = cls.open(path)
        cat.gc.copied(len(cat.jns.outbox()))  # the writer's removals: wait for its records
        cat.jns.drop_outbox()  # the writer's unsent ops are its own to send
        return cat

    def image(self) -> bytes:
        """A consistent serialised image of the whole database (for snapshots)."""
        mem = sqlite3.connect(":memory:")
        try:
            self.conn.backup(mem)
            return bytes(mem.serialize())
        finally:
            mem.close()

    def close(self) -> None:
        self.conn.close()

    def total_changes(self) -> int:
        """Rows changed through this connection since it opened (to see if a write happened)."""
        return int(self.conn.total_changes)

    # -- meta ---------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta_json(self, key: str) -> JSONValue:
        raw = self.meta(key)
        return None if raw is None else json.loads(raw)

    # -- providers ----------------------------------------------------------------------

    def add_provider(
        self,
        name: str,
        kind: str,
        url: str,
        jurisdiction: str | None = None,
        labels: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        domain: str | None = None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO providers(name, kind, url, jurisdiction, labels, config, added_at, domain) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                kind,
                url,
                jurisdiction,
                json.dumps(labels or {}, sort_keys=True),
                json.dumps(config or {}, sort_keys=True),
                _now(),
                domain,
            ),
        )
        return int(cur.lastrowid or 0)

    def set_provider_place(
        self, provider: int, jurisdiction: str | None, domain: str | None
    ) -> None:
        """Set where a provider is: its jurisdiction and failure domain (None: unset, and
        for the domain the default for its kind and URL)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE providers SET jurisdiction = ?, domain = ? WHERE id = ?",
                (jurisdiction, domain, provider),
            )

    def set_provider_labels(self, provider: int, labels: dict[str, str]) -> None:
        """Replace a provider's labels (free-form KEY=VALUE metadata)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE providers SET labels = ? WHERE id = ?",
                (json.dumps(labels, sort_keys=True), provider),
            )

    def rename_provider(self, provider: int, name: str) -> None:
        """Give a provider row another name (a removed one frees its name for reuse; its id,
        and so its history, stay). Inside the caller's transaction."""
        self.conn.execute("UPDATE providers SET name = ? WHERE id = ?", (name, provider))

    def set_provider_state(self, provider: int, state: str) -> None:
        """``active``, ``draining`` (shares being moved away) or ``removed``."""
        with self.transaction() as c:
            c.execute("UPDATE providers SET state = ? WHERE id = ?", (state, provider))

    def packs_of_version(self, version: int) -> set[int]:
        """The packs holding the chunks of a version's files."""
        return {
            int(r[0])
            for r in self.conn.execute(
                "SELECT DISTINCT c.pack FROM entries e JOIN content_chunks cc ON cc.content = e.content "
                "JOIN chunks c ON c.id = cc.chunk WHERE e.version = ?",
                (version,),
            )
        }

    def providers(self, *, include_removed: bool = False) -> list[ProviderRow]:
        sql = (
            "SELECT id, name, kind, url, jurisdiction, labels, config, state, domain FROM providers"
        )
        if not include_removed:
            sql += " WHERE state != 'removed'"
        rows = self.conn.execute(sql + " ORDER BY id").fetchall()
        return [
            ProviderRow(
                r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), r[7], r[8]
            )
            for r in rows
        ]

    # -- packs, shares, chunks ----------------------------------------------------------

    def begin_pack(
        self,
        pack_id: bytes,
        size: int,
        k: int,
        n: int,
        placement: Iterable[tuple[int, int, int, bytes]],
    ) -> int:
        """Record a pack as pending with its planned shares (idx, provider, size, root)."""
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO packs(pack_id, size, k, n, state, created_at) VALUES (?, ?, ?, ?, 'pending', ?)",
                (pack_id, size, k, n, _now()),
            )
            pack = int(cur.lastrowid or 0)
            c.executemany(
                "INSERT INTO shares(pack, idx, provider, size, root) VALUES (?, ?, ?, ?, ?)",
                [(pack, i, p, s, r) for i, p, s, r in placement],
            )
        return pack

    def commit_pack(
        self, pack: int, chunks: Iterable[tuple[bytes, int, int, int, bytes]], key_epoch: int = 0
    ) -> dict[bytes, int]:
        """Mark a pack live and insert its chunks (chunk_id, offset, length, plain_len, wrapped_key),
        whose keys are wrapped under the content key of ``key_epoch``. A chunk this catalog
        has in another pack (one no content refers to, which a put of a vault of several
        devices does not deduplicate against) moves to this pack."""
        from ownvault.engine.store.catalog.journalrows import place_chunks  # noqa: PLC0415

        with self.transaction() as c:
            c.execute("UPDATE packs SET state = 'live' WHERE id = ?", (pack,))
            return place_chunks(c, pack, chunks, key_epoch)

    def pending_packs(self) -> list[tuple[int, bytes]]:
        return [
            (r[0], r[1])
            for r in self.conn.execute("SELECT id, pack_id FROM packs WHERE state = 'pending'")
        ]

    def drop_pack(self, pack: int) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM chunks WHERE pack = ?", (pack,))
            c.execute("DELETE FROM shares WHERE pack = ?", (pack,))
            c.execute("DELETE FROM packs WHERE id = ?", (pack,))

    def move_share(self, pack: int, idx: int, provider: int) -> None:
        """Record that share ``idx`` of ``pack`` is now held by ``provider``."""
        with self.transaction() as c:
            c.execute(
                "UPDATE shares SET provider = ? WHERE pack = ? AND idx = ?", (provider, pack, idx)
            )

    def replace_pack(self, old: int, new: int) -> None:
        """Move every chunk of pack ``old`` to pending pack ``new``, make it live, drop ``old``."""
        with self.transaction() as c:
            c.execute("UPDATE chunks SET pack = ? WHERE pack = ?", (new, old))
            c.execute("UPDATE packs SET state = 'live' WHERE id = ?", (new,))
            c.execute("DELETE FROM shares WHERE pack = ?", (old,))
            c.execute("DELETE FROM packs WHERE id = ?", (old,))

    def shares_of(self, pack: int) -> list[ShareRow]:
        return [
            ShareRow(*r)
            for r in self.conn.execute(
                "SELECT pack, idx, provider, size, root FROM shares WHERE pack = ? ORDER BY idx",
                (pack,),
            )
        ]

    def pack_info(self, pack: int) -> tuple[bytes, int, int, int]:
        row = self.conn.execute(
            "SELECT pack_id, size, k, n FROM packs WHERE id = ?", (pack,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown pack {pack}")
        return bytes(row[0]), int(row[1]), int(row[2]), int(row[3])

    def lookup_chunk(self, chunk_id: bytes) -> int | None:
        row = self.conn.execute(
            "SELECT c.id FROM chunks c JOIN packs p ON p.id = c.pack "
            "WHERE c.chunk_id = ? AND p.state = 'live'",
            (chunk_id,),
        ).fetchone()
        return None if row is None else int(row[0])

    def names_of_pack(self, pack: int) -> set[str]:
        """The stored names with a chunk in ``pack`` (what losing it would damage)."""
        return {
            str(r[0])
            for r in self.conn.execute(
                "SELECT DISTINCT o.name FROM chunks c JOIN content_chunks cc ON cc.chunk = c.id "
                "JOIN entries e ON e.content = cc.content JOIN versions v ON v.id = e.version "
                "JOIN objects o ON o.id = v.object WHERE c.pack = ?",
                (pack,),
            )
        }

    def live_packs(self) -> list[int]:
        return [
            r[0] for r in self.conn.execute("SELECT id FROM packs WHERE state = 'live' ORDER BY id")
        ]

    def unreferenced_packs(self) -> list[int]:
        """Live packs none of whose chunks is referenced by any content."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT p.id FROM packs p WHERE p.state = 'live' AND NOT EXISTS ("
                " SELECT 1 FROM chunks c JOIN content_chunks cc ON cc.chunk = c.id"
                " WHERE c.pack = p.id)"
            )
        ]

    # -- contents and versions ----------------------------------------------------------

    def object_id(self, name: str, *, create: bool = False) -> int | None:
        row = self.conn.execute("SELECT id FROM objects WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        cur = self.conn.execute(
            "INSERT INTO objects(name, created_at) VALUES (?, ?)", (name, _now())
        )
        return int(cur.lastrowid or 0)

    def add_version(
        self,
        obj: int,
        kind: str,
        size: int,
        file_count: int,
        cid: str | None,
        cid_profile: str | None,
        created_at: int | None = None,
    ) -> tuple[int, int]:
        row = self.conn.execute(
            "SELECT COALESCE(MAX(number), 0) FROM versions WHERE object = ?", (obj,)
        ).fetchone()
        number = int(row[0]) + 1
        cur = self.conn.execute(
            "INSERT INTO versions(object, number, kind, created_at, size, file_count, cid, cid_profile) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (obj, number, kind, created_at or _now(), size, file_count, cid, cid_profile),
        )
        return int(cur.lastrowid or 0), number

    def add_entries(
        self,
        version: int,
        entries: Iterable[tuple[str, str, int, int, int, int | None, str | None]],
    ) -> None:
        self.conn.executemany(
            "INSERT INTO entries(version, path, kind, mode, mtime_ns, size, content, target) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(version, *e) for e in entries],
        )

    def add_tags(self, obj: int, tags: Iterable[str]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO tags(object, tag) VALUES (?, ?)", [(obj, t) for t in tags]
        )

    def remove_tags(self, obj: int, tags: Iterable[str]) -> None:
        self.conn.executemany(
            "DELETE FROM tags WHERE object = ? AND tag = ?", [(obj, t) for t in tags]
        )

    def tags(self, obj: int) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute("SELECT tag FROM tags WHERE object = ? ORDER BY tag", (obj,))
        ]

    _VERSION_COLS = (
        "v.id, o.name, v.number, v.kind, v.created_at, v.size, v.file_count, v.cid, v.cid_profile"
    )

    def version(self, name: str, number: int | None = None) -> VersionRow:
        sql = f"SELECT {self._VERSION_COLS} FROM versions v JOIN objects o ON o.id = v.object WHERE o.name = ?"
        if number is None:
            row = self.conn.execute(sql + " ORDER BY v.number DESC LIMIT 1", (name,)).fetchone()
        else:
            row = self.conn.execute(sql + " AND v.number = ?", (name, number)).fetchone()
        if row is None:
            if number is not None and self.object_id(name) is not None:
                raise NotFoundError(f"{name} has no version {number}", name=name)
            raise NotFoundError(f"no such file in the vault: {name}", name=name)
        return VersionRow(*row)

    def version_by_id(self, version: int) -> VersionRow:
        row = self.conn.execute(
            f"SELECT {self._VERSION_COLS} FROM versions v JOIN objects o ON o.id = v.object "
            "WHERE v.id = ?",
            (version,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown version {version}")
        return VersionRow(*row)

    def versions(self, name: str) -> list[VersionRow]:
        rows = self.conn.execute(
            f"SELECT {self._VERSION_COLS} FROM versions v JOIN objects o ON o.id = v.object "
            "WHERE o.name = ? ORDER BY v.number",
            (name,),
        ).fetchall()
        if not rows:
            raise NotFoundError(f"no such file in the vault: {name}", name=name)
        return [VersionRow(*r) for r in rows]

    def latest_versions(self, prefix: str = "") -> list[VersionRow]:
        rows = self.conn.execute(
            f"SELECT {self._VERSION_COLS} FROM versions v JOIN objects o ON o.id = v.object "
            "WHERE v.number = (SELECT MAX(number) FROM versions WHERE object = v.object) "
            "AND substr(o.name, 1, ?) = ? ORDER BY o.name",
            (len(prefix), prefix),
        ).fetchall()
        return [VersionRow(*r) for r in rows]

    def version_counts(self) -> dict[str, int]:
        return {
            r[0]: r[1]
            for r in self.conn.execute(
                "SELECT o.name, COUNT(v.id) FROM objects o JOIN versions v ON v.object = o.id GROUP BY o.id"
            )
        }

    def entries(self, version: int, prefix: str = "") -> list[EntryRow]:
        rows = self.conn.execute(
            "SELECT e.path, e.kind, e.mode, e.mtime_ns, e.size, e.content, e.target, c.cid "
            "FROM entries e LEFT JOIN contents c ON c.id = e.content "
            "WHERE e.version = ? AND substr(e.path, 1, ?) = ? ORDER BY e.path",
            (version, len(prefix), prefix),
        ).fetchall()
        return [EntryRow(*r) for r in rows]

    def content_chunks(self, content: int) -> list[ChunkRef]:
        rows = self.conn.execute(
            "SELECT c.id, c.chunk_id, c.pack, p.pack_id, p.size, c.offset, c.length, c.plain_len, "
            "c.wrapped_key, cc.offset, c.key_epoch FROM content_chunks cc "
            "JOIN chunks c ON c.id = cc.chunk JOIN packs p ON p.id = c.pack "
            "WHERE cc.content = ? ORDER BY cc.seq",
            (content,),
        ).fetchall()
        return [
            ChunkRef(
                r[0],
                bytes(r[1]),
                r[2],
                bytes(r[3]),
                r[4],
                r[5],
                r[6],
                r[7],
                bytes(r[8]),
                r[9],
                r[10],
            )
            for r in rows
        ]

    def delete_versions(self, name: str, number: int | None = None) -> int:
        """Delete one version (or all, with the object); return how many were deleted."""
        obj = self.object_id(name)
        if obj is None:
            raise NotFoundError(f"no such file in the vault: {name}", name=name)
        with self.transaction() as c:
            if number is None:
                n = c.execute("DELETE FROM versions WHERE object = ?", (obj,)).rowcount
                c.execute("DELETE FROM objects WHERE id = ?", (obj,))
            else:
                n = c.execute(
                    "DELETE FROM versions WHERE object = ? AND number = ?", (obj, number)
                ).rowcount
                if n == 0:
                    raise NotFoundError(f"{name} has no version {number}", name=name)
                left = c.execute(
                    "SELECT COUNT(*) FROM versions WHERE object = ?", (obj,)
                ).fetchone()
                if left[0] == 0:
                    c.execute("DELETE FROM objects WHERE id = ?", (obj,))
                elif len(self.journal.devices()) > 1:
                    # Numbered as the removal applied on the other devices numbers them
                    # (positions in the merge order). A vault of one device keeps its
                    # numbers: its backup runs name their versions by number.
                    self.jns.renumber(obj)
            c.execute(
                "DELETE FROM contents WHERE id NOT IN (SELECT content FROM entries WHERE content IS NOT NULL)"
            )
        return int(n)

    def drop_chunks_of_packs(
        self, packs: list[int], doomed: Iterable[tuple[int, str]] = (), reason: str = ""
    ) -> None:
        """Delete packs' rows, queueing their ``doomed`` (provider, share name) objects for
        deletion in the same transaction (a crash before they are deleted leaves them
        queued, not forgotten)."""
        with self.transaction() as c:
            for pack in packs:
                c.execute("DELETE FROM chunks WHERE pack = ?", (pack,))
                c.execute("DELETE FROM shares WHERE pack = ?", (pack,))
                c.execute("DELETE FROM packs WHERE id = ?", (pack,))
            c.executemany(
                "INSERT OR IGNORE INTO doomed_objects(provider, name, reason, added_at) "
                "VALUES (?, ?, ?, ?)",
                [(p, name, reason, _now()) for p, name in doomed],
            )

    # -- statistics ---------------------------------------------------------------------
