"""The catalog's SQL schema: version 1, and the migrations to each later version
(applied in order on open; docs/design.md "Catalog" and "Changes")."""

from __future__ import annotations

import sqlite3

from ownvault.engine.store.catalog.gc import MIGRATION as GC_MIGRATION
from ownvault.engine.store.catalog.journalschema import MIGRATION_13
from ownvault.engine.store.catalog.keys import REWRAP_MIGRATION
from ownvault.engine.store.catalog.sweep import MIGRATION as SWEEP_MIGRATION

__all__ = ["MIGRATIONS", "SCHEMA", "statements"]


def statements(script: str) -> list[str]:
    """The SQL statements of ``script``, split where SQLite says one is complete (a trigger's
    body holds semicolons of its own)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE providers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  url TEXT NOT NULL,
  jurisdiction TEXT,
  labels TEXT NOT NULL DEFAULT '{}',
  config TEXT NOT NULL DEFAULT '{}',
  added_at INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'removed'))
);
CREATE TABLE packs (
  id INTEGER PRIMARY KEY,
  pack_id BLOB NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  k INTEGER NOT NULL,
  n INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'live')),
  created_at INTEGER NOT NULL
);
CREATE TABLE shares (
  pack INTEGER NOT NULL REFERENCES packs(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  provider INTEGER NOT NULL REFERENCES providers(id),
  size INTEGER NOT NULL,
  root BLOB NOT NULL,
  PRIMARY KEY (pack, idx)
);
CREATE INDEX shares_provider ON shares(provider);
CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  chunk_id BLOB NOT NULL UNIQUE,
  pack INTEGER NOT NULL REFERENCES packs(id),
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  plain_len INTEGER NOT NULL,
  wrapped_key BLOB NOT NULL
);
CREATE INDEX chunks_pack ON chunks(pack);
CREATE TABLE contents (
  id INTEGER PRIMARY KEY,
  size INTEGER NOT NULL,
  cid TEXT,
  cid_profile TEXT,
  tsize INTEGER
);
CREATE TABLE content_chunks (
  content INTEGER NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  chunk INTEGER NOT NULL REFERENCES chunks(id),
  offset INTEGER NOT NULL,
  PRIMARY KEY (content, seq)
);
CREATE INDEX content_chunks_chunk ON content_chunks(chunk);
CREATE TABLE objects (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE versions (
  id INTEGER PRIMARY KEY,
  object INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
  number INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('file', 'tree')),
  created_at INTEGER NOT NULL,
  size INTEGER NOT NULL,
  file_count INTEGER NOT NULL,
  cid TEXT,
  cid_profile TEXT,
  UNIQUE (object, number)
);
CREATE TABLE entries (
  version INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
  mode INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  size INTEGER NOT NULL,
  content INTEGER REFERENCES contents(id),
  target TEXT,
  PRIMARY KEY (version, path)
);
CREATE INDEX entries_content ON entries(content);
CREATE TABLE tags (
  object INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (object, tag)
);
"""

# Schema migrations: MIGRATIONS[v] upgrades a version-(v-1) catalog to version v. A new
# catalog is made with SCHEMA and then every migration, so both paths give one schema.
# Append only; never edit a released entry (a golden catalog of each version is tested).
MIGRATIONS: dict[int, str] = {
    # 2: IPFS DAGs of versions (publications, imported CARs) and their block index
    # (docs/design.md, "Publishing and the trustless gateway").
    2: """
CREATE TABLE dags (
  id INTEGER PRIMARY KEY,
  version INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
  path TEXT NOT NULL DEFAULT '',
  root TEXT NOT NULL,
  profile TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('profile', 'car')),
  created_at INTEGER NOT NULL,
  published_at INTEGER,
  UNIQUE (version, path, root)
);
CREATE INDEX dags_root ON dags(root);
CREATE TABLE dag_blocks (
  dag INTEGER NOT NULL REFERENCES dags(id) ON DELETE CASCADE,
  cid BLOB NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('leaf', 'file', 'dir', 'shard', 'symlink')),
  content INTEGER REFERENCES contents(id) ON DELETE CASCADE,
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  data BLOB NOT NULL,
  tail BLOB NOT NULL,
  PRIMARY KEY (dag, cid)
);
CREATE INDEX dag_blocks_cid ON dag_blocks(cid);
""",
    # 3: keys: content-key epochs per chunk, contacts, tag policies, sharing
    # grants, and a queue of provider objects that must still be deleted (shredding).
    3: """
ALTER TABLE chunks ADD COLUMN key_epoch INTEGER NOT NULL DEFAULT 0;
CREATE TABLE contacts (
  did TEXT PRIMARY KEY,
  name TEXT UNIQUE,
  card TEXT NOT NULL,
  added_at INTEGER NOT NULL
);
CREATE TABLE tag_policies (
  tag TEXT PRIMARY KEY,
  never_share INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE grants (
  id INTEGER PRIMARY KEY,
  grant_id BLOB NOT NULL UNIQUE,
  recipient TEXT NOT NULL,
  label TEXT,
  scope TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  access TEXT NOT NULL,
  wrapped_key BLOB NOT NULL,
  generation INTEGER NOT NULL DEFAULT 0,
  token TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'revoked')),
  revoked_at INTEGER
);
CREATE TABLE grant_versions (
  grant_row INTEGER NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
  version INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
  PRIMARY KEY (grant_row, version)
);
CREATE INDEX grant_versions_version ON grant_versions(version);
CREATE TABLE doomed_objects (
  provider INTEGER NOT NULL,
  name TEXT NOT NULL,
  reason TEXT NOT NULL,
  added_at INTEGER NOT NULL,
  PRIMARY KEY (provider, name)
)
""",
    # 4: audits and repair: one row per audit / deep check / repair run, per
    # provider results of each audit, and the shares known to be bad until repaired
    # (docs/design.md, "Audits and repair").
    4: """
CREATE TABLE health_runs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('audit', 'deep', 'repair')),
  started_at REAL NOT NULL,
  finished_at REAL NOT NULL,
  summary TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX health_runs_kind ON health_runs(kind, id);
CREATE TABLE audit_results (
  run INTEGER NOT NULL REFERENCES health_runs(id) ON DELETE CASCADE,
  provider INTEGER NOT NULL REFERENCES providers(id),
  method TEXT NOT NULL,
  shares INTEGER NOT NULL,
  blocks INTEGER NOT NULL,
  challenges INTEGER NOT NULL,
  passed INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  unreachable INTEGER NOT NULL,
  missing_shares INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  seconds REAL NOT NULL,
  holds_at_least REAL,
  error TEXT,
  PRIMARY KEY (run, provider)
);
CREATE INDEX audit_results_provider ON audit_results(provider, run);
CREATE TABLE share_faults (
  pack INTEGER NOT NULL REFERENCES packs(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  provider INTEGER NOT NULL REFERENCES providers(id),
  kind TEXT NOT NULL CHECK (kind IN ('missing', 'corrupt', 'unreachable')),
  detail TEXT NOT NULL,
  found_at REAL NOT NULL,
  run INTEGER,
  PRIMARY KEY (pack, idx)
);
""",
    # 5: preserved NFTs and per-token progress of preserve runs (docs/design.md, "NFT
    # preservation").
    5: """
CREATE TABLE nft_tokens (
  source TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  collection TEXT,
  state TEXT NOT NULL CHECK (state IN ('pending', 'preserved', 'failed')),
  root TEXT,
  report TEXT,
  pins TEXT NOT NULL DEFAULT '[]',
  health TEXT,
  error TEXT,
  updated_at INTEGER NOT NULL,
  verified_at INTEGER
);
CREATE INDEX nft_tokens_collection ON nft_tokens(collection);
""",
    # 6: failure domains: the machine or disk a provider lives on; NULL = the
    # default derived from its kind and URL (docs/design.md, "Failure domains").
    6: """
ALTER TABLE providers ADD COLUMN domain TEXT
""",
    # 7: backup profiles: a folder stored as a name on a schedule, pruned by
    # restic's retention rules, and the history of its runs (docs/design.md, "Backup
    # profiles"). In the catalog so that both survive a recovery from the phrase.
    7: """
CREATE TABLE backup_profiles (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  dest TEXT NOT NULL,
  every REAL NOT NULL CHECK (every > 0),
  excludes TEXT NOT NULL DEFAULT '[]',
  exclude_file TEXT,
  retention TEXT NOT NULL DEFAULT '{}',
  conditions TEXT NOT NULL DEFAULT '{}',
  created_at REAL NOT NULL
);
CREATE TABLE backup_runs (
  id INTEGER PRIMARY KEY,
  profile INTEGER NOT NULL REFERENCES backup_profiles(id) ON DELETE CASCADE,
  started_at REAL NOT NULL,
  finished_at REAL,
  result TEXT NOT NULL CHECK (result IN ('running', 'ok', 'failed')),
  version INTEGER,
  files INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  new_bytes INTEGER NOT NULL DEFAULT 0,
  added INTEGER NOT NULL DEFAULT 0,
  changed INTEGER NOT NULL DEFAULT 0,
  removed INTEGER NOT NULL DEFAULT 0,
  forgotten INTEGER NOT NULL DEFAULT 0,
  error TEXT
);
CREATE INDEX backup_runs_profile ON backup_runs(profile, id)
""",
    # 8: degraded writes: shares of a pack or of a catalog snapshot piece that
    # a write could not place (it succeeded with at least `happy`), until repair completes
    # them (docs/design.md, "Degraded writes").
    8: """
CREATE TABLE underrep (
  piece BLOB NOT NULL,
  idx INTEGER NOT NULL,
  pack INTEGER REFERENCES packs(id) ON DELETE CASCADE,
  seq INTEGER,
  size INTEGER NOT NULL,
  root BLOB NOT NULL,
  tried INTEGER,
  reason TEXT NOT NULL,
  since REAL NOT NULL,
  PRIMARY KEY (piece, idx),
  CHECK ((pack IS NULL) != (seq IS NULL))
);
CREATE INDEX underrep_pack ON underrep(pack)
""",
    # 9: the files cache: the content each source file had when a put last read it, by
    # path and (device, inode, size, mtime, ctime), so that an unchanged file is not read
    # again (docs/design.md, "Files cache"). Rows go with their content.
    9: """
CREATE TABLE filescache (
  path BLOB PRIMARY KEY,
  device INTEGER NOT NULL,
  inode INTEGER NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  content INTEGER NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
  params TEXT NOT NULL,
  age INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX filescache_content ON filescache(content)
""",
    # 10: the catalog journal: every device's certified key and the head of its chain held
    # here, revocations, each provider's listing marks (rollback detection), the device's
    # hybrid clock and an own append in progress (docs/design.md, "The journal on the
    # providers").
    10: """
CREATE TABLE journal_devices (
  device BLOB PRIMARY KEY CHECK (length(device) = 16),
  key BLOB NOT NULL,
  name TEXT NOT NULL,
  cert BLOB NOT NULL,
  seq INTEGER NOT NULL CHECK (seq >= 0),
  hash BLOB NOT NULL,
  wall_ms INTEGER NOT NULL,
  counter INTEGER NOT NULL
);
CREATE TABLE journal_revoked (
  device BLOB PRIMARY KEY CHECK (length(device) = 16),
  last_seq INTEGER NOT NULL CHECK (last_seq >= 0),
  sig BLOB NOT NULL
);
CREATE TABLE journal_marks (
  provider INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
  device BLOB NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (provider, device)
);
CREATE TABLE journal_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)
""",
    # 11: the namespace in the catalog journal: each version's dot (device, seq, index of
    # the put) and the clock of its record, tag additions by dot (an observed-remove set),
    # dots removed (a put arriving after its removal stays out), and the outbox: the ops
    # this device made and has not yet sent, captured by triggers in the transaction of
    # the change; a row in journal_settings when a table the journal does not carry changed
    # (the next catalog snapshot is due); a catalog of the snapshot era queues a put of every version and a tag of
    # every tag it has, its genesis records (docs/design.md, "Namespace ops and their
    # capture", "Migration from snapshots").
    11: """
ALTER TABLE versions ADD COLUMN dot_device BLOB;
ALTER TABLE versions ADD COLUMN dot_seq INTEGER;
ALTER TABLE versions ADD COLUMN dot_index INTEGER;
ALTER TABLE versions ADD COLUMN hlc_wall INTEGER;
ALTER TABLE versions ADD COLUMN hlc_counter INTEGER;
CREATE UNIQUE INDEX versions_dot ON versions(dot_device, dot_seq, dot_index);
CREATE TABLE tag_adds (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  tag TEXT NOT NULL,
  device BLOB,
  seq INTEGER,
  idx INTEGER,
  UNIQUE (device, seq, idx)
);
CREATE INDEX tag_adds_name ON tag_adds(name, tag);
CREATE TABLE journal_gone (
  device BLOB NOT NULL,
  seq INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  PRIMARY KEY (device, seq, idx)
);
CREATE TABLE journal_mute (one INTEGER PRIMARY KEY CHECK (one = 1));
CREATE TABLE journal_out (
  pos INTEGER PRIMARY KEY,
  op TEXT NOT NULL CHECK (op IN ('put', 'rm', 'forget', 'tag', 'untag')),
  version INTEGER REFERENCES versions(id) ON DELETE CASCADE,
  tag_add INTEGER REFERENCES tag_adds(id) ON DELETE CASCADE,
  device BLOB,
  seq INTEGER,
  idx INTEGER,
  sent_seq INTEGER,
  sent_idx INTEGER,
  CHECK ((op = 'put') = (version IS NOT NULL)),
  CHECK ((op = 'tag') = (tag_add IS NOT NULL)),
  CHECK ((op IN ('rm', 'forget', 'untag')) = (device IS NOT NULL))
);
INSERT INTO journal_out(op, version) SELECT 'put', id FROM versions ORDER BY object, number;
INSERT INTO tag_adds(name, tag)
SELECT o.name, t.tag FROM tags t JOIN objects o ON o.id = t.object ORDER BY o.name, t.tag;
INSERT INTO journal_out(op, tag_add) SELECT 'tag', id FROM tag_adds ORDER BY id;
CREATE TABLE journal_settings (kind TEXT PRIMARY KEY CHECK (kind IN ('settings', 'places')));
CREATE TRIGGER settings_providers_insert AFTER INSERT ON providers
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_providers_update AFTER UPDATE ON providers
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_providers_delete AFTER DELETE ON providers
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_contacts_insert AFTER INSERT ON contacts
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_contacts_update AFTER UPDATE ON contacts
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_contacts_delete AFTER DELETE ON contacts
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_tag_policies_insert AFTER INSERT ON tag_policies
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_tag_policies_update AFTER UPDATE ON tag_policies
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_tag_policies_delete AFTER DELETE ON tag_policies
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_grants_insert AFTER INSERT ON grants
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_grants_update AFTER UPDATE ON grants
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_grants_delete AFTER DELETE ON grants
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_grant_versions_insert AFTER INSERT ON grant_versions
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_grant_versions_delete AFTER DELETE ON grant_versions
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_dags_insert AFTER INSERT ON dags
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_dags_update AFTER UPDATE ON dags
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_dags_delete AFTER DELETE ON dags
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_backup_profiles_insert AFTER INSERT ON backup_profiles
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_backup_profiles_update AFTER UPDATE ON backup_profiles
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_backup_profiles_delete AFTER DELETE ON backup_profiles
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_nft_tokens_insert AFTER INSERT ON nft_tokens
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_nft_tokens_update AFTER UPDATE ON nft_tokens
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_nft_tokens_delete AFTER DELETE ON nft_tokens
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_shares_update AFTER UPDATE ON shares
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('places'); END;
CREATE TRIGGER settings_shares_delete AFTER DELETE ON shares
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('places'); END;
CREATE TRIGGER settings_chunks_update AFTER UPDATE ON chunks
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('places'); END;
CREATE TRIGGER settings_chunks_delete AFTER DELETE ON chunks
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('places'); END;
CREATE TRIGGER settings_packs_delete AFTER DELETE ON packs
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('places'); END;
CREATE TRIGGER settings_backup_runs_insert AFTER INSERT ON backup_runs
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_backup_runs_update AFTER UPDATE ON backup_runs
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_backup_runs_delete AFTER DELETE ON backup_runs
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_share_faults_delete AFTER DELETE ON share_faults
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('places'); END;
CREATE TRIGGER settings_meta_insert AFTER INSERT ON meta
WHEN NEW.key IN ('policy', 'chunker', 'cid_profile', 'content_epoch', 'did')
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER settings_meta_update AFTER UPDATE ON meta
WHEN NEW.key IN ('policy', 'chunker', 'cid_profile', 'content_epoch', 'did')
BEGIN INSERT OR IGNORE INTO journal_settings(kind) VALUES ('settings'); END;
CREATE TRIGGER journal_put AFTER INSERT ON versions
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN
  INSERT INTO journal_out(op, version) VALUES ('put', NEW.id);
END;
CREATE TRIGGER journal_rm AFTER DELETE ON versions
WHEN OLD.dot_device IS NOT NULL AND NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN
  INSERT INTO journal_out(op, device, seq, idx)
  VALUES ('rm', OLD.dot_device, OLD.dot_seq, OLD.dot_index);
END;
CREATE TRIGGER journal_tag AFTER INSERT ON tags
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN
  INSERT INTO tag_adds(name, tag) SELECT name, NEW.tag FROM objects WHERE id = NEW.object;
  INSERT INTO journal_out(op, tag_add) VALUES ('tag', last_insert_rowid());
END;
CREATE TRIGGER journal_untag AFTER DELETE ON tags
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN
  INSERT INTO journal_out(op, device, seq, idx)
  SELECT 'untag', a.device, a.seq, a.idx FROM tag_adds a JOIN objects o ON o.name = a.name
  WHERE o.id = OLD.object AND a.tag = OLD.tag AND a.device IS NOT NULL;
  DELETE FROM tag_adds WHERE tag = OLD.tag
  AND name = (SELECT name FROM objects WHERE id = OLD.object);
END;
CREATE TRIGGER journal_drop AFTER DELETE ON objects
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN
  INSERT INTO journal_out(op, device, seq, idx)
  SELECT 'untag', device, seq, idx FROM tag_adds WHERE name = OLD.name AND device IS NOT NULL;
  DELETE FROM tag_adds WHERE name = OLD.name;
END;
CREATE TRIGGER journal_rename AFTER UPDATE OF name ON objects
WHEN NOT EXISTS (SELECT 1 FROM journal_mute)
BEGIN
  INSERT INTO journal_out(op, device, seq, idx)
  SELECT 'rm', dot_device, dot_seq, dot_index FROM versions
  WHERE object = NEW.id AND dot_device IS NOT NULL ORDER BY number;
  INSERT INTO journal_out(op, version) SELECT 'put', id FROM versions
  WHERE object = NEW.id AND dot_device IS NOT NULL ORDER BY number;
  UPDATE versions SET dot_device = NULL, dot_seq = NULL, dot_index = NULL
  WHERE object = NEW.id;
  INSERT INTO journal_out(op, device, seq, idx)
  SELECT 'untag', device, seq, idx FROM tag_adds WHERE name = OLD.name AND device IS NOT NULL;
  DELETE FROM tag_adds WHERE name = OLD.name;
  INSERT INTO tag_adds(name, tag) SELECT NEW.name, tag FROM tags WHERE object = NEW.id;
  INSERT INTO journal_out(op, tag_add) SELECT 'tag', id FROM tag_adds WHERE name = NEW.name
  AND device IS NULL AND id NOT IN (SELECT tag_add FROM journal_out WHERE tag_add IS NOT NULL);
END
""",
    # 12: what GC across devices waits for (catalog/gc.py; docs/design.md, "GC in the engine").
    12: GC_MIGRATION,
    # 13: pack places as journal ops (the outbox journal_keys_out, the last-writer-wins
    # clocks journal_lww, their triggers): ``catalog.journalschema``.
    13: MIGRATION_13,
    # 14: the orphan sweep's marks (catalog/sweep.py; docs/design.md, "The orphan sweep"),
    # and chunk keys wrapped again sent as chunk places (catalog/keys.py).
    14: SWEEP_MIGRATION + REWRAP_MIGRATION,
}
