"""UnixFS HAMT-sharded directories, as Kubo (boxo ``ipld/unixfs/hamt``) and the JS importer build them.

* Hash: ``h1``, the first 64-bit word of murmur3-x64-128 (seed 0) of the entry name's UTF-8
  bytes, read as an unsigned integer (go's ``murmur3.Sum64`` written big-endian; multihash
  code ``0x22``, "murmur3-x64-64").
* Each shard level consumes the next log2(fanout) bits of the hash, most significant first:
  with fanout 256 level ``d`` uses hash byte ``d``. An index with one entry holds a link
  named ``"%02X" % index + name`` to the entry; an index with several entries holds a link
  named ``"%02X" % index`` to a sub-shard that sorts them on the next bits. Links are in
  index order. (Hex width = digits of ``fanout - 1``: 2 for 256.)
* A shard node is dag-pb with ``Data = UnixFS{Type=HAMTShard, Data=bitfield,
  hashType=0x22, fanout}``; the bitfield is the big-endian integer with bit ``i`` set for
  each used index, leading zero bytes dropped. Tsize is block length + children's Tsizes.

The layout depends only on the set of names (not insertion order). 64 bits allow 8 levels
at fanout 256; names whose hashes agree on all of them are refused (FormatError) rather
than re-hashed, which no real directory reaches.

mmh3 is the maintained C implementation of MurmurHash3; the rest is a few lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import mmh3

from ownvault.core.cid import CID, encode_varint
from ownvault.core.dagpb import encode_link
from ownvault.errors import FormatError

__all__ = ["MURMUR3_X64_64", "build_shard", "name_hash"]

MURMUR3_X64_64 = 0x22

# (name bytes, child CID, child Tsize)
_Entry = tuple[bytes, CID, int]


def name_hash(name: bytes) -> int:
    """The 64-bit HAMT hash of a directory entry name."""
    h1, _h2 = mmh3.hash64(name, seed=0, x64arch=True, signed=False)
    return h1


def build_shard(
    entries: list[_Entry],
    *,
    fanout: int,
    node_cid: Callable[[bytes], CID],
    on_block: Callable[[CID, bytes], None] | None = None,
) -> tuple[CID, int]:
    """Build the HAMT for ``entries``; return (root CID, root Tsize).

    ``node_cid`` turns a block's sha2-256 digest into the profile's dag-pb CID.
    """
    bits = fanout.bit_length() - 1
    width = len(f"{fanout - 1:X}")
    hashed = [(name_hash(name), name, cid, tsize) for name, cid, tsize in entries]

    def shard(group: list[tuple[int, bytes, CID, int]], depth: int) -> tuple[CID, int]:
        shift = 64 - bits * (depth + 1)
        if shift < 0:
            raise FormatError("HAMT hash exhausted: names collide on all 64 bits")
        buckets: dict[int, list[tuple[int, bytes, CID, int]]] = {}
        for item in group:
            buckets.setdefault((item[0] >> shift) & (fanout - 1), []).append(item)
        parts = []
        bitfield = 0
        child_tsize = 0
        for index in sorted(buckets):
            bitfield |= 1 << index
            label = f"{index:0{width}X}".encode("ascii")
            members = buckets[index]
            if len(members) == 1:
                _, name, cid, tsize = members[0]
                parts.append(encode_link(cid.bytes, label + name, tsize))
            else:
                cid, tsize = shard(members, depth + 1)
                parts.append(encode_link(cid.bytes, label, tsize))
            child_tsize += tsize
        field = bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big")
        data = (
            b"\x08\x05\x12"
            + encode_varint(len(field))
            + field
            + b"\x28"
            + encode_varint(MURMUR3_X64_64)
            + b"\x30"
            + encode_varint(fanout)
        )
        parts.append(b"\x0a" + encode_varint(len(data)) + data)
        block = b"".join(parts)
        cid = node_cid(hashlib.sha256(block).digest())
        if on_block is not None:
            on_block(cid, block)
        return cid, len(block) + child_tsize

    return shard(hashed, 0)
