"""Settings through the catalog journal: each change of a provider, the policy (and the other
vault parameters in ``meta``), a contact, a tag policy, a backup profile, an NFT, a grant or
a publication goes out as a ``set`` op naming the table and key with the row's new value
(or a tombstone), and other devices' ``set`` ops are merged into the cache
last-writer-wins per key (docs/design.md, "Pack places and settings as ops").

Out (:func:`setting_ops`): the outbox keys of kind ``set`` (``catalog.jplaces``), each read
as it is now (``catalog.jsettings``). Providers and ``meta`` go first in a record (a put or
a place after them may name a provider they add), the others after the namespace ops (a
grant or a publication names versions by their dots, given to the puts of the same
record).

In (:func:`apply_setting`): written when the record's (HLC, device) is later than the last
write of that key here; a grant revoked on either side stays revoked (a revocation wins,
as ``grant_revoke`` in ``core.merge``). A value that is not a row of its table, or that the
catalog refuses (a contact name another contact holds here), is left out with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ownvault.core.journal import Record
from ownvault.core.journalops import Setting
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.journalplaces import Keyed
from ownvault.errors import FormatError, VaultStateError

__all__ = ["FIRST", "apply_setting", "setting_ops"]

FIRST = frozenset({"provider", "meta"})
"""Settings sent before the namespace ops of their record."""
_GRANT_KEY = re.compile(r"[0-9a-f]{32}")
MAX_KEY = 4096  # core.journalops.MAX_NAME: a longer key (a publication of a deep path) stays here


def setting_ops(catalog: Catalog, device: bytes | None, *, first: bool) -> list[Keyed]:
    """The ``set`` ops owed: those of :data:`FIRST` tables, or the others."""
    out: list[Keyed] = []
    gone: list[tuple[str, str]] = []
    for kind, key in catalog.jplaces.unsent():
        if kind != "set":
            continue
        table, local = key.split(":", 1)
        if (table in FIRST) != first:
            continue
        read = catalog.jsettings.read(table, local, device or bytes(16))
        if read is None or len(read[0].encode()) > MAX_KEY:
            gone.append((kind, key))
            continue
        wire, value = read
        out.append((Setting(table, wire, value), [(kind, key, f"{table}:{wire}")]))
    if gone:
        catalog.jplaces.discard(gone)
    return out


def apply_setting(
    catalog: Catalog, record: Record, op: Setting, warn: Callable[[str], None] = lambda _m: None
) -> bool:
    """Merge one ``set`` op of another device's record (inside the caller's transaction,
    captures muted); True if it changed this catalog."""
    if op.table == "grant" and not _GRANT_KEY.fullmatch(op.key):
        warn(f"journal: setting grant {op.key[:40]!r} in {record} left out: not a grant id")
        return False
    try:
        with catalog.jplaces.savepoint():
            if catalog.jplaces.wins("set", f"{op.table}:{op.key}", record.hlc, record.device):
                catalog.jsettings.write(op.table, op.key, op.value)
                return True
            if op.table == "grant":
                catalog.jsettings.revoke_grant(op.key, op.value)
            return False
    except (FormatError, VaultStateError) as exc:
        warn(f"journal: setting {op.table} {op.key[:80]} in {record} left out: {exc.message}")
        return False
