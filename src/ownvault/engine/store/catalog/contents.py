"""Contents in bulk (tables ``contents``, ``content_chunks``): a put's new contents
inserted in two statements, many files' chunk lists read in one query
(``catalog.contents``).

One statement or query per file costs more than the file itself when files are a few
KiB; the rows are those ``Catalog.content_chunks`` reads one content at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from ownvault.engine.store.catalog.rows import ChunkRef
from ownvault.engine.store.catalog.tables import Tables

__all__ = ["MAX_CONTENTS", "ContentTables", "NewContent"]

# size, cid, cid_profile, tsize, chunk rows, chunk lengths (see ContentTables.add_many)
NewContent = tuple[int, str | None, str | None, int | None, list[int], list[int]]

MAX_CONTENTS = 500  # contents per query (SQLite allows 999 variables before 3.32)


class ContentTables(Tables):
    """Table group ``contents`` in bulk: ``catalog.contents``."""

    def add_many(self, items: Sequence[NewContent]) -> list[int]:
        """Insert contents (size, cid, cid_profile, tsize, chunk rows, chunk lengths), each
        with its chunk list (stream offsets from the lengths), two statements for all of
        them; their ids in order (those SQLite would give: MAX(id) + 1 onwards). Inside the
        caller's transaction."""
        c = self._conn
        first = int(c.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM contents").fetchone()[0])
        c.executemany(
            "INSERT INTO contents(id, size, cid, cid_profile, tsize) VALUES (?, ?, ?, ?, ?)",
            [(first + i, *item[:4]) for i, item in enumerate(items)],
        )
        links = []
        for i, (_size, _cid, _profile, _tsize, chunk_rows, chunk_lens) in enumerate(items):
            offset = 0
            for seq, (chunk, length) in enumerate(zip(chunk_rows, chunk_lens, strict=True)):
                links.append((first + i, seq, chunk, offset))
                offset += length
        c.executemany(
            "INSERT INTO content_chunks(content, seq, chunk, offset) VALUES (?, ?, ?, ?)", links
        )
        return list(range(first, first + len(items)))

    def chunks_of(self, contents: Sequence[int]) -> dict[int, list[ChunkRef]]:
        """The chunk list of each of ``contents`` (at most :data:`MAX_CONTENTS`; repeats
        allowed), in stream order, as ``Catalog.content_chunks`` gives it; a content
        without chunks (empty) maps to an empty list."""
        wanted = sorted(set(contents))
        if len(wanted) > MAX_CONTENTS:
            raise ValueError(f"at most {MAX_CONTENTS} contents per query")
        out: dict[int, list[ChunkRef]] = {c: [] for c in wanted}
        if not wanted:
            return out
        marks = ", ".join("?" * len(wanted))
        rows = self._conn.execute(
            "SELECT cc.content, c.id, c.chunk_id, c.pack, p.pack_id, p.size, c.offset, "
            "c.length, c.plain_len, c.wrapped_key, cc.offset, c.key_epoch FROM content_chunks cc "
            "JOIN chunks c ON c.id = cc.chunk JOIN packs p ON p.id = c.pack "
            f"WHERE cc.content IN ({marks}) ORDER BY cc.content, cc.seq",
            wanted,
        ).fetchall()
        for r in rows:
            out[r[0]].append(
                ChunkRef(
                    row=r[1],
                    chunk_id=bytes(r[2]),
                    pack=r[3],
                    pack_id=bytes(r[4]),
                    pack_size=r[5],
                    offset=r[6],
                    length=r[7],
                    plain_len=r[8],
                    wrapped_key=bytes(r[9]),
                    stream_offset=r[10],
                    key_epoch=r[11],
                )
            )
        return out
