"""Settings in the catalog journal (``catalog.jsettings``, schema 13): each setting as a row
of JSON by (table, key), read for a ``set`` op and written when one is applied.

| table on the wire | catalog table | key | value (a JSON object) |
|---|---|---|---|
| ``provider`` | ``providers`` | name | kind, url, jurisdiction, labels, config, added_at, state, domain |
| ``meta`` | ``meta`` | policy, chunker, cid_profile, content_epoch, did | value |
| ``contact`` | ``contacts`` | did | name, card, added_at |
| ``tag_policy`` | ``tag_policies`` | tag | never_share |
| ``backup_profile`` | ``backup_profiles`` | name | source, dest, every, excludes, exclude_file, retention, conditions, created_at |
| ``nft_token`` | ``nft_tokens`` | source | name, collection, state, root, report, pins, health, error, updated_at, verified_at |
| ``grant`` | ``grants``, ``grant_versions`` | grant id hex | recipient, label, scope, created_at, expires_at, access, wrapped_key (hex), generation, token, state, revoked_at, versions (dots) |
| ``publication`` | ``dags`` | ``<version dot>|<root CID>|<path>`` | profile, source, created_at, published_at |

Local ids (a provider's row id, a version's id) never travel: versions are named by their
dots. The outbox key of a publication names the version by its local id (the trigger
cannot know a dot not yet given); :meth:`JournalSettings.read` turns it into the wire key.
"""

from __future__ import annotations

import json
import sqlite3

from ownvault.core.journalclock import Dot
from ownvault.engine.store.catalog.tables import Tables
from ownvault.errors import FormatError, VaultStateError

__all__ = ["SIMPLE", "JournalSettings"]

# wire table -> (catalog table, key column, value columns)
SIMPLE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "provider": (
        "providers",
        "name",
        ("kind", "url", "jurisdiction", "labels", "config", "added_at", "state", "domain"),
    ),
    "meta": ("meta", "key", ("value",)),
    "contact": ("contacts", "did", ("name", "card", "added_at")),
    "tag_policy": ("tag_policies", "tag", ("never_share",)),
    "backup_profile": (
        "backup_profiles",
        "name",
        (
            "source",
            "dest",
            "every",
            "excludes",
            "exclude_file",
            "retention",
            "conditions",
            "created_at",
        ),
    ),
    "nft_token": (
        "nft_tokens",
        "source",
        (
            "name",
            "collection",
            "state",
            "root",
            "report",
            "pins",
            "health",
            "error",
            "updated_at",
            "verified_at",
        ),
    ),
}
META_KEYS = frozenset({"policy", "chunker", "cid_profile", "content_epoch", "did"})
_GRANT = (
    "recipient",
    "label",
    "scope",
    "created_at",
    "expires_at",
    "access",
    "wrapped_key",
    "generation",
    "token",
    "state",
    "revoked_at",
)
_DAG = ("profile", "source", "created_at", "published_at")

Scalar = str | int | float | None


def _dot_text(dot: Dot) -> str:
    return f"{dot.device.hex()}:{dot.seq}:{dot.index}"


def _parse_dot(text: str) -> Dot:
    try:
        device, seq, index = text.split(":")
        return Dot(bytes.fromhex(device), int(seq), int(index))
    except ValueError:
        raise FormatError(f"not a dot: {text[:80]!r}") from None


def _scalars(value: object, fields: tuple[str, ...], what: str) -> dict[str, Scalar]:
    if not isinstance(value, dict) or set(value) != set(fields):
        raise FormatError(f"{what}: not an object of exactly {', '.join(fields)}")
    for k, v in value.items():
        if v is not None and type(v) not in (str, int, float):
            raise FormatError(f"{what}: {k} is not a string, a number or null")
    return value


class JournalSettings(Tables):
    """Settings rows as JSON values by (table, key)."""

    # -- reading (to send) -------------------------------------------------------------

    def version_dot(self, version: int, device: bytes) -> Dot | None:
        """The dot of a version: its own, or the one it is stamped to go out with in a
        record of ``device`` (this one)."""
        q = self._conn.execute
        row = q(
            "SELECT dot_device, dot_seq, dot_index FROM versions WHERE id = ?", (version,)
        ).fetchone()
        if row is not None and row[0] is not None:
            return Dot(bytes(row[0]), int(row[1]), int(row[2]))
        stamp = q(
            "SELECT sent_seq, sent_idx FROM journal_out WHERE op = 'put' AND version = ? "
            "AND sent_seq IS NOT NULL",
            (version,),
        ).fetchone()
        return None if stamp is None else Dot(device, int(stamp[0]), int(stamp[1]))

    def read(self, table: str, key: str, device: bytes) -> tuple[str, str | None] | None:
        """The wire key and the value now (None: removed) of an outbox key; None when
        there is nothing to say (a publication of a version that is gone, or not sent)."""
        if table in SIMPLE:
            name, col, fields = SIMPLE[table]
            row = self._conn.execute(
                f"SELECT {', '.join(fields)} FROM {name} WHERE {col} = ?", (key,)
            ).fetchone()
            return key, None if row is None else _text(dict(zip(fields, row, strict=True)))
        if table == "grant":
            return key, self._grant(bytes.fromhex(key), device)
        version, root, path = key.split("|", 2)
        dot = self.version_dot(int(version), device)
        if dot is None:
            return None
        row = self._conn.execute(
            f"SELECT {', '.join(_DAG)} FROM dags WHERE version = ? AND root = ? AND path = ?",
            (int(version), root, path),
        ).fetchone()
        wire = f"{_dot_text(dot)}|{root}|{path}"
        return wire, None if row is None else _text(dict(zip(_DAG, row, strict=True)))

    def _grant(self, grant_id: bytes, device: bytes) -> str | None:
        row = self._conn.execute(
            f"SELECT id, {', '.join(_GRANT)} FROM grants WHERE grant_id = ?", (grant_id,)
        ).fetchone()
        if row is None:
            return None
        value: dict[str, object] = dict(zip(_GRANT, row[1:], strict=True))
        value["wrapped_key"] = bytes(row[7]).hex()
        dots = []
        for (version,) in self._conn.execute(
            "SELECT version FROM grant_versions WHERE grant_row = ? ORDER BY version", (row[0],)
        ):
            dot = self.version_dot(int(version), device)
            if dot is not None:
                dots.append(_dot_text(dot))
        value["versions"] = sorted(dots)
        return _text(value)

    # -- writing (another device's op; inside the caller's transaction, muted) ----------

    def write(self, table: str, key: str, value: str | None) -> None:
        """Make (table, key) hold ``value`` (None: remove it). ``FormatError`` for a value
        that is not a row of that table, ``VaultStateError`` when the catalog refuses it
        (a name another row holds, a provider still holding shares)."""
        try:
            self._write(table, key, None if value is None else json.loads(value))
        except (ValueError, RecursionError):
            raise FormatError(f"setting {table} {key[:80]}: value is not JSON") from None
        except sqlite3.IntegrityError as exc:
            raise VaultStateError(f"setting {table} {key[:80]} refused here: {exc}") from None

    def _write(self, table: str, key: str, value: object) -> None:
        c = self._conn
        if table in SIMPLE:
            name, col, fields = SIMPLE[table]
            if table == "meta" and key not in META_KEYS:
                raise FormatError(f"setting meta {key[:80]} is not a setting")
            if value is None:
                c.execute(f"DELETE FROM {name} WHERE {col} = ?", (key,))
                return
            row = _scalars(value, fields, f"setting {table} {key[:80]}")
            sets = ", ".join(f"{f} = excluded.{f}" for f in fields)
            c.execute(
                f"INSERT INTO {name}({col}, {', '.join(fields)}) "
                f"VALUES ({', '.join('?' * (len(fields) + 1))}) "
                f"ON CONFLICT({col}) DO UPDATE SET {sets}",
                (key, *(row[f] for f in fields)),
            )
            return
        if table == "grant":
            self._write_grant(key, value)
            return
        dot_text, root, path = key.split("|", 2)
        version = self._version(_parse_dot(dot_text))
        if version is None:
            return  # the version is gone here (or never came): so is its publication
        if value is None:
            c.execute(
                "DELETE FROM dags WHERE version = ? AND root = ? AND path = ?",
                (version, root, path),
            )
            return
        row = _scalars(value, _DAG, f"publication {key[:80]}")
        c.execute(
            "INSERT INTO dags(version, path, root, profile, source, created_at, published_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(version, path, root) DO UPDATE SET "
            "profile = excluded.profile, source = excluded.source, "
            "created_at = excluded.created_at, published_at = excluded.published_at",
            (
                version,
                path,
                root,
                row["profile"],
                row["source"],
                row["created_at"],
                row["published_at"],
            ),
        )
        if row["published_at"] is None and row["source"] == "profile":  # rebuilt if re-published
            c.execute(
                "DELETE FROM dag_blocks WHERE dag IN "
                "(SELECT id FROM dags WHERE version = ? AND root = ? AND path = ?)",
                (version, root, path),
            )

    def _version(self, dot: Dot) -> int | None:
        row = self._conn.execute(
            "SELECT id FROM versions WHERE dot_device = ? AND dot_seq = ? AND dot_index = ?",
            (dot.device, dot.seq, dot.index),
        ).fetchone()
        return None if row is None else int(row[0])

    def revoke_grant(self, key: str, value: str | None) -> None:
        """A revocation wins over any other write of a grant (observed-remove, as the
        ``grant_revoke`` op): once revoked here or in ``value``, the grant stays revoked."""
        if value is None:
            return
        try:
            doc = json.loads(value)
        except (ValueError, RecursionError):
            raise FormatError(f"grant {key[:80]}: value is not JSON") from None
        if isinstance(doc, dict) and doc.get("state") == "revoked":
            at = doc.get("revoked_at")
            self._conn.execute(
                "UPDATE grants SET state = 'revoked', revoked_at = ? "
                "WHERE grant_id = ? AND state != 'revoked'",
                (at if type(at) is int else 0, bytes.fromhex(key)),
            )

    def _write_grant(self, key: str, value: object) -> None:
        c = self._conn
        grant_id = bytes.fromhex(key)
        was = c.execute(
            "SELECT state, revoked_at FROM grants WHERE grant_id = ?", (grant_id,)
        ).fetchone()
        if value is None:
            c.execute("DELETE FROM grants WHERE grant_id = ?", (grant_id,))
            return
        if not isinstance(value, dict) or not isinstance(value.get("versions"), list):
            raise FormatError(f"grant {key}: not an object with versions")
        versions = [_parse_dot(str(d)) for d in value.pop("versions")]
        row = _scalars(value, _GRANT, f"grant {key}")
        cols = ", ".join(_GRANT)
        args = [bytes.fromhex(str(row[f])) if f == "wrapped_key" else row[f] for f in _GRANT]
        c.execute(
            f"INSERT INTO grants(grant_id, {cols}) VALUES ({', '.join('?' * (len(_GRANT) + 1))}) "
            f"ON CONFLICT(grant_id) DO UPDATE SET "
            + ", ".join(f"{f} = excluded.{f}" for f in _GRANT),
            (grant_id, *args),
        )
        if was is not None and was[0] == "revoked":  # a revocation wins: never undone
            c.execute(
                "UPDATE grants SET state = 'revoked', revoked_at = ? WHERE grant_id = ?",
                (was[1], grant_id),
            )
        rid = c.execute("SELECT id FROM grants WHERE grant_id = ?", (grant_id,)).fetchone()[0]
        c.execute("DELETE FROM grant_versions WHERE grant_row = ?", (rid,))
        ids = [v for v in (self._version(d) for d in versions) if v is not None]
        c.executemany(
            "INSERT OR IGNORE INTO grant_versions(grant_row, version) VALUES (?, ?)",
            [(rid, v) for v in ids],
        )


def _text(value: dict[str, object]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
