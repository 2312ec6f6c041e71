"""Reed-Solomon erasure coding: the only module that imports the erasure library.

``pyeclib`` with the Intel ISA-L Cauchy backend (``isa_l_rs_cauchy``), bundled in the
pyeclib wheel. Chosen over zfec and over ISA-L's Vandermonde matrix by measurement on this
machine (docs/design.md, "Dependencies"): Cauchy matrices are MDS for every k, m (any k of
the n fragments decode), which ISA-L's Vandermonde construction does not guarantee for all
parameters, and it was the fastest encoder measured.

A fragment is liberasurecode's self-describing fragment (an 80-byte header with the
fragment index, original size and checksum fields, then the payload); ownvault stores it
whole inside a share (see ``core.pack``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyeclib.ec_iface import ECDriver

from ownvault.errors import FormatError, UsageError

__all__ = ["ERASURE_BACKEND", "ErasureCode"]

ERASURE_BACKEND = "isa_l_rs_cauchy"
MAX_N = 32


@dataclass(frozen=True)
class ErasureCode:
    """k-of-n: any k of the n fragments rebuild the data."""

    k: int
    n: int
    _driver: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (1 <= self.k < self.n <= MAX_N):
            raise UsageError(
                f"erasure code needs 1 <= k < n <= {MAX_N} (got k={self.k}, n={self.n})"
            )
        object.__setattr__(
            self, "_driver", ECDriver(k=self.k, m=self.n - self.k, ec_type=ERASURE_BACKEND)
        )

    def encode(self, data: bytes) -> list[bytes]:
        """The n fragments of ``data`` (index i at position i)."""
        frags = self._driver.encode(data)
        return [bytes(f) for f in frags]

    def decode(self, fragments: Mapping[int, bytes]) -> bytes:
        """Rebuild the data from at least k fragments (keyed by their index)."""
        if len(fragments) < self.k:
            raise UsageError(f"need {self.k} fragments, have {len(fragments)}")
        chosen = [fragments[i] for i in sorted(fragments)[: self.k]]
        try:
            return bytes(self._driver.decode(chosen))
        except Exception as exc:  # pyeclib raises its own exception types
            raise FormatError(f"erasure decoding failed: {exc}") from None
