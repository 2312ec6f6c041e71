"""The vault's devices: list them, revoke one (and rotate the content keys), the log.

Each reads every chain from the providers (``JournalStore.history``) after this device
enrolled (its certificate record first), under the vault's write lock so that one
device never writes two records at once. A revocation's cut-off is
``merge.revocation_cut`` over every record read: the highest seq of the device that any
device acknowledged or that is held, so nothing others built on is undone. It then
rotates the content key (``keys rotate``) so chunks written from now on are under a key
the revoked device never had; it cannot take back what the device already read, nor the
recovery phrase, from which every vault key derives (docs/design.md, "Limits").
"""

from __future__ import annotations

from dataclasses import dataclass

from ownvault.core.journal import revoke_device as make_revocation
from ownvault.core.merge import revocation_cut, state_of
from ownvault.engine.keys.keyring import rotate_content_key
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.journalstore import JournalStore
from ownvault.engine.store.journalview import DeviceInfo, LogEntry, devices, log_entries
from ownvault.errors import NotFoundError, UsageError

__all__ = ["DeviceRevocation", "journal_log", "list_devices", "revoke"]


@dataclass(frozen=True, slots=True)
class DeviceRevocation:
    """``device`` (``name``) is revoked after its seq ``last_seq`` by this device's record
    ``seq``; chunk keys written from now on are under content-key epoch ``epoch``."""

    device: str
    name: str
    last_seq: int
    seq: int
    epoch: int
    phrase_revoked: bool = False  # never: whoever holds the phrase derives every key


async def _read(ctx: VaultContext) -> tuple[JournalStore, list[DeviceInfo]]:
    js = JournalStore(ctx)
    async with ctx.lock.hold():
        await js.enroll()
        records = await js.history()
    return js, devices(records, js.device.id, ctx.catalog.journal.revoked())


async def list_devices(ctx: VaultContext) -> list[DeviceInfo]:
    """Every device of the vault, this one marked."""
    return (await _read(ctx))[1]


async def journal_log(ctx: VaultContext, limit: int | None = None) -> list[LogEntry]:
    """Who changed what and when, newest first."""
    js = JournalStore(ctx)
    async with ctx.lock.hold():
        await js.enroll()
        records = await js.history()
    return log_entries(records, limit)


def _resolve(found: list[DeviceInfo], device: str) -> DeviceInfo:
    key = device.strip().lower()
    matches = [d for d in found if d.id.startswith(key)] if key else []
    if not matches:
        matches = [d for d in found if d.name == device]
    if not matches:
        raise NotFoundError(f"no device {device!r} in this vault (see `ownvault devices`)")
    if len(matches) > 1:
        raise UsageError(f"{device!r} names {len(matches)} devices; give more of the id")
    return matches[0]


async def revoke(ctx: VaultContext, device: str) -> DeviceRevocation:
    """Revoke ``device`` (an id prefix or a name), then rotate the content key."""
    js = JournalStore(ctx)
    async with ctx.lock.hold():
        await js.enroll()
        records = await js.history()
        target = _resolve(devices(records, js.device.id, ctx.catalog.journal.revoked()), device)
        if target.this_device:
            raise UsageError("this device cannot revoke itself: revoke it from another device")
        if target.revoked_after is not None:
            raise UsageError(f"device {target.id[:8]} is revoked already")
        dev = bytes.fromhex(target.id)
        cut = revocation_cut(state_of(records), dev)
        rec = await js.append(js.device, js.body([make_revocation(js.keys, dev, cut)]))
    rotation = await rotate_content_key(ctx)
    return DeviceRevocation(target.id, target.name, cut, rec.seq, rotation.epoch)
