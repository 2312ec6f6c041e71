"""What every table group of the catalog shares: the one connection and its transactions.

Only the catalog package runs SQL. The core tables (meta, providers, packs, shares, chunks,
contents, versions) are ``Catalog``'s own methods; each further group of tables is a class
here, built on the same connection and reached as an attribute of the catalog
(``catalog.healthlog``, ``catalog.packs``, ...).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["Tables", "savepoint", "transaction"]


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``, or ``ROLLBACK`` on any exception (not nestable)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


@contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A nested part of the caller's transaction, undone alone on any exception."""
    conn.execute("SAVEPOINT part")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK TO part")
        conn.execute("RELEASE part")
        raise
    else:
        conn.execute("RELEASE part")


class Tables:
    """A group of tables on the catalog's connection (not shared across threads)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn)

    def savepoint(self) -> AbstractContextManager[sqlite3.Connection]:
        return savepoint(self._conn)
