"""The vault core, knowing no feature: catalog, ingest, restore, snapshots, placement, share I/O, pack rewriting."""
