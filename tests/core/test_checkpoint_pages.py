"""Paged checkpoints (version 2): state -> root + pages -> state is the identity, a
checkpoint after a small change rewrites only the pages it touched, and a root or page
that is tampered, truncated, swapped, missing, forged or laid out otherwise than the
split rule says is refused; version 1 checkpoints stay readable."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ownvault.core import crypto
from ownvault.core.checkpoint import CHECKPOINT_AD, encode_checkpoint, still_valid
from ownvault.core.checkpointfacts import Facts
from ownvault.core.checkpointpages import (
    PAGE_AD,
    PAGE_HEADER,
    PAGE_LIMIT,
    decode_pages,
    encode_paged,
    open_checkpoint,
    open_root,
)
from ownvault.core.journal import DeviceKey, Record, revoke_device
from ownvault.core.journalops import (
    Forget,
    Grant,
    GrantRevoke,
    Pending,
    Publish,
    Put,
    Remove,
    Tag,
    Unpublish,
    Untag,
    canonical,
)
from ownvault.core.merge import EMPTY, State, compact, heads, live_versions, merge
from ownvault.errors import IntegrityError, JournalError
from tests.core.journal_sim import Device, device_key, devices, other_vault_keys, vault_keys
from tests.core.test_merge import Run, runs

KEYS = vault_keys()


def put(name: str, n: int = 0, rows: bytes = b"rows") -> Put:
    return Put(name, "file", n, f"bafy{n}", (n.to_bytes(16, "big"),), rows)


def every_kind_of_fact() -> tuple[Device, Device, Device]:
    """Three devices whose state holds every kind of fact (pending, grants, forget, ...)."""
    a, b, c = devices(3)
    a.commit([put("x", 1), Pending((bytes([9]) * 16,)), Tag("x", "t")], 1)
    b.absorb(a.records)
    dot = live_versions(b.state)["x"][0].dot
    tag = next(iter(b.state.tag_adds))
    b.commit([put("y", 2), Publish("x", "bafy1"), Grant(bytes(16), "x", "did:key:zB")], 2)
    pub, grant = (next(iter(b.state.pub_adds)), next(iter(b.state.grant_adds)))
    b.commit([Untag((tag,)), Unpublish((pub,)), GrantRevoke(bytes(16))], 3)
    b.commit([Forget((dot,)), put("z", 3), Remove((live_versions(b.state)["y"][0].dot,))], 4)
    assert grant.device == b.id
    c.commit([Tag("c", "c")], 5)
    for d in (a, b, c):
        d.absorb([*a.records, *b.records, *c.records])
    a.commit([revoke_device(KEYS, c.id, 1)], 6)
    b.absorb(a.records)
    return a, b, c


def round_trip(signer: DeviceKey, state: State, limit: int = PAGE_LIMIT) -> State:
    paged = encode_paged(KEYS, signer, state, limit=limit)
    assert set(paged.pages) == paged.opened.page_names
    checkpoint = open_checkpoint(KEYS, paged.root, paged.pages)
    assert checkpoint.signer == signer.id and checkpoint.state_hash == paged.opened.state_hash
    return checkpoint.state


@pytest.mark.parametrize("limit", [64, 300, 2000, PAGE_LIMIT])
def test_every_kind_of_fact_survives_a_paged_checkpoint(limit: int) -> None:
    a, b, _c = every_kind_of_fact()
    state = merge(b.state, a.records)
    assert state.pending and state.grant_adds and state.grant_revokes and state.forgotten
    assert state.untagged and state.unpublished and state.revoked
    assert round_trip(b.key, state, limit) == compact(state)


def _signer(run: Run, state: State) -> DeviceKey | None:
    for d in run.devices:
        if d.id in state.members and d.id not in state.revoked and d.id in heads(state):
            return d.key
    return None


@settings(max_examples=80, deadline=None)
@given(runs(), st.sampled_from([64, 200, 1000, PAGE_LIMIT]))
def test_state_to_pages_to_state_is_the_identity(
    case: tuple[Run, list[Record]], limit: int
) -> None:
    run, records = case
    state = merge(EMPTY, records)
    signer = _signer(run, state)
    assume(signer is not None)
    assert signer is not None
    assert round_trip(signer, state, limit) == compact(state)


@settings(max_examples=60, deadline=None)
@given(runs(), st.sampled_from([64, 200, 1000]))
def test_a_checkpoint_after_a_change_writes_only_the_pages_that_changed(
    case: tuple[Run, list[Record]], limit: int
) -> None:
    run, records = case
    state = merge(EMPTY, records)
    signer = _signer(run, state)
    assume(signer is not None)
    assert signer is not None
    first = encode_paged(KEYS, signer, state, limit=limit)
    d = next(d for d in run.devices if d.key == signer)
    d.absorb(records)
    d.commit([put("new", 7)], 10**6)
    second = encode_paged(KEYS, signer, d.state, first.opened, limit=limit)
    old = {(leaf.prefix, leaf.digest): leaf.name for leaf in first.opened.leaves}
    for leaf in second.opened.leaves:
        if leaf.count and (leaf.prefix, leaf.digest) in old:
            assert leaf.name == old[leaf.prefix, leaf.digest] and leaf.name not in second.pages
        elif leaf.count:
            assert leaf.name in second.pages
    stored = {**first.pages, **second.pages}  # what the providers hold now
    assert open_checkpoint(KEYS, second.root, stored).state == compact(d.state)
    stale = second.stale(first.opened)
    assert stale and not stale & second.opened.page_names  # the device's page changed at least
    kept = {n: p for n, p in stored.items() if n not in stale}  # old pages deleted
    assert open_checkpoint(KEYS, second.root, kept).state == compact(d.state)


def test_one_put_in_a_large_state_rewrites_two_pages_and_the_root() -> None:
    (a,) = devices(1)
    for i in range(400):
        a.commit([put(f"dir/file{i}", i, bytes(100))], 1 + i)
    before = encode_paged(KEYS, a.key, a.state, limit=4096)
    a.commit([put("dir/one-more", 999, bytes(100))], 10_000)
    after = encode_paged(KEYS, a.key, a.state, before.opened, limit=4096)
    assert len(before.opened.leaves) > 8
    assert 1 <= len(after.pages) <= 3  # the version's page, the device's page (a split: 3)
    assert after.written < before.written / 3


def test_version_1_checkpoints_stay_readable() -> None:
    a, b, _c = every_kind_of_fact()
    v1 = encode_checkpoint(KEYS, b.key, b.state)
    checkpoint = open_checkpoint(KEYS, v1)
    assert checkpoint.state == compact(b.state) == round_trip(b.key, b.state)
    assert still_valid(checkpoint, a.state)


# -- refused ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paged() -> tuple[State, bytes, dict[str, bytes], DeviceKey]:
    _a, b, _c = every_kind_of_fact()
    p = encode_paged(KEYS, b.key, b.state, limit=200)
    assert len(p.pages) >= 4
    return b.state, p.root, dict(p.pages), b.key


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_bit_flip_or_truncation_of_the_root_is_refused(
    paged: tuple[State, bytes, dict[str, bytes], DeviceKey], data: st.DataObject
) -> None:
    _state, root, pages, _key = paged
    i = data.draw(st.integers(0, len(root) - 1))
    bad = root[:i] + bytes((root[i] ^ (1 << data.draw(st.integers(0, 7))),)) + root[i + 1 :]
    with pytest.raises(JournalError):
        open_checkpoint(KEYS, bad, pages)
    with pytest.raises(JournalError):
        open_checkpoint(KEYS, root[: data.draw(st.integers(0, len(root) - 1))], pages)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_bit_flip_or_truncation_of_a_page_is_refused_naming_it(
    paged: tuple[State, bytes, dict[str, bytes], DeviceKey], data: st.DataObject
) -> None:
    _state, root, pages, _key = paged
    name = data.draw(st.sampled_from(sorted(pages)))
    page = pages[name]
    i = data.draw(st.integers(0, len(page) - 1))
    flipped = page[:i] + bytes((page[i] ^ (1 << data.draw(st.integers(0, 7))),)) + page[i + 1 :]
    cut = page[: data.draw(st.integers(0, len(page) - 1))]
    for bad in (flipped, cut):
        with pytest.raises(JournalError, match="does not match its name"):
            open_checkpoint(KEYS, root, {**pages, name: bad})


def test_a_missing_or_swapped_page_is_refused(
    paged: tuple[State, bytes, dict[str, bytes], DeviceKey],
) -> None:
    state, root, pages, key = paged
    first, second = sorted(pages)[:2]
    missing = {n: p for n, p in pages.items() if n != first}
    with pytest.raises(JournalError, match="is missing") as info:
        open_checkpoint(KEYS, root, missing, provider="nas")
    assert info.value.provider == "nas" and info.value.device == key.id.hex()
    swapped = {**pages, first: pages[second], second: pages[first]}
    with pytest.raises(JournalError, match="does not match its name"):
        open_checkpoint(KEYS, root, swapped)
    other = encode_paged(KEYS, key, state, limit=200)  # same state, sealed again
    assert not set(other.pages) & set(pages)
    with pytest.raises(JournalError, match="is missing"):
        open_checkpoint(KEYS, root, other.pages)  # another checkpoint's pages do not serve


def test_another_vaults_checkpoint_does_not_open(
    paged: tuple[State, bytes, dict[str, bytes], DeviceKey],
) -> None:
    _state, root, pages, _key = paged
    with pytest.raises(JournalError, match="checkpoint refused"):
        open_checkpoint(other_vault_keys(), root, pages)


def test_a_revoked_or_foreign_device_cannot_make_a_paged_checkpoint() -> None:
    a, _b, c = every_kind_of_fact()
    with pytest.raises(IntegrityError, match="revoked"):
        encode_paged(KEYS, c.key, a.state)
    with pytest.raises(IntegrityError, match="not a member"):
        encode_paged(KEYS, device_key(9), a.state)


# -- forged by a device of the vault: sealed and signed, but not what the format allows ------------


def _reroot(root: bytes, key: DeviceKey, **change: object) -> bytes:
    """``root`` with its plaintext changed, sealed and signed again by ``key`` (whose id
    the header then names)."""
    (n,) = struct.unpack_from(">I", root, 21)
    plain = json.loads(
        zlib.decompress(crypto.open_box(KEYS.journal, root[25 : 25 + n], CHECKPOINT_AD + root[:21]))
    )
    plain.update(change)
    header = root[:5] + key.id
    box = crypto.seal(KEYS.journal, zlib.compress(canonical(plain)), CHECKPOINT_AD + header)
    signed = header + struct.pack(">I", len(box)) + box
    return signed + crypto.ed25519_sign(key.seed, CHECKPOINT_AD + b"\x00" + signed)


def _repage(prefix: str, plain: bytes) -> tuple[list[object], bytes]:
    """A page of ``plain`` at ``prefix`` and its leaf entry."""
    ad = PAGE_AD + PAGE_HEADER + prefix.encode()
    page = PAGE_HEADER + crypto.seal(KEYS.journal, zlib.compress(plain), ad)
    name = crypto.sha256(page).hex()
    leaf = [prefix, len(json.loads(plain)), len(plain), crypto.sha256(plain).hex(), name]
    return leaf, page


def _one_page(key: DeviceKey, state: State, plain: bytes) -> tuple[bytes, dict[str, bytes]]:
    good = encode_paged(KEYS, key, state)
    leaf, page = _repage("", plain)
    return _reroot(good.root, key, pages=[leaf]), {str(leaf[4]): page}


def _facts(key: DeviceKey, state: State) -> list[object]:
    good = encode_paged(KEYS, key, state)
    (name,) = good.pages
    ad = PAGE_AD + PAGE_HEADER
    return json.loads(  # type: ignore[no-any-return]
        zlib.decompress(crypto.open_box(KEYS.journal, good.pages[name][5:], ad))
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: list(reversed(f)), "out of order"),
        (lambda f: [*f, f[-1]], "out of order"),
        (lambda f: [*f, ["d", "00" * 16, None, None, None, None, None]], "device with no facts"),
        (lambda f: [*f, ["z", 1]], "unknown kind"),
        (lambda f: [*f, ["v"]], "does not have 9 items"),
    ],
)
def test_a_forged_page_is_refused(edit: object, message: str) -> None:
    _a, b, _c = every_kind_of_fact()
    facts = edit(_facts(b.key, b.state))  # type: ignore[operator]
    root, pages = _one_page(b.key, b.state, canonical(facts))
    with pytest.raises(JournalError, match=message):
        open_checkpoint(KEYS, root, pages)


def test_a_page_not_in_canonical_json_is_refused() -> None:
    _a, b, _c = every_kind_of_fact()
    plain = canonical(_facts(b.key, b.state)).replace(b",", b", ", 1)
    root, pages = _one_page(b.key, b.state, plain)
    with pytest.raises(JournalError, match="canonical"):
        open_checkpoint(KEYS, root, pages)


def test_a_state_that_is_not_compacted_or_does_not_match_the_heads_is_refused() -> None:
    a, b, _c = every_kind_of_fact()
    facts = _facts(b.key, b.state)
    head = next(f for f in facts if f[0] == "d" and f[1] == a.id.hex())[2]  # type: ignore[index]
    applied = ["a", a.id.hex(), head]  # an applied record at the floor: not compacted
    root, pages = _one_page(b.key, b.state, canonical(sorted_facts([*facts, applied])))
    with pytest.raises(JournalError, match="not compacted"):
        open_checkpoint(KEYS, root, pages)
    good = encode_paged(KEYS, b.key, b.state)
    bad = _reroot(good.root, b.key, heads={})
    with pytest.raises(JournalError, match="heads do not match"):
        open_checkpoint(KEYS, bad, good.pages)


def sorted_facts(facts: list[object]) -> list[object]:
    acc = Facts()
    return sorted(facts, key=lambda f: crypto.sha256(acc.add(f, "f")))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pages", "message"),
    [
        (lambda ls: ls[:-1], "do not cover"),
        (lambda ls: [*ls, [ls[-1][0], 0, 0, None, None]], "after the trie is complete"),
        (lambda ls: [["", 1, 10, "00" * 32, "11" * 32]], "not what the root says|is missing"),
        (lambda ls: list(reversed(ls)), "out of place"),
        (lambda ls: [["0", 0, 0, None, None], ["1", 0, 0, None, None]], "under the limit"),
        (lambda ls: [[ls[0][0], 0, 1, None, None], *ls[1:]], "empty but names a page"),
        (lambda ls: [["2", *ls[0][1:]], *ls[1:]], "not a string of bits"),
    ],
)
def test_a_root_whose_pages_break_the_split_rule_is_refused(
    paged: tuple[State, bytes, dict[str, bytes], DeviceKey], pages: object, message: str
) -> None:
    _state, root, stored, key = paged
    leaves = _leaves(root)
    bad = _reroot(root, key, pages=pages(leaves))  # type: ignore[operator]
    with pytest.raises(JournalError, match=message):
        open_checkpoint(KEYS, bad, stored)


def test_a_page_that_should_have_been_split_is_refused() -> None:
    _a, b, _c = every_kind_of_fact()
    good = encode_paged(KEYS, b.key, b.state, limit=PAGE_LIMIT)
    bad = _reroot(good.root, b.key, limit=64)
    with pytest.raises(JournalError, match="should have been split"):
        open_root(KEYS, bad)


def test_a_root_with_a_forged_signer_certificate_is_refused() -> None:
    _a, b, _c = every_kind_of_fact()
    good = encode_paged(KEYS, b.key, b.state)
    outsider = device_key(9)
    forged = _reroot(good.root, outsider, signer=[outsider.public.hex(), "x", "00" * 64])
    with pytest.raises(JournalError, match="certificate does not verify"):
        open_root(KEYS, forged)
    borrowed = _reroot(good.root, outsider)  # b's certificate, the outsider's signature
    with pytest.raises(JournalError, match="certificate does not verify"):
        open_root(KEYS, borrowed)
    with pytest.raises(JournalError, match="signature does not verify"):
        open_root(KEYS, good.root[:-1] + bytes((good.root[-1] ^ 1,)))
    root = open_root(KEYS, good.root)
    assert decode_pages(KEYS, root, good.pages).state == compact(b.state)


def _leaves(root: bytes) -> list[list[object]]:
    (n,) = struct.unpack_from(">I", root, 21)
    box = crypto.open_box(KEYS.journal, root[25 : 25 + n], CHECKPOINT_AD + root[:21])
    return json.loads(zlib.decompress(box))["pages"]  # type: ignore[no-any-return]


def test_a_fact_in_another_page_than_its_hash_says_is_refused(
    paged: tuple[State, bytes, dict[str, bytes], DeviceKey],
) -> None:
    _state, root, stored, key = paged
    leaves = _leaves(root)
    single = [i for i, leaf in enumerate(leaves) if leaf[1] == 1]
    src, dst = single[0], single[1]
    ad = PAGE_AD + PAGE_HEADER + str(leaves[src][0]).encode()
    plain = zlib.decompress(crypto.open_box(KEYS.journal, stored[str(leaves[src][4])][5:], ad))
    leaf, page = _repage(str(leaves[dst][0]), plain)  # src's fact under dst's prefix
    leaves[dst] = leaf
    bad = _reroot(root, key, pages=leaves)
    with pytest.raises(JournalError, match="out of order or place"):
        open_checkpoint(KEYS, bad, {**stored, str(leaf[4]): page})


def test_a_page_that_inflates_past_what_the_root_says_is_refused(
    paged: tuple[State, bytes, dict[str, bytes], DeviceKey],
) -> None:
    _state, root, stored, key = paged
    leaves = _leaves(root)
    i = next(i for i, leaf in enumerate(leaves) if leaf[1])
    prefix = str(leaves[i][0])
    bomb = b"[" + b" " * (64 * 1024 * 1024) + b"]"  # 64 MiB that compress to 64 KiB
    page = PAGE_HEADER + crypto.seal(
        KEYS.journal, zlib.compress(bomb, 9), PAGE_AD + PAGE_HEADER + prefix.encode()
    )
    name = crypto.sha256(page).hex()
    leaves[i] = [prefix, leaves[i][1], leaves[i][2], leaves[i][3], name]
    bad = _reroot(root, key, pages=leaves)
    with pytest.raises(JournalError, match="over its size limit"):
        open_checkpoint(KEYS, bad, {**stored, name: page})


def _edit_version(edit: object) -> list[object]:
    _a, b, _c = every_kind_of_fact()
    facts = _facts(b.key, b.state)
    i = next(i for i, f in enumerate(facts) if f[0] == "v")  # type: ignore[index]
    facts[i] = edit(list(facts[i]))  # type: ignore[operator, call-overload]
    return facts


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda v: [*v[:8], ["AB" * 16], v[9]], "packs"),
        (lambda v: [*v[:8], [v[8][0][:30] + " 0"], v[9]], "packs"),
        (lambda v: [*v[:8], [v[8][0], v[8][0]], v[9]], "packs"),
        (lambda v: [v[0], [v[1][0], True, v[1][2]], *v[2:]], "seq"),
        (lambda v: [v[0], [v[1][0], 0, v[1][2]], *v[2:]], "seq"),
        (lambda v: [v[0], [v[1][0].upper(), *v[1][1:]], *v[2:]], "device"),
        (lambda v: [*v[:6], -1, *v[7:]], "size"),
        (lambda v: [*v[:6], True, *v[7:]], "size"),
        (lambda v: [*v[:5], "link", *v[6:]], "kind"),
        (lambda v: [*v[:9], v[9] + "="], "base64"),
    ],
)
def test_a_version_fact_is_decoded_as_strictly_as_in_version_1(edit: object, message: str) -> None:
    _a, b, _c = every_kind_of_fact()
    root, pages = _one_page(b.key, b.state, canonical(_edit_version(edit)))  # checked first
    with pytest.raises(JournalError, match=message):
        open_checkpoint(KEYS, root, pages)
