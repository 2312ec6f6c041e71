"""The sharing tables: contacts, tag policies, grants and the versions each grant covers.

``catalog.contacts`` (:class:`ContactTables`) is whom this vault knows and what it never
shares; ``catalog.grants`` (:class:`GrantTables`) is what it has shared, with whom, and the
manifest objects a grant leaves behind on the providers (docs/design.md, "Sharing").
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ContactRow",
    "ContactTables",
    "GrantKeyRow",
    "GrantRecord",
    "GrantTableState",
    "GrantTables",
    "TagPolicyRow",
]

GrantTableState = Literal["active", "revoked"]
"""A grant's stored state (CHECK on grants.state); "expired" is computed, never stored."""


@dataclass(frozen=True, slots=True)
class ContactRow:
    did: str
    name: str | None
    added_at: int


@dataclass(frozen=True, slots=True)
class TagPolicyRow:
    tag: str
    never_share: bool


@dataclass(frozen=True, slots=True)
class GrantKeyRow:
    """What revoking or refreshing a grant needs: its row, id, wrapped key, state, generation."""

    row: int
    grant_id: bytes
    wrapped_key: bytes
    state: GrantTableState
    generation: int


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """One grant as listed: the scope is the JSON document stored with it."""

    grant_id: bytes
    recipient: str
    label: str | None
    scope: dict[str, object]
    created_at: int
    expires_at: int | None
    state: GrantTableState
    revoked_at: int | None
    generation: int


class ContactTables:
    """The ``contacts`` and ``tag_policies`` tables."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def name_taken(self, name: str, did: str) -> bool:
        """Whether a contact other than ``did`` is called ``name``."""
        row = self._conn.execute(
            "SELECT did FROM contacts WHERE name = ? AND did != ?", (name, did)
        ).fetchone()
        return row is not None

    def add(self, did: str, name: str | None, card: str, added_at: int) -> None:
        """Insert a contact, or replace the name and card of a known one."""
        self._conn.execute(
            "INSERT INTO contacts(did, name, card, added_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(did) DO UPDATE SET name = excluded.name, card = excluded.card",
            (did, name, card, added_at),
        )

    def all(self) -> list[ContactRow]:
        return [
            ContactRow(r[0], r[1], int(r[2]))
            for r in self._conn.execute(
                "SELECT did, name, added_at FROM contacts ORDER BY name, did"
            )
        ]

    def card(self, who: str) -> str | None:
        """The stored card text of the contact whose did:key or name is ``who``."""
        row = self._conn.execute(
            "SELECT card FROM contacts WHERE did = ? OR name = ?", (who, who)
        ).fetchone()
        return None if row is None else str(row[0])

    def name_of(self, did: str) -> str | None:
        row = self._conn.execute("SELECT name FROM contacts WHERE did = ?", (did,)).fetchone()
        return None if row is None else row[0]

    def remove(self, did: str) -> None:
        self._conn.execute("DELETE FROM contacts WHERE did = ?", (did,))

    def set_policy(self, tag: str, *, never_share: bool) -> None:
        self._conn.execute(
            "INSERT INTO tag_policies(tag, never_share) VALUES (?, ?) "
            "ON CONFLICT(tag) DO UPDATE SET never_share = excluded.never_share",
            (tag, int(never_share)),
        )

    def policies(self) -> list[TagPolicyRow]:
        return [
            TagPolicyRow(r[0], bool(r[1]))
            for r in self._conn.execute("SELECT tag, never_share FROM tag_policies ORDER BY tag")
        ]

    def never_share(self) -> set[str]:
        return {
            r[0] for r in self._conn.execute("SELECT tag FROM tag_policies WHERE never_share = 1")
        }


class GrantTables:
    """The ``grants`` and ``grant_versions`` tables (and the manifests' deletion queue)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def names_tagged(self, tag: str) -> list[str]:
        """The stored names carrying ``tag`` (a grant's scope by tag)."""
        return [
            r[0]
            for r in self._conn.execute(
                "SELECT o.name FROM objects o JOIN tags t ON t.object = o.id WHERE t.tag = ? ORDER BY o.name",
                (tag,),
            )
        ]

    def add(
        self,
        grant_id: bytes,
        recipient: str,
        label: str | None,
        scope: dict[str, object],
        created_at: int,
        expires_at: int | None,
        wrapped_key: bytes,
        token: str,
        versions: Iterable[int],
    ) -> int:
        """Insert a read grant (generation 0) and the versions it covers; its row id."""
        cur = self._conn.execute(
            "INSERT INTO grants(grant_id, recipient, label, scope, created_at, expires_at, access, "
            "wrapped_key, generation, token) VALUES (?, ?, ?, ?, ?, ?, 'read', ?, 0, ?)",
            (
                grant_id,
                recipient,
                label,
                json.dumps(scope, sort_keys=True),
                created_at,
                expires_at,
                wrapped_key,
                token,
            ),
        )
        row = int(cur.lastrowid or 0)
        self._conn.executemany(
            "INSERT INTO grant_versions(grant_row, version) VALUES (?, ?)",
            [(row, v) for v in versions],
        )
        return row

    def delete(self, row: int) -> None:
        self._conn.execute("DELETE FROM grants WHERE id = ?", (row,))

    def versions(self, row: int) -> list[int]:
        return [
            int(r[0])
            for r in self._conn.execute(
                "SELECT version FROM grant_versions WHERE grant_row = ? ORDER BY version", (row,)
            )
        ]

    def generation_of(self, grant_id: bytes) -> int | None:
        row = self._conn.execute(
            "SELECT generation FROM grants WHERE grant_id = ?", (grant_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def doom(self, rows: Iterable[tuple[int, str, str, int]]) -> None:
        """Queue provider objects (provider, name, reason, added_at) for deletion."""
        self._conn.executemany(
            "INSERT OR IGNORE INTO doomed_objects(provider, name, reason, added_at) VALUES (?, ?, ?, ?)",
            list(rows),
        )

    def all(self) -> list[GrantRecord]:
        return [
            GrantRecord(bytes(r[0]), r[1], r[2], json.loads(r[3]), *r[4:])
            for r in self._conn.execute(
                "SELECT grant_id, recipient, label, scope, created_at, expires_at, state, revoked_at, generation "
                "FROM grants ORDER BY created_at, id"
            )
        ]

    def by_prefix(self, hex_prefix: str) -> list[GrantKeyRow]:
        """The grants whose id starts with the (upper-case) hex digits ``hex_prefix``."""
        return self._keys("WHERE hex(grant_id) LIKE ?", (hex_prefix + "%",))

    def active(self) -> list[GrantKeyRow]:
        return self._keys("WHERE state = 'active'", ())

    def _keys(self, where: str, args: tuple[str, ...]) -> list[GrantKeyRow]:
        return [
            GrantKeyRow(int(r[0]), bytes(r[1]), bytes(r[2]), r[3], int(r[4]))
            for r in self._conn.execute(
                f"SELECT id, grant_id, wrapped_key, state, generation FROM grants {where}", args
            ).fetchall()
        ]

    def set_generation(self, row: int, generation: int) -> None:
        self._conn.execute("UPDATE grants SET generation = ? WHERE id = ?", (generation, row))

    def token(self, row: int) -> str:
        return str(
            self._conn.execute("SELECT token FROM grants WHERE id = ?", (row,)).fetchone()[0]
        )

    def revoked_at(self, row: int) -> int:
        return int(
            self._conn.execute("SELECT revoked_at FROM grants WHERE id = ?", (row,)).fetchone()[0]
        )

    def mark_revoked(self, row: int, now: int) -> None:
        """Revoked at ``now``; the grant no longer covers any version."""
        self._conn.execute(
            "UPDATE grants SET state = 'revoked', revoked_at = ? WHERE id = ?", (now, row)
        )
        self._conn.execute("DELETE FROM grant_versions WHERE grant_row = ?", (row,))

    def granted_chunks(self, row: int) -> set[int]:
        """The chunk rows of every version the grant covers."""
        return {
            int(r[0])
            for r in self._conn.execute(
                "SELECT DISTINCT cc.chunk FROM grant_versions gv JOIN entries e ON e.version = gv.version "
                "JOIN content_chunks cc ON cc.content = e.content WHERE gv.grant_row = ?",
                (row,),
            )
        }

    def packs_of_chunks(self, chunks: set[int]) -> set[int]:
        if not chunks:
            return set()
        return {
            int(r[0])
            for r in self._conn.execute(
                f"SELECT DISTINCT pack FROM chunks WHERE id IN ({','.join('?' * len(chunks))})",
                sorted(chunks),
            )
        }

    def overlapping(self, row: int, chunks: set[int]) -> set[int]:
        """The other active grants that cover any of ``chunks``."""
        if not chunks:
            return set()
        return {
            int(r[0])
            for r in self._conn.execute(
                "SELECT DISTINCT gv.grant_row FROM grant_versions gv JOIN grants g ON g.id = gv.grant_row "
                "JOIN entries e ON e.version = gv.version JOIN content_chunks cc ON cc.content = e.content "
                f"WHERE g.state = 'active' AND gv.grant_row != ? AND cc.chunk IN ({','.join('?' * len(chunks))})",
                (row, *sorted(chunks)),
            )
        }
