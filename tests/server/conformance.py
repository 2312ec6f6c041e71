"""Read a gateway-conformance fixture CAR the way the suite's helpers do (MustGetCid,
MustGetDescendantsCids, MustGetCidsInHAMT, MustGetCIDsInHAMTTraversal), from our own
bounded decoders."""

from __future__ import annotations

from pathlib import Path

from ownvault.core.car import CarReader
from ownvault.core.cid import CID
from ownvault.core.dagpb import decode_node, decode_unixfs

HAMT_SHARD = 5


class Fixture:
    def __init__(self, path: Path) -> None:
        reader = CarReader([path.read_bytes()])
        self.root: CID = next(iter(reader.roots))
        self.blocks: dict[CID, bytes] = {b.cid: bytes(b.data) for b in reader}

    def _is_shard(self, cid: CID) -> bool:
        if cid.codec != 0x70 or cid not in self.blocks:
            return False
        pb = decode_node(self.blocks[cid])
        return pb.data is not None and decode_unixfs(pb.data).type == HAMT_SHARD

    def _child(self, cid: CID, name: str, via: list[CID]) -> CID:
        pb = decode_node(self.blocks[cid])
        if not self._is_shard(cid):
            for link in pb.links:
                if link.name == name:
                    return link.cid
            raise KeyError(name)
        for link in pb.links:
            label = link.name or ""
            if len(label) == 2 and self._is_shard(link.cid):
                try:
                    found = self._child(link.cid, name, via)
                except KeyError:
                    continue
                via.insert(0, link.cid)
                return found
            if label[2:] == name:
                return link.cid
        raise KeyError(name)

    def cid(self, *names: str) -> str:
        cid = self.root
        for name in names:
            cid = self._child(cid, name, [])
        return str(cid)

    def hamt_traversal(self, *names: str) -> list[str]:
        """The sub-shard nodes passed on the way to ``names`` (not the root)."""
        via: list[CID] = []
        cid = self.root
        for name in names:
            cid = self._child(cid, name, via)
        return [str(c) for c in via]

    def hamt_nodes(self) -> list[str]:
        """Every shard node below the root shard, depth-first."""
        out: list[str] = []

        def visit(cid: CID) -> None:
            for link in decode_node(self.blocks[cid]).links:
                if self._is_shard(link.cid):
                    out.append(str(link.cid))
                    visit(link.cid)

        visit(self.root)
        return out

    def descendants(self, *names: str) -> list[str]:
        """Every block below ``names``, depth-first pre-order, each once."""
        start = CID.parse(self.cid(*names))
        seen: list[str] = []

        def visit(cid: CID) -> None:
            if cid.codec != 0x70:
                return
            for link in decode_node(self.blocks[cid]).links:
                if str(link.cid) not in seen:
                    seen.append(str(link.cid))
                visit(link.cid)

        visit(start)
        return seen
