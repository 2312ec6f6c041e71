"""A version's rows out of this catalog and into another (``catalog.jrows``): the SQL side of
the ``rows`` of a journal ``put`` (codec: ``engine.store.journalrows``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ownvault.engine.store.catalog.tables import Tables
from ownvault.engine.store.journalrows import (
    ChunkRow,
    ContentRow,
    EntryOut,
    PackRow,
    ShareOut,
    VersionRows,
)
from ownvault.errors import NotFoundError, VaultStateError

__all__ = ["JournalRowTables", "RawRows", "place_chunks"]

_BATCH = 500  # chunk ids per query: under SQLite's bound on a statement's parameters


def place_chunks(
    conn: sqlite3.Connection,
    pack: int,
    chunks: Iterable[tuple[bytes, int, int, int, bytes]],
    key_epoch: int,
) -> dict[bytes, int]:
    """Insert ``chunks`` (chunk_id, offset, length, plain_len, wrapped key; distinct ids)
    in ``pack``, or move the catalog's row of one there (its id kept): the row of a chunk
    no content refers to, stored again by a put of a vault of several devices
    (docs/design.md, "GC in the engine"). One query per ``_BATCH`` ids finds the rows this
    catalog has, one ``executemany`` moves them (an UPDATE per row, not an UPSERT: its
    conflict clause would override the ``OR IGNORE`` of the triggers an update fires) and
    one inserts the others; their row ids by chunk id."""
    items = list(chunks)
    known: dict[bytes, int] = {}
    for at in range(0, len(items), _BATCH):
        part = [c[0] for c in items[at : at + _BATCH]]
        for r in conn.execute(
            f"SELECT chunk_id, id FROM chunks WHERE chunk_id IN ({','.join('?' * len(part))})",
            part,
        ):
            known[bytes(r[0])] = int(r[1])
    moves = [
        (pack, offset, length, plain_len, wrapped, key_epoch, known[chunk_id])
        for chunk_id, offset, length, plain_len, wrapped in items
        if chunk_id in known
    ]
    new = [
        (pack, offset, length, plain_len, wrapped, key_epoch, chunk_id)
        for chunk_id, offset, length, plain_len, wrapped in items
        if chunk_id not in known
    ]
    conn.executemany(
        "UPDATE chunks SET pack = ?, offset = ?, length = ?, plain_len = ?, wrapped_key = ?, "
        "key_epoch = ? WHERE id = ?",
        moves,
    )
    first = _next_chunk_row(conn)
    conn.executemany(
        "INSERT INTO chunks(pack, offset, length, plain_len, wrapped_key, key_epoch, chunk_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        new,
    )
    if new:
        made = [
            int(r[0])
            for r in conn.execute("SELECT id FROM chunks WHERE id >= ? ORDER BY id", (first,))
        ]
        if len(made) != len(new):
            raise VaultStateError(f"chunks: {len(made)} new rows, expected {len(new)}")
        known.update(zip([n[-1] for n in new], made, strict=True))
    return {item[0]: known[item[0]] for item in items}


def _next_chunk_row(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks").fetchone()[0])


@dataclass(frozen=True, slots=True)
class RawRows:
    """A version's rows as the catalog's queries return them (``JournalRowTables.export_raw``)."""

    head: tuple[Any, ...]
    entries: list[Any]
    contents: list[Any]
    chunks: list[Any]
    packs: dict[int, PackRow]


class JournalRowTables(Tables):
    """Reads a version's ``versions``/``entries``/``contents``/``content_chunks``/``chunks``/
    ``packs``/``shares`` rows; inserts them (as another device wrote them) here."""

    def export(self, version: int) -> VersionRows:
        """The rows of ``version`` in the codec's canonical order."""
        return self.rows_of(self.export_raw(version))

    def export_raw(self, version: int) -> RawRows:
        """What :meth:`export` builds the rows of ``version`` from, as the queries return
        it: four queries (the version, its entries, their contents, and those contents'
        chunks in stream order) whatever its number of files, and two per pack. Equal raw
        rows build equal rows (``journalsync.EncodedRows`` compares them: cheaper than
        building and comparing the rows)."""
        q = self._conn.execute
        head = q(
            "SELECT created_at, file_count, cid_profile FROM versions WHERE id = ?", (version,)
        ).fetchone()
        if head is None:
            raise NotFoundError(f"unknown version {version}")
        entries = q(
            "SELECT path, kind, mode, mtime_ns, size, content, target FROM entries "
            "WHERE version = ?",
            (version,),
        ).fetchall()
        contents = q(
            "SELECT id, size, cid, cid_profile, tsize FROM contents "
            "WHERE id IN (SELECT content FROM entries WHERE version = ?)",
            (version,),
        ).fetchall()
        chunks = q(
            "SELECT cc.content, c.id, c.chunk_id, c.pack, c.offset, c.length, c.plain_len, "
            "c.wrapped_key, c.key_epoch FROM content_chunks cc JOIN chunks c ON c.id = cc.chunk "
            "WHERE cc.content IN (SELECT content FROM entries WHERE version = ?) "
            "ORDER BY cc.content, cc.seq",
            (version,),
        ).fetchall()
        packs = {p: self._pack(p) for p in sorted({int(r[3]) for r in chunks})}
        return RawRows(tuple(head), entries, contents, chunks, packs)

    @staticmethod
    def rows_of(raw: RawRows) -> VersionRows:
        """The rows :meth:`export_raw` read, in the codec's canonical order."""
        raw_entries = sorted(raw.entries, key=lambda r: str(r[0]))
        heads = {int(r[0]): r[1:] for r in raw.contents}
        streams: dict[int, list[int]] = {}  # content -> its chunk rows in stream order
        chunk_rows: dict[int, tuple[bytes, int, int, int, int, bytes, int]] = {}
        for r in raw.chunks:
            streams.setdefault(int(r[0]), []).append(int(r[1]))
            chunk_rows[int(r[1])] = (bytes(r[2]), *r[3:7], bytes(r[7]), int(r[8]))
        content_at: dict[int, int] = {}
        chunk_at: dict[int, int] = {}
        pack_at: dict[int, int] = {}
        entries: list[EntryOut] = []
        contents: list[ContentRow] = []
        chunks: list[ChunkRow] = []
        for path, kind, mode, mtime_ns, size, content, target in raw_entries:
            index = None
            if content is not None:
                index = content_at.get(content)
                if index is None:
                    index = content_at[content] = len(contents)
                    refs = []
                    for chunk in streams.get(content, ()):
                        at = chunk_at.get(chunk)
                        if at is None:
                            at = chunk_at[chunk] = len(chunk_at)
                        refs.append(at)
                    c_size, cid, cid_profile, tsize = heads[content]
                    contents.append(ContentRow(int(c_size), cid, cid_profile, tsize, tuple(refs)))
            entries.append(EntryOut(path, kind, mode, mtime_ns, size, index, target))
        for row in chunk_at:  # insertion order: the order of first use
            cid, pack, offset, length, plain_len, key, epoch = chunk_rows[row]
            if pack not in pack_at:
                pack_at[pack] = len(pack_at)
            chunks.append(ChunkRow(cid, pack_at[pack], offset, length, plain_len, key, epoch))
        created_at, file_count, cid_profile = raw.head
        return VersionRows(
            int(created_at),
            int(file_count),
            cid_profile,
            tuple(entries),
            tuple(contents),
            tuple(chunks),
            tuple(raw.packs[p] for p in pack_at),
        )

    def _pack(self, pack: int) -> PackRow:
        q = self._conn.execute
        p = q("SELECT pack_id, size, k, n, created_at FROM packs WHERE id = ?", (pack,)).fetchone()
        shares = tuple(
            ShareOut(int(s[0]), str(s[1]), int(s[2]), bytes(s[3]))
            for s in q(
                "SELECT s.idx, pr.name, s.size, s.root FROM shares s "
                "JOIN providers pr ON pr.id = s.provider WHERE s.pack = ? ORDER BY s.idx",
                (pack,),
            )
        )
        return PackRow(bytes(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[4]), shares)

    def insert(self, name: str, kind: str, size: int, cid: str | None, rows: VersionRows) -> int:
        """Insert a version another device wrote (its object made if new), reusing the packs
        and chunks this catalog already has; the new version's row id. Runs inside the
        caller's transaction. ``VaultStateError`` if a share names a provider this catalog
        does not know (its settings are older than the writer's)."""
        q = self._conn.execute
        providers = {str(r[0]): int(r[1]) for r in q("SELECT name, id FROM providers")}
        pack_ids = [self._own_pack(p, providers) for p in rows.packs]
        chunk_ids = self._own_chunks(rows.chunks, pack_ids)
        contents = self._add_contents(rows.contents, rows.chunks, chunk_ids)
        obj = q("SELECT id FROM objects WHERE name = ?", (name,)).fetchone()
        if obj is None:
            cur = q("INSERT INTO objects(name, created_at) VALUES (?, ?)", (name, rows.created_at))
            obj_id = int(cur.lastrowid or 0)
        else:
            obj_id = int(obj[0])
        number = q(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE object = ?", (obj_id,)
        ).fetchone()[0]
        cur = q(
            "INSERT INTO versions(object, number, kind, created_at, size, file_count, cid, "
            "cid_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (obj_id, number, kind, rows.created_at, size, rows.file_count, cid, rows.cid_profile),
        )
        version = int(cur.lastrowid or 0)
        self._conn.executemany(
            "INSERT INTO entries(version, path, kind, mode, mtime_ns, size, content, target) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    version,
                    e.path,
                    e.kind,
                    e.mode,
                    e.mtime_ns,
                    e.size,
                    None if e.content is None else contents[e.content],
                    e.target,
                )
                for e in rows.entries
            ],
        )
        return version

    def _own_pack(self, pack: PackRow, providers: dict[str, int]) -> int:
        """This catalog's row of ``pack``: its own if it has one (its share places may be
        newer), else a new live pack with the writer's share places."""
        q = self._conn.execute
        row = q("SELECT id FROM packs WHERE pack_id = ?", (pack.pack_id,)).fetchone()
        if row is not None:
            return int(row[0])
        for s in pack.shares:
            if s.provider not in providers:
                raise VaultStateError(
                    f"pack {pack.pack_id.hex()} has a share on provider {s.provider!r}, which "
                    "this vault does not know: its settings are older than the writer's"
                )
        cur = q(
            "INSERT INTO packs(pack_id, size, k, n, state, created_at) "
            "VALUES (?, ?, ?, ?, 'live', ?)",
            (pack.pack_id, pack.size, pack.k, pack.n, pack.created_at),
        )
        new = int(cur.lastrowid or 0)
        self._conn.executemany(
            "INSERT INTO shares(pack, idx, provider, size, root) VALUES (?, ?, ?, ?, ?)",
            [(new, s.idx, providers[s.provider], s.size, s.root) for s in pack.shares],
        )
        return new

    def _own_chunks(self, chunks: tuple[ChunkRow, ...], pack_ids: list[int]) -> list[int]:
        """This catalog's rows of ``chunks``, in order: its own row of a chunk some content
        refers to; else the writer's place, the known row moved there (``place_chunks``'
        rule, one UPDATE per moved chunk so the triggers see each move) or a new row (a chunk
        only removed versions held here may be in a pack another device's GC deleted; the
        writer stored it again, docs/design.md "GC in the engine"). One query per
        ``_BATCH`` chunks finds the known ones; the new ones go in by one ``executemany``."""
        known: dict[bytes, tuple[int, bool]] = {}
        ids = [c.chunk_id for c in chunks]
        for at in range(0, len(ids), _BATCH):
            part = ids[at : at + _BATCH]
            for r in self._conn.execute(
                "SELECT chunk_id, id, EXISTS (SELECT 1 FROM content_chunks cc "
                "WHERE cc.chunk = chunks.id) FROM chunks "
                f"WHERE chunk_id IN ({','.join('?' * len(part))})",
                part,
            ):
                known[bytes(r[0])] = (int(r[1]), bool(r[2]))
        out: list[int] = []
        moves: list[tuple[int, int, int, int, bytes, int, int]] = []
        new: list[tuple[int, int, int, int, bytes, int, bytes]] = []
        for c in chunks:
            row = known.get(c.chunk_id)
            values = (pack_ids[c.pack], c.offset, c.length, c.plain_len, c.wrapped_key, c.key_epoch)
            if row is None:
                new.append((*values, c.chunk_id))
                out.append(-len(new))  # filled in below
            else:
                if not row[1]:
                    moves.append((*values, row[0]))
                out.append(row[0])
        self._conn.executemany(
            "UPDATE chunks SET pack = ?, offset = ?, length = ?, plain_len = ?, wrapped_key = ?, "
            "key_epoch = ? WHERE id = ?",
            moves,
        )
        first = self._next_id("chunks")
        self._conn.executemany(
            "INSERT INTO chunks(pack, offset, length, plain_len, wrapped_key, key_epoch, chunk_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            new,
        )
        made = self._ids_from("chunks", first, len(new))
        return [made[-i - 1] if i < 0 else i for i in out]

    def _next_id(self, table: str) -> int:
        row = self._conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()
        return int(row[0])

    def _ids_from(self, table: str, first: int, count: int) -> list[int]:
        """The ids of the ``count`` rows one ``executemany`` just inserted in ``table`` (whose
        rowids SQLite gives as one more than the largest, in insertion order)."""
        if count == 0:
            return []
        got = [
            int(r[0])
            for r in self._conn.execute(
                f"SELECT id FROM {table} WHERE id >= ? ORDER BY id", (first,)
            )
        ]
        if len(got) != count:
            raise VaultStateError(f"{table}: {len(got)} new rows, expected {count}")
        return got

    def _add_contents(
        self, contents: tuple[ContentRow, ...], chunks: tuple[ChunkRow, ...], chunk_ids: list[int]
    ) -> list[int]:
        """New rows of ``contents`` and their ``content_chunks``: one ``executemany`` each."""
        first = self._next_id("contents")
        self._conn.executemany(
            "INSERT INTO contents(size, cid, cid_profile, tsize) VALUES (?, ?, ?, ?)",
            [(c.size, c.cid, c.cid_profile, c.tsize) for c in contents],
        )
        rows = self._ids_from("contents", first, len(contents))
        links: list[tuple[int, int, int, int]] = []
        for row, content in zip(rows, contents, strict=True):
            offset = 0
            for seq, c in enumerate(content.chunks):
                links.append((row, seq, chunk_ids[c], offset))
                offset += chunks[c].plain_len
        self._conn.executemany(
            "INSERT INTO content_chunks(content, seq, chunk, offset) VALUES (?, ?, ?, ?)", links
        )
        return rows
