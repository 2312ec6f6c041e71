"""The catalog's table groups (``catalog.packs``, ``catalog.journal``, ...), each made, and
its module imported, on first use.

Each group of tables beyond the core ones is a class in its own module of this package
(``catalog/<group>.py``), on the catalog's one connection. Defining them all (most hold
frozen dataclasses of their rows) was most of the time a short command took to open the
catalog, so :class:`TableGroups` imports a group's module when the group is first reached:
``ls``, ``du`` and a put the files cache finds unchanged load only the groups they use
(docs/design.md, "Engine architecture", start-up; the modules they must not load are listed
in tests/cli/test_startup.py). Every group is one object per catalog, as before.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING

from ownvault.engine.store.catalog.tables import transaction

if TYPE_CHECKING:
    from ownvault.engine.store.catalog.backups import BackupTables
    from ownvault.engine.store.catalog.contents import ContentTables
    from ownvault.engine.store.catalog.filescache import FilesCache
    from ownvault.engine.store.catalog.fleet import FleetTables
    from ownvault.engine.store.catalog.gc import GcTables
    from ownvault.engine.store.catalog.healthlog import HealthLogTables
    from ownvault.engine.store.catalog.ipfs import DagTables
    from ownvault.engine.store.catalog.journal import JournalTables
    from ownvault.engine.store.catalog.journalout import JournalNamespace
    from ownvault.engine.store.catalog.journalplaces import JournalPlaces
    from ownvault.engine.store.catalog.journalrevoke import LateRevocations
    from ownvault.engine.store.catalog.journalrows import JournalRowTables
    from ownvault.engine.store.catalog.journalsettings import JournalSettings
    from ownvault.engine.store.catalog.keys import KeyTables
    from ownvault.engine.store.catalog.nft import NftTables
    from ownvault.engine.store.catalog.packs import PackTables
    from ownvault.engine.store.catalog.sharing import ContactTables, GrantTables
    from ownvault.engine.store.catalog.sweep import SweepTables
    from ownvault.engine.store.catalog.underrep import UnderReplicated
    from ownvault.engine.store.catalog.usage import UsageTables

__all__ = ["TableGroups"]


class TableGroups:
    """The table groups of a catalog on ``conn``, each made when first reached (the
    catalog's base class)."""

    conn: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.conn)

    # -- the store ----------------------------------------------------------------------

    @cached_property
    def keys(self) -> KeyTables:
        from ownvault.engine.store.catalog.keys import KeyTables

        return KeyTables(self.conn)

    @cached_property
    def packs(self) -> PackTables:
        from ownvault.engine.store.catalog.packs import PackTables

        return PackTables(self.conn)

    @cached_property
    def contents(self) -> ContentTables:
        from ownvault.engine.store.catalog.contents import ContentTables

        return ContentTables(self.conn)

    @cached_property
    def usage(self) -> UsageTables:
        from ownvault.engine.store.catalog.usage import UsageTables

        return UsageTables(self.conn)

    @cached_property
    def filescache(self) -> FilesCache:
        from ownvault.engine.store.catalog.filescache import FilesCache

        return FilesCache(self.conn)

    @cached_property
    def gc(self) -> GcTables:
        from ownvault.engine.store.catalog.gc import GcTables

        return GcTables(self.conn)

    @cached_property
    def sweep(self) -> SweepTables:
        from ownvault.engine.store.catalog.sweep import SweepTables

        return SweepTables(self.conn)

    # -- the journal --------------------------------------------------------------------

    @cached_property
    def journal(self) -> JournalTables:
        from ownvault.engine.store.catalog.journal import JournalTables

        return JournalTables(self.conn)

    @cached_property
    def jns(self) -> JournalNamespace:
        from ownvault.engine.store.catalog.journalout import JournalNamespace

        return JournalNamespace(self.conn)

    @cached_property
    def jrows(self) -> JournalRowTables:
        from ownvault.engine.store.catalog.journalrows import JournalRowTables

        return JournalRowTables(self.conn)

    @cached_property
    def jplaces(self) -> JournalPlaces:
        from ownvault.engine.store.catalog.journalplaces import JournalPlaces

        return JournalPlaces(self.conn)

    @cached_property
    def jsettings(self) -> JournalSettings:
        from ownvault.engine.store.catalog.journalsettings import JournalSettings

        return JournalSettings(self.conn)

    @cached_property
    def late(self) -> LateRevocations:
        from ownvault.engine.store.catalog.journalrevoke import LateRevocations

        return LateRevocations(self.conn)

    # -- health, fleet, features ----------------------------------------------------------

    @cached_property
    def fleet(self) -> FleetTables:
        from ownvault.engine.store.catalog.fleet import FleetTables

        return FleetTables(self.conn)

    @cached_property
    def healthlog(self) -> HealthLogTables:
        from ownvault.engine.store.catalog.healthlog import HealthLogTables

        return HealthLogTables(self.conn)

    @cached_property
    def underrep(self) -> UnderReplicated:
        from ownvault.engine.store.catalog.underrep import UnderReplicated

        return UnderReplicated(self.conn, self.transaction)

    @cached_property
    def backups(self) -> BackupTables:
        from ownvault.engine.store.catalog.backups import BackupTables

        return BackupTables(self.conn, self.transaction)

    @cached_property
    def contacts(self) -> ContactTables:
        from ownvault.engine.store.catalog.sharing import ContactTables

        return ContactTables(self.conn)

    @cached_property
    def grants(self) -> GrantTables:
        from ownvault.engine.store.catalog.sharing import GrantTables

        return GrantTables(self.conn)

    @cached_property
    def dags(self) -> DagTables:
        from ownvault.engine.store.catalog.ipfs import DagTables

        return DagTables(self.conn)

    @cached_property
    def nft(self) -> NftTables:
        from ownvault.engine.store.catalog.nft import NftTables

        return NftTables(self.conn)
