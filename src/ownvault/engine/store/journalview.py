"""What the journal says, for people: the vault's devices and who changed what and when.

Pure functions of verified records (``JournalStore.history``): ``devices`` lists every
certified device with its last record and revocation, ``log_entries`` summarizes each
record's operations, newest first. Version numbers in summaries are positions in the
merge order of the name's versions, (HLC, device, seq, index), the order every replica
shows (docs/design.md, "The merge model").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ownvault.core.journal import Record
from ownvault.core.journalops import (
    DeviceAdd,
    DeviceRevoke,
    Dot,
    DropPacks,
    Forget,
    Grant,
    GrantRevoke,
    MoveChunks,
    Op,
    Pending,
    Places,
    Publish,
    Put,
    Remove,
    Setting,
    Tag,
    Unpublish,
    Untag,
)

__all__ = ["DeviceInfo", "LogEntry", "devices", "log_entries"]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One device of the vault: ``last_seen`` is its last record's HLC wall time (ms)."""

    id: str
    name: str
    last_seq: int
    last_seen: int | None
    revoked_after: int | None
    this_device: bool


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One record: which device wrote it, when (HLC), its seq, and its ops summarized."""

    device: str
    device_name: str
    seq: int
    wall_ms: int
    counter: int
    ops: tuple[str, ...]


def devices(
    records: Iterable[Record], this_device: bytes, revoked: dict[bytes, int]
) -> list[DeviceInfo]:
    """Every device that has a certificate in ``records``, ordered by name then id."""
    names: dict[bytes, str] = {}
    last: dict[bytes, Record] = {}
    cuts = dict(revoked)
    for r in records:
        if r.device not in last or r.seq > last[r.device].seq:
            last[r.device] = r
        for op in r.ops:
            if isinstance(op, DeviceAdd):
                names[op.device] = op.name
            elif isinstance(op, DeviceRevoke):
                cuts[op.device] = min(op.last_seq, cuts.get(op.device, op.last_seq))
    out = []
    for device, name in names.items():
        rec = last.get(device)
        out.append(
            DeviceInfo(
                device.hex(),
                name,
                rec.seq if rec else 0,
                rec.hlc.wall_ms if rec else None,
                cuts.get(device),
                device == this_device,
            )
        )
    return sorted(out, key=lambda d: (d.name, d.id))


class _Names:
    """Version numbers and tag/publication targets by the dot of the op that made them."""

    def __init__(self, records: Sequence[Record]) -> None:
        versions: dict[str, list[tuple[Record, Dot]]] = {}
        self.made: dict[Dot, str] = {}
        for r in records:
            for i, op in enumerate(r.ops):
                dot = Dot(r.device, r.seq, i)
                if isinstance(op, Put):
                    versions.setdefault(op.name, []).append((r, dot))
                elif isinstance(op, Tag):
                    self.made[dot] = f"{op.name} {op.tag}"
                elif isinstance(op, Publish):
                    self.made[dot] = f"{op.name} {op.cid}"
        self.number: dict[Dot, str] = {}
        for name, vs in versions.items():
            for n, (_r, dot) in enumerate(sorted(vs, key=lambda x: (x[0].hlc, x[1])), 1):
                self.number[dot] = f"{name} v{n}"

    def version(self, dot: Dot) -> str:
        return self.number.get(dot, f"version {dot}")

    def addition(self, dot: Dot) -> str:
        return self.made.get(dot, f"({dot})")


def _summary(op: Op, names: _Names) -> str:
    match op:
        case Put():
            return f"put {op.name} {op.size} B" + ("" if op.kind == "file" else f" ({op.kind})")
        case Remove():
            return "rm " + ", ".join(names.version(d) for d in op.versions)
        case Forget():
            return "forget " + ", ".join(names.version(d) for d in op.versions)
        case Tag():
            return f"tag {op.name} {op.tag}"
        case Untag():
            return "untag " + ", ".join(names.addition(d) for d in op.adds)
        case Publish():
            return f"publish {op.name} {op.cid}"
        case Unpublish():
            return "unpublish " + ", ".join(names.addition(d) for d in op.adds)
        case Grant():
            return f"grant {op.grant.hex()[:8]} {op.name} to {op.recipient}"
        case GrantRevoke():
            return f"grant revoke {op.grant.hex()[:8]}"
        case Pending():
            return f"pending {len(op.packs)} pack(s)"
        case DeviceAdd():
            return f"device add {op.device.hex()[:8]} {op.name}"
        case DeviceRevoke():
            return f"device revoke {op.device.hex()[:8]} after seq {op.last_seq}"
        case Places():
            return f"places {op.pack.hex()[:8]} " + ", ".join(
                f"{s.idx}:{s.provider or '-'}" for s in op.shares
            )
        case MoveChunks():
            return f"move {len(op.chunks)} chunk(s) to {op.pack.hex()[:8]}"
        case DropPacks():
            return f"drop {len(op.packs)} pack(s)"
        case Setting():
            return f"set {op.table} {op.key}" + (" (removed)" if op.value is None else "")


def log_entries(records: Sequence[Record], limit: int | None = None) -> list[LogEntry]:
    """The records newest first (by HLC, then device and seq), at most ``limit``."""
    names = _Names(records)
    who = {op.device: op.name for r in records for op in r.ops if isinstance(op, DeviceAdd)}
    ordered = sorted(records, key=lambda r: (r.hlc, r.device, r.seq), reverse=True)
    if limit is not None:
        ordered = ordered[: max(0, limit)]
    return [
        LogEntry(
            r.device.hex(),
            who.get(r.device, "?"),
            r.seq,
            r.hlc.wall_ms,
            r.hlc.counter,
            tuple(_summary(op, names) for op in r.ops),
        )
        for r in ordered
    ]
