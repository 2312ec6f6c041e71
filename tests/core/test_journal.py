"""Journal records and checkpoints: format, keys, and every way a hostile provider (or a
revoked device) can serve bad records: tampering, truncation, renaming, replay, forks,
reordering, gaps, rollback."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.core import crypto
from ownvault.core.checkpoint import decode_checkpoint, encode_checkpoint, state_json
from ownvault.core.journal import (
    GENESIS,
    HEADER_SIZE,
    RECORD_AD,
    ChainHead,
    JournalKeys,
    certify_device,
    device_id,
    encode_record,
    open_record,
    parse_header,
    revoke_device,
    unique_records,
    verify_chain,
)
from ownvault.core.journalops import (
    Body,
    Hlc,
    Pending,
    Put,
    Remove,
    Tag,
    canonical,
    decode_body,
    encode_body,
)
from ownvault.core.keys import VaultKeys
from ownvault.core.merge import EMPTY, compact, live_versions, membership, merge
from ownvault.errors import FormatError, IntegrityError, JournalError
from tests.core.journal_sim import Device, device_key, devices, other_vault_keys, vault_keys

PACK = bytes(range(16))


def put(name: str, pack: bytes = PACK) -> Put:
    return Put(name, "file", 3, None, (pack,), b"rows")


def chain(n: int = 3) -> tuple[Device, list[bytes]]:
    (a,) = devices(1)
    for i in range(n):
        a.commit([put(f"f{i}")], 1000 + i)
    return a, a.raws


def opened(raws: list[bytes]) -> list:  # type: ignore[type-arg]
    members: dict[bytes, bytes] = {}
    out = []
    for raw in raws:
        r = open_record(vault_keys(), raw, members=members, revoked={})
        members[r.device] = (
            device_key(0).public if r.device == device_key(0).id else members[r.device]
        )
        out.append(r)
    return out


# -- keys and the format -------------------------------------------------------------------------


def test_journal_keys_are_hkdf_of_the_root_with_their_own_labels() -> None:
    vk = VaultKeys(bytes(32))
    keys = JournalKeys.of(vk)
    assert keys.journal == crypto.hkdf(vk.root, b"ownvault/v1/key/journal")
    assert keys.membership == crypto.hkdf(vk.root, b"ownvault/v1/key/devices")
    assert keys.journal not in (vk.catalog, vk.signing, vk.content)
    assert keys.membership_public != vk.signing_public


def test_device_id_is_the_hash_of_its_key() -> None:
    key = device_key(0)
    assert key.id == crypto.sha256(b"ownvault/v1/device-id" + key.public)[:16]
    assert device_id(key.public) == key.id


def test_record_layout_is_header_box_signature() -> None:
    a, raws = chain(2)
    raw = raws[1]
    device, seq, prev = parse_header(raw)
    assert raw[:5] == b"OVJR\x01" and device == a.id and seq == 2
    assert prev == crypto.sha256(raws[0])
    (box_len,) = struct.unpack_from(">I", raw, HEADER_SIZE)
    assert len(raw) == HEADER_SIZE + 4 + box_len + 64
    signed = raw[: HEADER_SIZE + 4 + box_len]
    assert crypto.ed25519_verify(a.key.public, raw[-64:], RECORD_AD + b"\x00" + signed)
    body = crypto.open_box(
        vault_keys().journal, raw[HEADER_SIZE + 4 : -64], RECORD_AD + raw[:HEADER_SIZE]
    )
    assert json.loads(body)["ops"][0]["op"] == "put"
    assert canonical(json.loads(body)) == body


def test_records_round_trip_and_chain() -> None:
    a, raws = chain(3)
    records = opened(raws)
    assert [r.seq for r in records] == [1, 2, 3]
    assert verify_chain(records, device=a.id) == a.head
    assert records[0].ops[0] == certify_device(vault_keys(), a.key.public, a.name)
    assert records[2].ops == (put("f2"),)


def test_a_records_clock_must_advance() -> None:
    a, _ = chain(1)
    with pytest.raises(JournalError, match="clock must be later"):
        encode_record(vault_keys(), a.key, a.head, Body(a.head.hlc, (put("x"),), ()))


# -- hostile bytes ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_bit_flip_anywhere_in_a_record_is_refused(data: st.DataObject) -> None:
    a, raws = chain(2)
    members = {a.id: a.key.public}
    for raw in raws:
        i = data.draw(st.integers(0, len(raw) - 1))
        bit = data.draw(st.integers(0, 7))
        bad = raw[:i] + bytes((raw[i] ^ (1 << bit),)) + raw[i + 1 :]
        with pytest.raises(JournalError):
            open_record(vault_keys(), bad, members=members, revoked={})
        with pytest.raises(JournalError):  # a device not yet known: its certificate is checked
            open_record(vault_keys(), bad, members={}, revoked={})


def test_every_truncation_of_a_record_is_refused_naming_device_and_seq() -> None:
    a, raws = chain(2)
    raw = raws[1]
    for n in range(len(raw)):
        with pytest.raises(JournalError) as err:
            open_record(
                vault_keys(), raw[:n], members={a.id: a.key.public}, revoked={}, device=a.id, seq=2
            )
        assert err.value.device == a.id.hex() and err.value.seq == 2
    with pytest.raises(JournalError, match="header announces"):
        open_record(vault_keys(), raw + b"\x00", members={a.id: a.key.public}, revoked={})


def test_a_record_under_another_name_is_refused() -> None:
    a, raws = chain(2)
    with pytest.raises(JournalError, match="stored under another") as err:
        open_record(
            vault_keys(), raws[0], members={a.id: a.key.public}, revoked={}, device=a.id, seq=2
        )
    assert err.value.seq == 1
    with pytest.raises(JournalError, match="stored under another"):
        open_record(vault_keys(), raws[0], members={}, revoked={}, device=device_key(1).id)


def test_another_vaults_record_does_not_open() -> None:
    a = Device(device_key(0), "a")
    raw, _ = encode_record(
        other_vault_keys(),
        a.key,
        GENESIS,
        Body(Hlc(1, 0), (certify_device(other_vault_keys(), a.key.public, "a"),), ()),
    )
    with pytest.raises(JournalError, match="authentication failed"):
        open_record(vault_keys(), raw, members={}, revoked={})


def test_a_device_without_a_certificate_of_this_vault_is_refused() -> None:
    key = device_key(5)
    forged = certify_device(other_vault_keys(), key.public, "intruder")  # signed by another vault
    raw, _ = encode_record(vault_keys(), key, GENESIS, Body(Hlc(1, 0), (forged, put("x")), ()))
    with pytest.raises(JournalError, match="certificate does not verify"):
        open_record(vault_keys(), raw, members={}, revoked={})
    raw, _ = encode_record(vault_keys(), key, GENESIS, Body(Hlc(1, 0), (put("x"),), ()))
    with pytest.raises(JournalError, match="without its own certificate"):
        open_record(vault_keys(), raw, members={}, revoked={})


def test_a_record_signed_by_another_device_is_refused() -> None:
    a, raws = chain(2)
    b = device_key(1)
    with pytest.raises(JournalError, match="signature does not verify"):
        open_record(vault_keys(), raws[1], members={a.id: b.public}, revoked={})


# -- chains: replay, fork, reorder, gap, rollback --------------------------------------------


def test_reordered_records_are_refused() -> None:
    a, raws = chain(3)
    r = opened(raws)
    with pytest.raises(JournalError, match="out of order") as err:
        verify_chain([r[0], r[2], r[1]], device=a.id, provider="p1")
    assert (err.value.device, err.value.seq, err.value.provider) == (a.id.hex(), 3, "p1")


def test_a_gap_in_the_chain_is_refused() -> None:
    a, raws = chain(3)
    r = opened(raws)
    with pytest.raises(JournalError, match="expected seq 2"):
        verify_chain([r[0], r[2]], device=a.id)


def test_a_replayed_record_is_refused() -> None:
    a, raws = chain(2)
    r = opened(raws)
    with pytest.raises(JournalError, match="expected seq 3"):
        verify_chain([r[0], r[1], r[1]], device=a.id)
    with pytest.raises(JournalError, match="expected seq 2"):
        verify_chain([r[0]], device=a.id, after=r[0].head)


def test_a_fork_is_refused_everywhere() -> None:
    """The device's key signs two different records with seq 2 (a clone of its state)."""
    a, raws = chain(2)
    clone = Device(a.key, a.name, head=opened(raws)[0].head)
    clone.commit([put("other")], 5000)
    r = opened(raws)
    fork = open_record(vault_keys(), clone.raws[0], members={a.id: a.key.public}, revoked={})
    assert fork.seq == 2 and fork.hash != r[1].hash
    with pytest.raises(JournalError, match="fork") as err:
        unique_records([*r, fork])
    assert (err.value.device, err.value.seq) == (a.id.hex(), 2)
    with pytest.raises(JournalError, match="fork"):
        verify_chain([r[0], fork], device=a.id, known=r[1].head)
    with pytest.raises(JournalError, match="fork"):
        merge(merge(EMPTY, r), [fork])
    assert unique_records([*r, r[1]])[(a.id, 2)] == r[1]  # the same record twice is no fork


def test_a_rolled_back_or_withheld_tail_is_detected() -> None:
    a, raws = chain(4)
    r = opened(raws)
    with pytest.raises(JournalError, match="rollback") as err:
        verify_chain(r[:2], device=a.id, known=a.head, provider="p2")
    assert (err.value.seq, err.value.provider) == (4, "p2")
    seen_elsewhere = ChainHead(3, b"", Hlc(0, 0))  # another device's seen vector: seq only
    with pytest.raises(JournalError, match="rollback"):
        verify_chain(r[:2], device=a.id, known=seen_elsewhere)
    assert verify_chain(r, device=a.id, known=seen_elsewhere) == a.head


def test_a_revoked_devices_later_records_are_refused_and_its_earlier_kept() -> None:
    a, b = devices(2)
    a.commit([put("a1")], 1)
    b.commit([put("b1")], 1)
    b.commit([put("b2")], 2)
    late = b.commit([put("b3")], 3)
    a.receive(b.raws[:2])
    a.commit([revoke_device(vault_keys(), b.id, 2)], 4)
    members, revoked = membership(a.state)
    assert revoked == {b.id: 2}
    with pytest.raises(JournalError, match="revoked after seq 2") as err:
        open_record(vault_keys(), b.raws[2], members=members, revoked=revoked)
    assert (err.value.device, err.value.seq) == (b.id.hex(), 3)
    # A replica that merged b3 before it learnt of the revocation drops it too.
    c = Device(device_key(2), "c")
    c.receive(b.raws)
    assert "b3" in live_versions(c.state)
    c.absorb([late])
    c.receive(a.raws)
    assert sorted(live_versions(c.state)) == ["a1", "b1", "b2"]


def test_a_forged_revocation_is_refused() -> None:
    a, b = devices(2)
    forged = revoke_device(other_vault_keys(), b.id, 0)
    with pytest.raises(JournalError, match="revocation does not verify"):
        raw, _ = encode_record(
            vault_keys(),
            a.key,
            GENESIS,
            Body(Hlc(1, 0), (certify_device(vault_keys(), a.key.public, "a"), forged), ()),
        )
        open_record(vault_keys(), raw, members={}, revoked={})


# -- the clock -----------------------------------------------------------------------------------


def test_the_hybrid_clock_never_goes_back() -> None:
    t = Hlc(1000, 0)
    assert t.tick(2000) == Hlc(2000, 0)
    assert t.tick(1000) == Hlc(1000, 1)
    assert t.tick(10) == Hlc(1000, 1)  # the wall clock stepped back
    assert t.witness(Hlc(5000, 3)).tick(4000) == Hlc(5000, 4)


def test_two_devices_committing_in_the_same_millisecond_both_keep_their_version() -> None:
    a, b = devices(2)
    ra = a.commit([put("doc")], 1_700_000_000_000)
    rb = b.commit([put("doc")], 1_700_000_000_000)
    assert ra.hlc == rb.hlc
    a.absorb([rb])
    b.absorb([ra])
    assert a.state == b.state
    versions = live_versions(a.state)["doc"]
    assert [v.dot.device for v in versions] == sorted([a.id, b.id])


# -- the body decoder ----------------------------------------------------------------------------


def _body(**change: object) -> bytes:
    value: dict[str, object] = {
        "hlc": [1, 0],
        "ops": [{"op": "tag", "name": "n", "tag": "t"}],
        "seen": {},
    }
    value.update(change)
    return canonical(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_body().replace(b'"seen"', b' "seen"'), "canonical"),
        (_body(hlc=[1.0, 0]), "hlc wall_ms"),
        (_body(hlc=[True, 0]), "hlc wall_ms"),
        (_body(ops=[]), "1 to 10000 operations"),
        (_body(ops=[{"op": "nope"}]), "unknown operation"),
        (_body(ops=[{"op": "tag", "name": "n"}]), "missing \\['tag'\\]"),
        (_body(ops=[{"op": "tag", "name": "", "tag": "t"}]), "empty"),
        (_body(ops=[{"op": "rm", "versions": []}]), "empty, unsorted"),
        (_body(ops=[{"op": "pending", "packs": ["AB" * 16]}]), "lowercase hex"),
        (_body(seen={"00" * 16: -1}), "seen"),
        (_body(extra=1), "unknown \\['extra'\\]"),
        (b"[" * 5000 + b"]" * 5000, "not JSON|not an object"),
        (
            _body(
                ops=[
                    {
                        "op": "put",
                        "name": "n",
                        "kind": "file",
                        "size": 1,
                        "cid": None,
                        "packs": [],
                        "rows": "AB==",
                    }
                ]
            ),
            "canonical base64",
        ),
    ],
)
def test_body_decoder_refuses_with_a_named_fault(text: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode_body(text)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(
                Tag,
                st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s),
                st.just("t"),
            ),
            st.builds(
                Pending,
                st.lists(st.binary(min_size=16, max_size=16), unique=True).map(
                    lambda p: tuple(sorted(p))
                ),
            ),
            st.builds(
                Put,
                st.just("name"),
                st.sampled_from(["file", "tree"]),
                st.integers(0, 2**64 - 1),
                st.none() | st.just("bafy"),
                st.just(()),
                st.binary(max_size=50),
            ),
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(0, 2**64 - 1),
)
def test_bodies_round_trip_canonically(ops: list, wall: int) -> None:  # type: ignore[type-arg]
    body = Body(Hlc(wall, 0), tuple(ops), ())
    text = encode_body(body)
    assert decode_body(text) == body
    assert canonical(json.loads(text)) == text


def test_surrogates_in_a_name_are_a_format_error() -> None:
    with pytest.raises(FormatError, match="UTF-8"):
        decode_body(
            _body(ops=[{"op": "tag", "name": "XX", "tag": "t"}]).replace(b'"XX"', b'"\\ud800"')
        )
    with pytest.raises(FormatError, match="UTF-8"):
        encode_body(Body(Hlc(1, 0), (Tag("\ud800", "t"),), ()))


# -- checkpoints ---------------------------------------------------------------------------------


def three_devices_with_history() -> list[Device]:
    a, b, c = devices(3)
    a.commit([put("x", bytes(16))], 1)
    b.receive(a.raws)
    b.commit([put("x", bytes([1]) * 16), Tag("x", "work")], 2)
    a.receive(b.raws)
    x = live_versions(a.state)["x"]
    a.commit([Remove((x[0].dot,))], 3)
    c.receive(a.raws[:1])
    c.commit([put("y", bytes([2]) * 16)], 4)
    for d in (a, b, c):
        for e in (a, b, c):
            if d is not e:
                d.absorb(opened_all(e))
    return [a, b, c]


def opened_all(d: Device) -> list:  # type: ignore[type-arg]
    members: dict[bytes, bytes] = {}
    out = []
    for raw in d.raws:
        r = open_record(vault_keys(), raw, members=members, revoked={})
        members[r.device] = d.key.public
        out.append(r)
    return out


def test_a_checkpoint_plus_the_records_after_it_rebuilds_the_state() -> None:
    a, b, c = three_devices_with_history()
    data = encode_checkpoint(vault_keys(), a.key, a.state)
    cp = decode_checkpoint(vault_keys(), data)
    assert cp.signer == a.id and cp.state == compact(a.state)
    assert cp.state_hash == crypto.sha256(canonical(state_json(cp.state)))
    assert live_versions(cp.state) == live_versions(a.state)
    b.commit([Tag("y", "later")], 10)
    recovered = merge(cp.state, opened_all(a) + opened_all(b) + opened_all(c))  # old ones skipped
    b.absorb(opened_all(a) + opened_all(c))
    assert live_versions(recovered) == live_versions(b.state)
    assert recovered.floor == cp.state.floor


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_tampered_or_truncated_checkpoint_is_refused(data: st.DataObject) -> None:
    a, _b, _c = three_devices_with_history()
    good = encode_checkpoint(vault_keys(), a.key, a.state)
    i = data.draw(st.integers(0, len(good) - 1))
    bad = good[:i] + bytes((good[i] ^ (1 << data.draw(st.integers(0, 7))),)) + good[i + 1 :]
    with pytest.raises(JournalError):
        decode_checkpoint(vault_keys(), bad)
    with pytest.raises(JournalError):
        decode_checkpoint(vault_keys(), good[: data.draw(st.integers(0, len(good) - 1))])


def test_a_revoked_device_cannot_make_a_checkpoint() -> None:
    a, b, _c = three_devices_with_history()
    a.commit([revoke_device(vault_keys(), b.id, 1)], 20)
    with pytest.raises(IntegrityError, match="revoked"):
        encode_checkpoint(vault_keys(), b.key, a.state)
    outsider = device_key(9)
    with pytest.raises(IntegrityError, match="not a member"):
        encode_checkpoint(vault_keys(), outsider, a.state)
