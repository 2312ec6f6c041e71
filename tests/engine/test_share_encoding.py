"""ShareStore's encoding with reused buffers gives the shares of the plain definition."""

from __future__ import annotations

import os

from ownvault.core.erasure import ErasureCode
from ownvault.core.pack import MIN_PACK_SIZE, ShareHeader, build_share
from ownvault.engine.store.shares import ShareStore


def test_shares_of_packs_encoded_with_reused_parity_buffers_are_the_plain_ones() -> None:
    """ShareStore reuses parity buffers across packs (a large pack, then smaller ones):
    every share equals the one built from fresh ``ErasureCode.encode`` fragments."""
    store = ShareStore({}, {})
    code = ErasureCode(3, 6)
    for size in (MIN_PACK_SIZE * 8, MIN_PACK_SIZE, MIN_PACK_SIZE * 2, MIN_PACK_SIZE * 8):
        pack_id, data = os.urandom(16), os.urandom(size)
        encoded = store.encode_sync(pack_id, data, 3, 6)
        plain = [
            build_share(ShareHeader(3, 6, i, pack_id), f)[0]
            for i, f in enumerate(code.encode(data))
        ]
        assert list(encoded.shares) == plain
        assert [b"".join(s.parts) for s in encoded.pieces] == plain
        assert [len(s) for s in encoded.pieces] == [len(s) for s in plain]
        store.release(encoded)


def test_parity_buffers_are_reused_only_after_release() -> None:
    """A pack's shares are parts that view its parity buffers until they are written: an
    encode before ``release`` must not write into them, one after it does reuse them."""
    store = ShareStore({}, {})
    first_id, first = os.urandom(16), os.urandom(MIN_PACK_SIZE * 2)
    a = store.encode_sync(first_id, first, 3, 6)
    expected = [b"".join(s.parts) for s in a.pieces]
    b = store.encode_sync(os.urandom(16), os.urandom(MIN_PACK_SIZE * 2), 3, 6)
    assert [b"".join(s.parts) for s in a.pieces] == expected  # untouched by the second
    assert all(x is not y for x in a.parity for y in b.parity)
    store.release(a)
    c = store.encode_sync(os.urandom(16), os.urandom(MIN_PACK_SIZE * 2), 3, 6)
    assert c.parity is a.parity  # the set given back is the one reused
