"""The namespace as the catalog journal sees it (``catalog.jns``, schema 11): the dots and
clocks of versions, tag additions by dot, removed dots, and the outbox of ops this device
made and has not yet sent.

Capture is by triggers (``MIGRATIONS[11]``), in the transaction of the change itself: a
version inserted queues a ``put``; a version with a dot deleted queues an ``rm`` of that
dot (``catalog.keys.delete_versions`` queues a ``forget`` instead); a tag added queues a
``tag`` (and a ``tag_adds`` row without a dot yet); a tag deleted queues an ``untag`` of
every addition of it this device has seen; a renamed object queues an ``rm`` of its
versions' dots and a ``put`` of each under the new name, and moves its tags. An op that is
undone before it is sent goes with what it made (``ON DELETE CASCADE``): a version put and
removed in one block never leaves the device. While another device's records are applied
(``mute``), nothing is captured.

Sending (``engine.store.journalsync``): the outbox rows are stamped with the record seq
and op index they go out in, the record is appended, then :meth:`JournalNamespace.settle`
gives the versions and tag additions their dots and drops the rows. A crash between the
append and the settle leaves the stamps, and the next send settles them first when the
device's head shows the record was written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ownvault.core.journalclock import Dot, Hlc
from ownvault.engine.store.catalog.tables import Tables

__all__ = ["JournalNamespace", "OutRow"]


@dataclass(frozen=True, slots=True)
class OutRow:
    """One op in the outbox: ``version`` for a put, ``tag`` (name, tag) for a tag, ``dot``
    for an rm, forget or untag; ``sent``: the (seq, index) it was stamped with."""

    pos: int
    op: str
    version: int | None
    tag: tuple[str, str] | None
    dot: Dot | None
    sent: tuple[int, int] | None


def _dot(device: object, seq: object, idx: object) -> Dot | None:
    if device is None:
        return None
    return Dot(bytes(device), int(seq), int(idx))  # type: ignore[call-overload]


class JournalNamespace(Tables):
    """``versions.dot_*``/``hlc_*``, ``tag_adds``, ``journal_gone``, ``journal_out``."""

    # -- the outbox -------------------------------------------------------------------------

    def outbox(self) -> list[OutRow]:
        rows = self._conn.execute(
            "SELECT o.pos, o.op, o.version, a.name, a.tag, o.device, o.seq, o.idx, "
            "o.sent_seq, o.sent_idx FROM journal_out o LEFT JOIN tag_adds a ON a.id = o.tag_add "
            "ORDER BY o.pos"
        ).fetchall()
        return [
            OutRow(
                int(r[0]),
                str(r[1]),
                None if r[2] is None else int(r[2]),
                None if r[3] is None else (str(r[3]), str(r[4])),
                _dot(r[5], r[6], r[7]),
                None if r[8] is None else (int(r[8]), int(r[9])),
            )
            for r in rows
        ]

    def stamp(self, stamps: Iterable[tuple[int, int, int]]) -> None:
        """Mark outbox rows (pos, seq, index) as going out in record ``seq`` (own transaction)."""
        with self.transaction() as c:
            c.executemany(
                "UPDATE journal_out SET sent_seq = ?, sent_idx = ? WHERE pos = ?",
                [(seq, idx, pos) for pos, seq, idx in stamps],
            )

    def unstamp(self) -> None:
        """The append failed: the stamped rows go out in the next record (own transaction)."""
        with self.transaction() as c:
            c.execute("UPDATE journal_out SET sent_seq = NULL, sent_idx = NULL")
            c.execute("UPDATE journal_keys_out SET sent_seq = NULL")

    def drop_outbox(self) -> None:
        """Empty the outbox of a catalog copied from another device (own transaction)."""
        with self.transaction() as c:
            c.execute("DELETE FROM journal_out")
            c.execute("DELETE FROM journal_keys_out")
            c.execute("DELETE FROM journal_mute")

    def settings_changed(self) -> set[str]:
        """What the journal does not carry and changed since the last catalog snapshot (a
        snapshot is due): ``settings`` (providers, policy, contacts, tag policies, grants,
        DAGs, backup profiles and runs, NFTs), ``places`` (packs, chunks and shares moved
        or deleted, a version too big for a record)."""
        return {str(r[0]) for r in self._conn.execute("SELECT kind FROM journal_settings")}

    def settings_pushed(self) -> None:
        """A snapshot holds them now (inside the caller's transaction)."""
        self._conn.execute("DELETE FROM journal_settings")

    def undotted(self) -> int:
        """How many versions here have no dot: they went out in no record (a version of
        the snapshot era too big for one, spilled), so only a catalog snapshot carries them."""
        return int(
            self._conn.execute("SELECT COUNT(*) FROM versions WHERE dot_device IS NULL").fetchone()[
                0
            ]
        )

    def spill(self, pos: int) -> None:
        """Take a put no record can carry out of the outbox; the next catalog snapshot
        carries its version instead (own transaction)."""
        with self.transaction() as c:
            c.execute("DELETE FROM journal_out WHERE pos = ?", (pos,))
            c.execute("INSERT OR IGNORE INTO journal_settings(kind) VALUES ('places')")

    def stamped_seq(self) -> int | None:
        row = self._conn.execute(
            "SELECT MAX(s) FROM (SELECT MAX(sent_seq) AS s FROM journal_out "
            "UNION ALL SELECT MAX(sent_seq) FROM journal_keys_out)"
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def settle(self, device: bytes, seq: int, hlc: Hlc) -> None:
        """Record ``seq`` of ``device`` (this one) holds the rows stamped with it: their
        versions and tag additions get their dots, removals are remembered, the rows go
        (inside the caller's transaction)."""
        c = self._conn
        c.execute(
            "UPDATE versions SET dot_device = ?, dot_seq = ?, hlc_wall = ?, hlc_counter = ?, "
            "dot_index = (SELECT sent_idx FROM journal_out o WHERE o.version = versions.id "
            "AND o.sent_seq = ?) WHERE id IN (SELECT version FROM journal_out "
            "WHERE op = 'put' AND sent_seq = ?)",
            (device, seq, hlc.wall_ms, hlc.counter, seq, seq),
        )
        c.execute(
            "UPDATE tag_adds SET device = ?, seq = ?, idx = (SELECT sent_idx FROM journal_out o "
            "WHERE o.tag_add = tag_adds.id AND o.sent_seq = ?) WHERE id IN (SELECT tag_add "
            "FROM journal_out WHERE op = 'tag' AND sent_seq = ?)",
            (device, seq, seq, seq),
        )
        c.execute(
            "INSERT OR IGNORE INTO journal_gone(device, seq, idx) SELECT device, seq, idx "
            "FROM journal_out WHERE device IS NOT NULL AND sent_seq = ?",
            (seq,),
        )
        c.execute("DELETE FROM journal_out WHERE sent_seq = ?", (seq,))

    # -- applying other devices' records (inside the caller's transaction) --------------------

    def mute(self, on: bool) -> None:
        """Stop (or resume) capturing ops: what is applied was another device's."""
        if on:
            self._conn.execute("INSERT OR IGNORE INTO journal_mute(one) VALUES (1)")
        else:
            self._conn.execute("DELETE FROM journal_mute")

    def known(self, dot: Dot) -> bool:
        """A version or tag addition with this dot is here, or was removed."""
        key = (dot.device, dot.seq, dot.index)
        q = self._conn.execute
        return bool(
            q(
                "SELECT 1 FROM versions WHERE dot_device = ? AND dot_seq = ? AND dot_index = ? "
                "UNION ALL SELECT 1 FROM tag_adds WHERE device = ? AND seq = ? AND idx = ? "
                "UNION ALL SELECT 1 FROM journal_gone WHERE device = ? AND seq = ? AND idx = ?",
                key * 3,
            ).fetchone()
        )

    def set_dot(self, version: int, dot: Dot, hlc: Hlc) -> None:
        self._conn.execute(
            "UPDATE versions SET dot_device = ?, dot_seq = ?, dot_index = ?, hlc_wall = ?, "
            "hlc_counter = ? WHERE id = ?",
            (dot.device, dot.seq, dot.index, hlc.wall_ms, hlc.counter, version),
        )

    def remove(self, dots: Sequence[Dot]) -> set[str]:
        """Delete the versions and tag additions named by ``dots`` and remember the dots (so
        a put or tag of one arriving later stays out); the names whose versions changed."""
        c = self._conn
        keys = [(d.device, d.seq, d.index) for d in dots]
        names: set[str] = set()
        for key in keys:
            row = c.execute(
                "SELECT v.id, o.id, o.name FROM versions v JOIN objects o ON o.id = v.object "
                "WHERE v.dot_device = ? AND v.dot_seq = ? AND v.dot_index = ?",
                key,
            ).fetchone()
            if row is not None:
                c.execute("DELETE FROM versions WHERE id = ?", (row[0],))
                if not c.execute("SELECT 1 FROM versions WHERE object = ?", (row[1],)).fetchone():
                    c.execute("DELETE FROM objects WHERE id = ?", (row[1],))
                names.add(str(row[2]))
            tagged = c.execute(
                "SELECT name FROM tag_adds WHERE device = ? AND seq = ? AND idx = ?", key
            ).fetchone()
            if tagged is not None:
                c.execute("DELETE FROM tag_adds WHERE device = ? AND seq = ? AND idx = ?", key)
                names.add(str(tagged[0]))
        c.executemany("INSERT OR IGNORE INTO journal_gone(device, seq, idx) VALUES (?, ?, ?)", keys)
        c.execute(
            "DELETE FROM contents WHERE id NOT IN "
            "(SELECT content FROM entries WHERE content IS NOT NULL)"
        )
        return names

    def unsent(self, name: str, created_at: int, size: int, cid: str | None) -> list[int]:
        """Versions of ``name`` without a dot that this device will not send (copied with
        a catalog from another device, whose own put of them may arrive): candidates to
        adopt a matching put's dot instead of inserting it again."""
        return [
            int(r[0])
            for r in self._conn.execute(
                "SELECT v.id FROM versions v JOIN objects o ON o.id = v.object "
                "WHERE o.name = ? AND v.created_at = ? AND v.size = ? AND v.cid IS ? "
                "AND v.dot_device IS NULL "
                "AND v.id NOT IN (SELECT version FROM journal_out WHERE version IS NOT NULL) "
                "ORDER BY v.number",
                (name, created_at, size, cid),
            )
        ]

    def unsent_tag(self, name: str, tag: str) -> int | None:
        """A tag addition without a dot this device will not send (see :meth:`unsent`)."""
        row = self._conn.execute(
            "SELECT id FROM tag_adds WHERE name = ? AND tag = ? AND device IS NULL "
            "AND id NOT IN (SELECT tag_add FROM journal_out WHERE tag_add IS NOT NULL)",
            (name, tag),
        ).fetchone()
        return None if row is None else int(row[0])

    def set_tag_dot(self, tag_add: int, dot: Dot) -> None:
        self._conn.execute(
            "UPDATE tag_adds SET device = ?, seq = ?, idx = ? WHERE id = ?",
            (dot.device, dot.seq, dot.index, tag_add),
        )

    def add_tag(self, dot: Dot, name: str, tag: str) -> None:
        self._conn.execute(
            "INSERT INTO tag_adds(name, tag, device, seq, idx) VALUES (?, ?, ?, ?, ?)",
            (name, tag, dot.device, dot.seq, dot.index),
        )

    def refresh(self, name: str) -> None:
        """Bring ``name``'s version numbers (positions in the merge order: HLC, device, seq,
        index; versions not yet sent last) and its tags (the live additions) up to date."""
        c = self._conn
        obj = c.execute("SELECT id FROM objects WHERE name = ?", (name,)).fetchone()
        if obj is None:
            return
        self.renumber(obj[0])
        c.execute("DELETE FROM tags WHERE object = ?", (obj[0],))
        c.execute(
            "INSERT OR IGNORE INTO tags(object, tag) SELECT ?, tag FROM tag_adds WHERE name = ?",
            (obj[0], name),
        )

    def renumber(self, obj: int) -> None:
        """Number object ``obj``'s versions by their positions in the merge order; also
        after this device removes some (a removal applied from another device renumbers
        too, so both number the versions left alike)."""
        c = self._conn
        ids = [
            int(r[0])
            for r in c.execute(
                "SELECT id FROM versions WHERE object = ? ORDER BY hlc_wall IS NULL, hlc_wall, "
                "hlc_counter, dot_device, dot_seq, dot_index, number",
                (obj,),
            )
        ]
        c.execute("UPDATE versions SET number = -number WHERE object = ?", (obj,))
        c.executemany(
            "UPDATE versions SET number = ? WHERE id = ?",
            [(n, vid) for n, vid in enumerate(ids, 1)],
        )

    def version_of(self, dot: Dot) -> int | None:
        row = self._conn.execute(
            "SELECT id FROM versions WHERE dot_device = ? AND dot_seq = ? AND dot_index = ?",
            (dot.device, dot.seq, dot.index),
        ).fetchone()
        return None if row is None else int(row[0])

    def dot_of(self, version: int) -> tuple[Dot, Hlc] | None:
        row = self._conn.execute(
            "SELECT dot_device, dot_seq, dot_index, hlc_wall, hlc_counter FROM versions "
            "WHERE id = ?",
            (version,),
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return Dot(bytes(row[0]), int(row[1]), int(row[2])), Hlc(int(row[3]), int(row[4]))
