"""Paged journal checkpoints (format ``ownvault-journal`` checkpoint v2): a compacted merge
state cut into pages by a stable hash of each fact's key, under one signed root that names
every page by the hash of its bytes, so that a checkpoint after a few changes rewrites the
root and the pages those changes touched, and nothing else::

    root  := "OVJK" || 0x02 || signer (16) || len(box) (u32 BE) || box || Ed25519(signer, ...)
    box   := seal(journal key, zlib(C(root plain)), AD = "ownvault/v1/journal-checkpoint" || header)
    page  := "OVJP" || 0x02 || seal(journal key, zlib(plain), AD = "ownvault/v1/journal-checkpoint-page"
                                     || "OVJP" || 0x02 || prefix)
    name  := hex(SHA-256(page))          a page is stored and fetched by this name
    plain := "[" fact "," fact ... "]"   canonical JSON, facts in increasing SHA-256(key) order

Every fact of the state (a device's registers, an applied record head above the floor, a
version, a removal op and what it removes, a tag, a publication, a grant, ...) is a short
JSON list whose key is its kind and the dot (or device) that names it. The pages are the
leaves of a binary trie over the keys' hashes, cut by one rule that depends on the facts
alone, so that a state has one layout (and one encoding): a node splits in two (by the
next bit) when it holds more than one fact and their encoded size exceeds the root's
``limit``. A change moves only the leaves that hold the facts it touched. Pages are
compressed (zlib) before sealing: the JSON of ids and base64 compresses to about the raw
bytes (docs/design.md, "Catalog journal and multi-device merge", has the layout, the
bounds and the figures). Version 1 (one whole document, :mod:`ownvault.core.checkpoint`)
stays readable: :func:`open_checkpoint` dispatches on the version byte.
"""

from __future__ import annotations

import json
import struct
import zlib
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate

from ownvault.core import crypto
from ownvault.core.checkpoint import (
    CHECKPOINT_AD,
    MAGIC,
    Checkpoint,
    check_membership,
    decode_checkpoint,
    head_json,
    need_device,
    need_head,
    need_map,
    need_tuple,
)
from ownvault.core.checkpointfacts import Facts
from ownvault.core.journal import ChainHead, DeviceKey, JournalKeys, device_id, verify_device_add
from ownvault.core.journalops import (
    MAX_SHORT,
    DeviceAdd,
    canonical,
    need_hex,
    need_int,
    need_list,
    need_obj,
    need_str,
)
from ownvault.core.jsonvalue import JSONValue
from ownvault.core.merge import State, compact, heads
from ownvault.errors import FormatError, IntegrityError, JournalError

__all__ = [
    "PAGE_LIMIT",
    "Leaf",
    "Paged",
    "Root",
    "decode_pages",
    "encode_paged",
    "open_checkpoint",
    "open_root",
]

VERSION = 2
PAGE_MAGIC = b"OVJP"
PAGE_HEADER = PAGE_MAGIC + bytes((VERSION,))
PAGE_AD = b"ownvault/v1/journal-checkpoint-page"
HEADER_SIZE = len(MAGIC) + 1 + 16
SIG_SIZE = 64
PAGE_LIMIT = 256 * 1024  # bytes of facts above which a page of 2 or more facts splits
MIN_LIMIT = 64
MAX_LIMIT = 4 * 1024 * 1024
MAX_DEPTH = 64  # bits of the key hash a page prefix may use
MAX_PAGES = 100_000
MAX_PAGE_PLAIN = 64 * 1024 * 1024  # one fact is at most ~27 MiB (16 MiB rows, 100,000 packs)
MAX_PAGE_SIZE = MAX_PAGE_PLAIN + 64 * 1024  # zlib's worst case expansion is far smaller
MAX_ROOT_PLAIN = 32 * 1024 * 1024
MAX_ROOT_SIZE = MAX_ROOT_PLAIN + 64 * 1024
MAX_TOTAL_PLAIN = 8 * 1024 * 1024 * 1024
_ROOT_FIELDS = frozenset({"heads", "limit", "pages", "signer"})
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One page of the trie: its prefix (bits of the key hash as "0"/"1"), how many facts
    it holds, their plaintext size, its plaintext's SHA-256 and its name (both empty for a
    leaf with no facts, which has no page)."""

    prefix: str
    count: int
    size: int
    digest: bytes
    name: str

    def to_json(self) -> list[JSONValue]:
        if not self.count:
            return [self.prefix, 0, 0, None, None]
        return [self.prefix, self.count, self.size, self.digest.hex(), self.name]


@dataclass(frozen=True, slots=True)
class Root:
    """An opened, verified root: who signed it (with the certificate it carries), the
    version vector, the split limit and the leaves in prefix order."""

    signer: bytes
    member: tuple[bytes, str, bytes]
    heads: Mapping[bytes, ChainHead]
    limit: int
    leaves: tuple[Leaf, ...]
    state_hash: bytes = field(repr=False)

    @property
    def page_names(self) -> frozenset[str]:
        """Every page this checkpoint needs (fetch them, verify each by its name)."""
        return frozenset(leaf.name for leaf in self.leaves if leaf.count)


@dataclass(frozen=True, slots=True)
class Paged:
    """An encoded checkpoint: the root's bytes, its opened form, and the pages to write
    (only those the previous checkpoint did not already have)."""

    root: bytes
    opened: Root
    pages: Mapping[str, bytes] = field(repr=False)

    @property
    def written(self) -> int:
        """Bytes this checkpoint writes: the root and its new pages."""
        return len(self.root) + sum(len(p) for p in self.pages.values())

    def stale(self, previous: Root) -> frozenset[str]:
        """The pages of ``previous`` this checkpoint no longer names: delete them once its
        root is durable."""
        return previous.page_names - self.opened.page_names


# -- the layout: a trie over key hashes, cut by one rule ----------------------------------------


def _prefix_int(prefix: str) -> int:
    return int(prefix, 2) if prefix else 0


def _cut(h64: list[int], weight: list[int], limit: int) -> Iterator[tuple[str, int, int]]:
    """The leaves over facts sorted by hash (``h64``: their first 64 bits; ``weight``:
    prefix sums of encoded size + 1): (prefix, first index, end index), in prefix order."""
    stack = [("", 0, len(h64))]
    while stack:
        prefix, lo, hi = stack.pop()
        depth = len(prefix)
        if hi - lo <= 1 or weight[hi] - weight[lo] <= limit or depth >= MAX_DEPTH:
            yield prefix, lo, hi
            continue
        base = (_prefix_int(prefix) * 2 + 1) << (MAX_DEPTH - depth - 1)
        mid = bisect_left(h64, base, lo, hi)
        stack.append((prefix + "1", mid, hi))
        stack.append((prefix + "0", lo, mid))


def _check_shape(leaves: tuple[Leaf, ...], limit: int) -> None:
    """The leaves must be the trie the split rule makes of their facts: a complete binary
    trie in prefix order, each inner node over the limit with 2+ facts, no leaf that
    should have split."""
    count: dict[str, int] = {}
    weight: dict[str, int] = {}
    expected = [""]
    for leaf in leaves:
        if not expected:
            raise FormatError("checkpoint pages go on after the trie is complete")
        node = expected.pop()
        while node != leaf.prefix:
            if not leaf.prefix.startswith(node):
                raise FormatError(f"page prefix {leaf.prefix!r} is out of place")
            count[node] = weight[node] = 0
            expected.append(node + "1")
            node += "0"
        w = leaf.size - 1 if leaf.count else 0
        for depth in range(len(leaf.prefix)):
            count[leaf.prefix[:depth]] += leaf.count
            weight[leaf.prefix[:depth]] += w
        if leaf.count > 1 and w > limit and len(leaf.prefix) < MAX_DEPTH:
            raise FormatError(f"page {leaf.prefix!r} should have been split")
    if expected:
        raise FormatError("checkpoint pages do not cover every key")
    for node, n in count.items():
        if n <= 1 or weight[node] <= limit:
            raise FormatError(f"page {node!r} was split but is under the limit")


# -- encoding -------------------------------------------------------------------------------------


def _seal_page(keys: JournalKeys, prefix: str, plain: bytes) -> bytes:
    ad = PAGE_AD + PAGE_HEADER + prefix.encode()
    return PAGE_HEADER + crypto.seal(keys.journal, zlib.compress(plain, 6), ad)


def encode_paged(
    keys: JournalKeys,
    signer: DeviceKey,
    state: State,
    previous: Root | None = None,
    *,
    limit: int = PAGE_LIMIT,
) -> Paged:
    """A paged checkpoint of ``state`` (compacted here) signed by ``signer``, a member.

    With ``previous`` (the last checkpoint's root, as encoded or opened), a page whose
    prefix and plaintext are unchanged keeps its name and is not written again: ``pages``
    holds only the new ones (the pages of ``previous`` no longer named may be deleted)."""
    if not MIN_LIMIT <= limit <= MAX_LIMIT:
        raise FormatError(f"page limit out of range: {limit}")
    state = compact(state)
    check_membership(keys, state, signer.id)
    encode = _ENCODER.encode  # journalops.canonical's settings, one encoder for every fact
    facts = sorted((crypto.sha256(key), encode(value).encode()) for key, value in Facts.of(state))
    h64 = [int.from_bytes(h[:8], "big") for h, _text in facts]
    weight = [0, *accumulate(len(text) + 1 for _h, text in facts)]
    old = {(leaf.prefix, leaf.digest): leaf.name for leaf in previous.leaves} if previous else {}
    leaves, pages = [], {}
    for prefix, lo, hi in _cut(h64, weight, limit):
        if lo == hi:
            leaves.append(Leaf(prefix, 0, 0, b"", ""))
            continue
        plain = b"[" + b",".join(text for _h, text in facts[lo:hi]) + b"]"
        if len(plain) > MAX_PAGE_PLAIN:
            raise FormatError(f"checkpoint page {prefix!r} over its size limit")
        digest = crypto.sha256(plain)
        name = old.get((prefix, digest))
        if name is None:
            page = _seal_page(keys, prefix, plain)
            name = crypto.sha256(page).hex()
            pages[name] = page
        leaves.append(Leaf(prefix, hi - lo, len(plain), digest, name))
    if len(leaves) > MAX_PAGES:
        raise FormatError("checkpoint needs more pages than a root may name")
    member = state.members[signer.id]
    plain = canonical(
        {
            "heads": {d.hex(): head_json(h) for d, h in heads(state).items()},
            "limit": limit,
            "pages": [leaf.to_json() for leaf in leaves],
            "signer": [member[0].hex(), member[1], member[2].hex()],
        }
    )
    header = MAGIC + bytes((VERSION,)) + signer.id
    box = crypto.seal(keys.journal, zlib.compress(plain, 6), CHECKPOINT_AD + header)
    signed = header + struct.pack(">I", len(box)) + box
    root = signed + crypto.ed25519_sign(signer.seed, CHECKPOINT_AD + b"\x00" + signed)
    return Paged(root, _open_root(keys, root), pages)


# -- decoding -------------------------------------------------------------------------------------


def _inflate(data: bytes, limit: int, what: str) -> bytes:
    d = zlib.decompressobj()
    try:
        plain = d.decompress(data, limit + 1)
    except zlib.error:
        raise FormatError(f"{what} is not zlib data") from None
    if len(plain) > limit or not d.eof or d.unused_data or d.unconsumed_tail:
        raise FormatError(f"{what} is over its size limit, truncated or followed by bytes")
    return plain


def _json(plain: bytes, what: str) -> JSONValue:
    try:
        value: JSONValue = json.loads(plain)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{what} is not JSON: {str(exc)[:80]}") from None
    if canonical(value) != plain:
        raise FormatError(f"{what} is not in canonical form")
    return value


def _leaf(value: JSONValue, i: int) -> Leaf:
    prefix, count, size, digest, name = need_tuple(value, f"pages[{i}]", 5)
    bits = need_str(prefix, f"pages[{i}] prefix", MAX_DEPTH)
    if bits.strip("01"):
        raise FormatError(f"pages[{i}] prefix is not a string of bits")
    n = need_int(count, f"pages[{i}] count", 0, MAX_PAGE_PLAIN)
    if n == 0:
        if (size, digest, name) != (0, None, None):
            raise FormatError(f"pages[{i}] is empty but names a page")
        return Leaf(bits, 0, 0, b"", "")
    return Leaf(
        bits,
        n,
        need_int(size, f"pages[{i}] size", 2 * n + 1, MAX_PAGE_PLAIN),
        need_hex(digest, f"pages[{i}] digest", 32),
        need_hex(name, f"pages[{i}] name", 32).hex(),
    )


def _open_root(keys: JournalKeys, data: bytes) -> Root:
    """Long: the root's checks in the order of the format, each a line or two: size,
    header, AEAD, JSON, the signer's certificate, the signature, the leaves, the shape."""
    if len(data) > MAX_ROOT_SIZE or len(data) < HEADER_SIZE + 4 + SIG_SIZE:
        raise FormatError("checkpoint root size out of bounds")
    signer = data[5:HEADER_SIZE]
    (box_len,) = struct.unpack_from(">I", data, HEADER_SIZE)
    end = HEADER_SIZE + 4 + box_len
    if len(data) != end + SIG_SIZE:
        raise FormatError(f"{len(data)} bytes where the header announces {end + SIG_SIZE}")
    box = crypto.open_box(
        keys.journal, data[HEADER_SIZE + 4 : end], CHECKPOINT_AD + data[:HEADER_SIZE]
    )
    plain = _inflate(box, MAX_ROOT_PLAIN, "checkpoint root")
    body = need_obj(_json(plain, "checkpoint root"), "checkpoint root", _ROOT_FIELDS)
    key, name, sig = need_tuple(body["signer"], "signer", 3)
    member = (
        need_hex(key, "signer key", 32),
        need_str(name, "signer name", MAX_SHORT),
        need_hex(sig, "signer certificate", SIG_SIZE),
    )
    if device_id(member[0]) != signer or not verify_device_add(
        keys.membership_public, DeviceAdd(signer, *member)
    ):
        raise IntegrityError("the signer's certificate does not verify")
    if not crypto.ed25519_verify(member[0], data[end:], CHECKPOINT_AD + b"\x00" + data[:end]):
        raise IntegrityError("signature does not verify")
    limit = need_int(body["limit"], "limit", MIN_LIMIT, MAX_LIMIT)
    leaves = tuple(_leaf(v, i) for i, v in enumerate(need_list(body["pages"], "pages", MAX_PAGES)))
    if sum(leaf.size for leaf in leaves) > MAX_TOTAL_PLAIN:
        raise FormatError("checkpoint pages add up to more than the size limit")
    if len({leaf.name for leaf in leaves if leaf.count}) != sum(1 for x in leaves if x.count):
        raise FormatError("two leaves name one page")
    _check_shape(leaves, limit)
    vector = {
        need_device(k): need_head(h, f"heads[{k}]")
        for k, h in need_map(body["heads"], "heads").items()
    }
    state_hash = crypto.sha256(canonical([leaf.to_json() for leaf in leaves]))
    return Root(signer, member, vector, limit, leaves, state_hash)


def open_root(keys: JournalKeys, data: bytes, *, provider: str | None = None) -> Root:
    """Open and verify a version 2 root; ``JournalError`` (naming the signer) if anything
    is wrong. Then fetch :attr:`Root.page_names` and call :func:`decode_pages`."""
    if len(data) < HEADER_SIZE or data[:4] != MAGIC or data[4] != VERSION:
        raise JournalError("not a version 2 journal checkpoint root", provider=provider)
    try:
        return _open_root(keys, data)
    except IntegrityError as exc:  # FormatError included
        raise JournalError(
            f"checkpoint refused: {exc.message}",
            device=data[5:HEADER_SIZE].hex(),
            provider=provider,
        ) from None


def _where(leaf: Leaf) -> str:
    return f"page {leaf.prefix or '(the only one)'}"


def _page_facts(keys: JournalKeys, leaf: Leaf, data: bytes | None) -> list[JSONValue]:
    where = f"{_where(leaf)} ({leaf.name[:16]})"
    if data is None:
        raise IntegrityError(f"{where} is missing")
    if len(data) > MAX_PAGE_SIZE or crypto.sha256(data).hex() != leaf.name:
        raise IntegrityError(f"{where} does not match its name (damaged or another page)")
    if data[: len(PAGE_HEADER)] != PAGE_HEADER:
        raise FormatError(f"{where} is not a version 2 checkpoint page")
    ad = PAGE_AD + PAGE_HEADER + leaf.prefix.encode()
    plain = _inflate(crypto.open_box(keys.journal, data[len(PAGE_HEADER) :], ad), leaf.size, where)
    if len(plain) != leaf.size or crypto.sha256(plain) != leaf.digest:
        raise IntegrityError(f"{where} does not hold what the root says")
    items = need_list(_json(plain, where), where, leaf.count)
    if len(items) != leaf.count:
        raise FormatError(f"{where} holds {len(items)} facts, the root says {leaf.count}")
    return items


def decode_pages(
    keys: JournalKeys,
    root: Root,
    pages: Mapping[str, bytes],
    *,
    provider: str | None = None,
) -> Checkpoint:
    """The checkpoint a verified root names, from its pages (by name; extra ones are
    ignored): each page is checked against its name and the root, each fact against its
    page's prefix and order, and the state as a whole as in version 1 (compacted, heads,
    every member and revocation, the signer a member not revoked)."""
    try:
        facts = Facts()
        for leaf in root.leaves:
            if not leaf.count:
                continue
            items = _page_facts(keys, leaf, pages.get(leaf.name))
            low, shift, last = _prefix_int(leaf.prefix), MAX_DEPTH - len(leaf.prefix), b""
            for i, item in enumerate(items):
                key = facts.add(item, f"{_where(leaf)} fact {i}")
                h = crypto.sha256(key)
                if h <= last or int.from_bytes(h[:8], "big") >> shift != low:
                    raise FormatError(f"{_where(leaf)} fact {i} is out of order or place")
                last = h
        state = facts.state()
        if compact(state) != state:
            raise FormatError("checkpoint state is not compacted")
        if heads(state) != dict(root.heads):
            raise IntegrityError("heads do not match the state")
        if state.members.get(root.signer) != root.member:
            raise IntegrityError("the signer's certificate is not the one in the state")
        check_membership(keys, state, root.signer)
    except IntegrityError as exc:  # FormatError included
        raise JournalError(
            f"checkpoint refused: {exc.message}", device=root.signer.hex(), provider=provider
        ) from None
    return Checkpoint(root.signer, state, root.state_hash)


def open_checkpoint(
    keys: JournalKeys,
    data: bytes,
    pages: Mapping[str, bytes] | None = None,
    *,
    provider: str | None = None,
) -> Checkpoint:
    """Either version: a whole version 1 checkpoint, or a version 2 root with its pages."""
    if len(data) > 4 and data[:4] == MAGIC and data[4] == 1:
        return decode_checkpoint(keys, data, provider=provider)
    root = open_root(keys, data, provider=provider)
    return decode_pages(keys, root, pages or {}, provider=provider)
