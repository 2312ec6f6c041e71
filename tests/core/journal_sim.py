"""A few devices sharing one vault's journal, simulated in memory for the journal and
merge tests: each device signs records on its own chain, keeps its own merged state, and
sees another device's records only when they are delivered to it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from ownvault.core.journal import (
    GENESIS,
    ChainHead,
    DeviceKey,
    JournalKeys,
    Record,
    certify_device,
    encode_record,
    open_record,
)
from ownvault.core.journalops import Body, Op
from ownvault.core.keys import VaultKeys
from ownvault.core.merge import EMPTY, State, heads, membership, merge


@cache
def vault_keys() -> JournalKeys:
    return JournalKeys.of(VaultKeys(bytes(32)))


@cache
def other_vault_keys() -> JournalKeys:
    return JournalKeys.of(VaultKeys(bytes([1]) * 32))


def device_key(i: int) -> DeviceKey:
    return DeviceKey(bytes([i + 1]) * 32)


@dataclass
class Device:
    """One device: its key, chain head, clock and local state."""

    key: DeviceKey
    name: str
    head: ChainHead = GENESIS
    state: State = EMPTY
    raws: list[bytes] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    @property
    def id(self) -> bytes:
        return self.key.id

    def commit(self, ops: Iterable[Op], now_ms: int) -> Record:
        """Sign the next record (the first one carries this device's certificate)."""
        ops = tuple(ops)
        if self.head.seq == 0:
            ops = (certify_device(vault_keys(), self.key.public, self.name), *ops)
        clock = self.head.hlc
        for h in heads(self.state).values():
            clock = clock.witness(h.hlc)
        seen = tuple(sorted((d, h.seq) for d, h in heads(self.state).items()))
        raw, record = encode_record(
            vault_keys(), self.key, self.head, Body(clock.tick(now_ms), ops, seen)
        )
        self.head = record.head
        self.raws.append(raw)
        self.records.append(record)
        self.state = merge(self.state, [record])
        return record

    def receive(self, raws: Iterable[bytes]) -> None:
        """Open (verify) and merge records as a provider delivered them, in chain order."""
        for raw in raws:
            members, revoked = membership(self.state)
            record = open_record(vault_keys(), raw, members=members, revoked=revoked)
            self.state = merge(self.state, [record])

    def absorb(self, records: Iterable[Record]) -> None:
        """Merge records already opened (any order: merge does not care)."""
        self.state = merge(self.state, records)


def devices(n: int) -> list[Device]:
    return [Device(device_key(i), f"device-{i}") for i in range(n)]
