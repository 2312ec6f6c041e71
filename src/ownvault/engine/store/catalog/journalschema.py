"""The catalog migrations of the journal's places and settings (schema 13), kept apart from
``catalog.schema`` (which applies them) so that each stays a readable size.

13: pack places and settings as journal ops: the outbox of share places, chunk moves, pack
deletions and settings this device changed (``journal_keys_out``, filled by triggers; the
snapshot's 'places' mark is no longer set by shares of live packs, chunks and packs (a
share of a pack being written that a degraded write could not place still sets it); the
'settings' mark still is, so a settings change is also checkpointed) and the clock of the
last write of each key merged last-writer-wins (``journal_lww``) (docs/design.md, "Pack
places and settings as ops").
A pack made live here (``born``) and deleted before any record went out is never
announced: its ``born`` key takes the ``drop`` with it. Every statement may run again over
its own result (``IF NOT EXISTS``), as when a test lowers ``schema_version`` by hand.
Append only once released; never edit a released migration.
"""

from __future__ import annotations

__all__ = ["MIGRATION_13"]

_UPSERT = "ON CONFLICT (kind, key) DO UPDATE SET sent_seq = NULL, wire = NULL"
_MUTED = "NOT EXISTS (SELECT 1 FROM journal_mute)"

# table -> (the setting's table on the wire, the SQL of its key from a row ``R``, when)
_SETTINGS: dict[str, tuple[str, str, str]] = {
    "providers": ("provider", "R.name", ""),
    "contacts": ("contact", "R.did", ""),
    "tag_policies": ("tag_policy", "R.tag", ""),
    "backup_profiles": ("backup_profile", "R.name", ""),
    "nft_tokens": ("nft_token", "R.source", ""),
    "meta": (
        "meta",
        "R.key",
        " AND R.key IN ('policy', 'chunker', 'cid_profile', 'content_epoch', 'did')",
    ),
    "grants": ("grant", "lower(hex(R.grant_id))", ""),
    "dags": ("publication", "R.version || '|' || R.root || '|' || R.path", ""),
}


def _setting_triggers() -> str:
    out = []
    for table, (wire, key, when) in _SETTINGS.items():
        for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
            body = "".join(
                f"  INSERT INTO journal_keys_out(kind, key) "
                f"VALUES ('set', '{wire}:' || {key.replace('R.', r + '.')}) {_UPSERT};\n"
                for r in rows
            )
            cond = when.replace("R.", rows[-1] + ".")
            out.append(
                f"CREATE TRIGGER IF NOT EXISTS keys_{table}_{event.lower()} AFTER {event} ON {table}\n"
                f"WHEN {_MUTED}{cond}\nBEGIN\n{body}END;\n"
            )
    for event, r in (("INSERT", "NEW"), ("DELETE", "OLD")):
        out.append(
            f"CREATE TRIGGER IF NOT EXISTS keys_grant_versions_{event.lower()} AFTER {event} ON grant_versions\n"
            f"WHEN {_MUTED}\nBEGIN\n"
            f"  INSERT INTO journal_keys_out(kind, key) SELECT 'set', 'grant:' || "
            f"lower(hex(grant_id)) FROM grants WHERE id = {r}.grant_row {_UPSERT};\nEND;\n"
        )
    return "".join(out)


MIGRATION_13 = """
CREATE TABLE IF NOT EXISTS journal_keys_out (
  kind TEXT NOT NULL CHECK (kind IN ('share', 'chunk', 'drop', 'set', 'born')),
  key TEXT NOT NULL,
  sent_seq INTEGER,
  wire TEXT,
  PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS journal_lww (
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  wall INTEGER NOT NULL,
  counter INTEGER NOT NULL,
  device BLOB NOT NULL,
  PRIMARY KEY (kind, key)
);
DROP TRIGGER IF EXISTS settings_shares_update;
DROP TRIGGER IF EXISTS settings_shares_delete;
DROP TRIGGER IF EXISTS settings_chunks_update;
DROP TRIGGER IF EXISTS settings_chunks_delete;
DROP TRIGGER IF EXISTS settings_packs_delete;
CREATE TRIGGER IF NOT EXISTS places_share_insert AFTER INSERT ON shares
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
AND (SELECT state FROM packs WHERE id = NEW.pack) = 'live'
BEGIN
  INSERT INTO journal_keys_out(kind, key)
  SELECT 'share', lower(hex(pack_id)) || ':' || NEW.idx FROM packs WHERE id = NEW.pack
  ON CONFLICT (kind, key) DO UPDATE SET sent_seq = NULL;
END;
CREATE TRIGGER IF NOT EXISTS places_share_update AFTER UPDATE ON shares
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
AND (SELECT state FROM packs WHERE id = NEW.pack) = 'live'
BEGIN
  INSERT INTO journal_keys_out(kind, key)
  SELECT 'share', lower(hex(pack_id)) || ':' || NEW.idx FROM packs WHERE id = NEW.pack
  ON CONFLICT (kind, key) DO UPDATE SET sent_seq = NULL;
END;
CREATE TRIGGER IF NOT EXISTS places_share_delete AFTER DELETE ON shares
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
AND (SELECT state FROM packs WHERE id = OLD.pack) = 'live'
BEGIN
  INSERT INTO journal_keys_out(kind, key)
  SELECT 'share', lower(hex(pack_id)) || ':' || OLD.idx FROM packs WHERE id = OLD.pack
  ON CONFLICT (kind, key) DO UPDATE SET sent_seq = NULL;
END;
CREATE TRIGGER IF NOT EXISTS places_pending_share_delete AFTER DELETE ON shares
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
AND (SELECT state FROM packs WHERE id = OLD.pack) IS NOT 'live'
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('places'); END;
CREATE TRIGGER IF NOT EXISTS places_chunk_move AFTER UPDATE OF pack ON chunks
WHEN NOT EXISTS (SELECT 1 FROM journal_mute) AND NEW.pack != OLD.pack
BEGIN
  INSERT INTO journal_keys_out(kind, key) VALUES ('chunk', lower(hex(NEW.chunk_id)))
  ON CONFLICT (kind, key) DO UPDATE SET sent_seq = NULL;
END;
CREATE TRIGGER IF NOT EXISTS places_pack_born AFTER UPDATE OF state ON packs
WHEN NOT EXISTS (SELECT 1 FROM journal_mute) AND NEW.state = 'live' AND OLD.state != 'live'
BEGIN
  INSERT OR IGNORE INTO journal_keys_out(kind, key) VALUES ('born', lower(hex(NEW.pack_id)));
END;
CREATE TRIGGER IF NOT EXISTS places_pack_drop AFTER DELETE ON packs
WHEN NOT EXISTS (SELECT 1 FROM journal_mute) AND OLD.state = 'live'
BEGIN
  INSERT INTO journal_keys_out(kind, key) SELECT 'drop', lower(hex(OLD.pack_id))
  WHERE NOT EXISTS (SELECT 1 FROM journal_keys_out WHERE kind = 'born'
    AND key = lower(hex(OLD.pack_id)) AND sent_seq IS NULL)
  ON CONFLICT (kind, key) DO UPDATE SET sent_seq = NULL;
  DELETE FROM journal_keys_out WHERE kind = 'born' AND key = lower(hex(OLD.pack_id))
  AND sent_seq IS NULL;
END;
""" + _setting_triggers()
