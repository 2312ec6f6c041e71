"""Rows objects on the providers: the rows of a ``put`` too large for its record
(``core.rowsobjects``), written before the record and read back before a pull applies it.

Names (docs/design.md, "Rows objects")::

    journal/rows/<device id, 32 hex>/<seq, 16 hex>-<op index, 4 hex>-<part, 4 hex>-<SHA-256, 64 hex>

Written by ``JournalStore.store_rows`` whole to every provider the placement policy allows
(as records are), each object before the record that names it: a crash in between leaves
objects no record names (the next send writes the put again, under the same names), never a
record without its rows. Objects are immutable, so a send again writes new ones (new
nonces, new hashes, new names); it first deletes what an interrupted send of the same seq
left (no record of that seq exists: the device's head is below it). Read by :func:`load_rows` before a pull's transaction: each object
from the first provider whose copy has the size and hash the signed ``put`` names, its
plaintext appended to a temporary file in the vault directory, so a pull holds one put's
rows in memory at a time (while it is applied), however many large puts it brings.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Protocol

from ownvault.core.journal import JournalKeys, Record
from ownvault.core.journalops import Put
from ownvault.core.rowsobjects import RowsRef, decode_ref, is_ref, open_part
from ownvault.engine.store.shares import ShareStore
from ownvault.errors import (
    DataUnavailableError,
    FormatError,
    IntegrityError,
    JournalError,
    ProviderError,
)

__all__ = [
    "ROWS_PREFIX",
    "RowsSpool",
    "copy_rows",
    "load_rows",
    "rows_object_name",
    "rows_seq_prefix",
]

ROWS_PREFIX = "journal/rows/"


def rows_object_name(device: bytes, seq: int, index: int, part: int, sha256: bytes) -> str:
    return f"{rows_seq_prefix(device, seq)}{index:04x}-{part:04x}-{sha256.hex()}"


def rows_seq_prefix(device: bytes, seq: int) -> str:
    """The names of the rows objects of ``device``'s record ``seq`` start with this."""
    return f"{ROWS_PREFIX}{device.hex()}/{seq:016x}-"


class _Host(Protocol):
    @property
    def store(self) -> ShareStore: ...
    @property
    def path(self) -> Path: ...


class RowsJournal(Protocol):
    """What reading rows objects needs of the journal store (``JournalStore`` is one)."""

    keys: JournalKeys

    @property
    def host(self) -> _Host: ...
    def provider_name(self, pid: int) -> str: ...
    async def fetch(self, pid: int, name: str, limit: int = ...) -> bytes: ...
    def fault(self, exc: JournalError) -> None: ...


def large_puts(record: Record) -> Iterator[tuple[int, RowsRef]]:
    """(op index, reference) of each ``put`` of ``record`` whose rows are rows objects;
    a reference that does not decode is skipped (no device applies that put: the apply
    leaves it out with a warning)."""
    for index, op in enumerate(record.ops):
        if isinstance(op, Put) and is_ref(op.rows):
            try:
                yield index, decode_ref(op.rows)
            except FormatError:
                continue


def rows_bytes(record: Record) -> int:
    """The bytes of the rows objects ``record``'s large puts name (what a reader of the
    record reads besides it)."""
    return sum(p.size for _index, ref in large_puts(record) for p in ref.parts)


class RowsSpool:
    """The rows of the large puts of one pull, each in a temporary file (unlinked at
    once: nothing is left behind by a crash), by (device, seq, op index)."""

    def __init__(self) -> None:
        self.files: dict[tuple[bytes, int, int], IO[bytes]] = {}

    def rows_of(self, record: Record, index: int, op: Put) -> bytes:
        """The rows ``op`` (op ``index`` of ``record``) carries or names."""
        if not is_ref(op.rows):
            return op.rows
        f = self.files.get((record.device, record.seq, index))
        if f is None:  # its reference did not decode: the put is left out
            decode_ref(op.rows)
            raise FormatError("the rows objects of this put were not read")
        f.seek(0)
        return f.read()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


async def _part(
    js: RowsJournal, record: Record, index: int, ref: RowsRef, part: int, out: IO[bytes]
) -> None:
    """Append rows object ``part`` to ``out`` from the first provider whose copy opens."""
    name = rows_object_name(record.device, record.seq, index, part, ref.parts[part].sha256)
    refused: list[JournalError] = []
    store = js.host.store
    for pid in sorted(store.providers):
        try:
            data = await js.fetch(pid, name, ref.parts[part].size)
        except ProviderError:
            continue
        try:
            piece = await asyncio.to_thread(
                open_part,
                js.keys.journal,
                data,
                ref,
                device=record.device,
                seq=record.seq,
                index=index,
                part=part,
            )
        except IntegrityError as exc:
            where = js.provider_name(pid)
            refused.append(
                JournalError(
                    f"put {index} refused: {exc.message}",
                    device=record.device.hex(),
                    seq=record.seq,
                    provider=where,
                )
            )
            store.report(pid, name, "corrupt", exc.message)
            continue
        for bad in refused:
            js.fault(bad)
        await asyncio.to_thread(out.write, piece)
        return
    if refused:
        raise refused[0]
    raise DataUnavailableError(
        f"journal: rows object {part} of put {index} of device {record.device.hex()} seq "
        f"{record.seq}: no reachable provider could serve it"
    )


async def load_rows(js: RowsJournal, records: Sequence[Record]) -> RowsSpool:
    """Read the rows objects the puts of ``records`` name (module docstring). A copy that
    is too big, truncated, another object or not the hash the put names is refused (a
    ``JournalError`` naming device, seq and provider), and the next provider's tried; when
    none has a good copy the pull stops with that error (with ``DataUnavailableError`` if
    none could be reached: the next pull tries again). A reference that does not decode
    is left for the apply, which leaves the put out with a warning."""
    spool = RowsSpool()
    try:
        for record in records:
            for index, ref in large_puts(record):
                out = tempfile.TemporaryFile(dir=js.host.path)  # noqa: SIM115 (kept open, closed by the spool)
                spool.files[record.device, record.seq, index] = out
                for part in range(len(ref.parts)):
                    await _part(js, record, index, ref, part, out)
    except BaseException:
        spool.close()
        raise
    return spool


async def _good_part(
    js: RowsJournal, record: Record, index: int, ref: RowsRef, part: int, sources: Sequence[int]
) -> bytes | None:
    name = rows_object_name(record.device, record.seq, index, part, ref.parts[part].sha256)
    for pid in sources:
        try:
            data = await js.fetch(pid, name, ref.parts[part].size)
            open_part(
                js.keys.journal, data, ref, device=record.device, seq=record.seq, index=index,
                part=part,
            )  # fmt: skip
        except (ProviderError, IntegrityError):
            continue
        return data
    return None


async def copy_rows(js: RowsJournal, record: Record, to: int, sources: Sequence[int]) -> int:
    """Write to provider ``to`` the rows objects of ``record``'s large puts it lacks, each
    from the first of ``sources`` whose copy checks out (repair of a stale provider, with
    the record it lacks); how many. ``DataUnavailableError`` if no source has a good one."""
    store = js.host.store
    copied = 0
    for index, ref in large_puts(record):
        for part, named in enumerate(ref.parts):
            name = rows_object_name(record.device, record.seq, index, part, named.sha256)
            try:
                await store.providers[to].stat(name)
                continue  # there (checked when read, as every copy is)
            except ProviderError:
                pass
            data = await _good_part(js, record, index, ref, part, sources)
            if data is None:
                raise DataUnavailableError(
                    f"no good copy of rows object {part} of put {index} of device "
                    f"{record.device.hex()[:8]} seq {record.seq}"
                )
            await store.put_share(to, name, data)
            copied += 1
    return copied
