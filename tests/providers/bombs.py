"""Decompression bombs for the content-coding tests, and a child process that measures the
peak memory (VmHWM) one fetch adds."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

MiB = 1024 * 1024
INFLATED = 256 * MiB  # what the innermost layer inflates to


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


def _compress(chunks: int, make: Callable[[], _Compressor]) -> bytes:
    c = make()
    zero = bytes(MiB)
    return b"".join(c.compress(zero) for _ in range(chunks)) + c.flush()


@functools.cache
def bomb(codings: tuple[str, ...], size: int = INFLATED) -> bytes:
    """``size`` zero bytes coded with ``codings`` in the order given (header order)."""
    makers = {
        "gzip": lambda: zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16),
        "deflate": lambda: zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS),
        "raw-deflate": lambda: zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS),
    }
    data = _compress(size // MiB, makers[codings[0]])
    for coding in codings[1:]:
        c = makers[coding]()
        data = c.compress(data) + c.flush()
    return data


_CHILD = r"""
import asyncio, json, sys

def hwm() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")

mode, url, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "webfetch":
    from ownvault.providers.webfetch import Fetcher, FetchError, FetchLimits, NetworkPolicy

    async def go() -> dict:
        async with Fetcher(NetworkPolicy(allow_private=True), FetchLimits()) as f:
            try:
                got = await f.get(url, max_bytes=limit)
            except FetchError as exc:
                return {"error": type(exc).__name__, "status": exc.status, "message": exc.message}
            return {"size": got.size}
else:
    from ownvault.errors import OwnvaultError
    from ownvault.providers.ipfs.transport import HttpTransport

    async def go() -> dict:
        http = HttpTransport("hostile")
        try:
            status, body = await http.request("GET", url, limit=limit)
            return {"size": len(body)}
        except OwnvaultError as exc:
            return {"error": type(exc).__name__, "message": exc.message}
        finally:
            await http.aclose()

before = hwm()
result = asyncio.run(go())
result["peak_growth"] = hwm() - before
print(json.dumps(result))
"""


def fetch_in_child(mode: str, url: str, limit: int) -> dict[str, Any]:
    """Fetch ``url`` in a fresh process; its result and how much the fetch raised VmHWM."""
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, url, str(limit)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
