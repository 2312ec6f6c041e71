"""When a profile runs next, and when it is late. Pure arithmetic on times (no clock).

A profile's runs fall on a grid: ``created_at + offset + k * every``. The ``offset`` is
its jitter: a fraction (:data:`JITTER_FRACTION`) of the interval, at most
:data:`MAX_JITTER`, drawn from a hash of the vault id and the profile name, so it is the
same on every start of the daemon (no thundering herd after a reboot, no drift) yet
different for two profiles or two vaults. The next run is the first grid point at least
half an interval after the last start (a manual ``backup run`` does not cause a second run
minutes later); a grid point in the past (the machine slept) makes the profile due now.
A profile is *overdue* when no run started for two intervals plus :data:`MAX_JITTER`
(since it was made, if it never ran): it missed a whole run. ``catalog.backups.overdue``
asks the same in SQL, for ``status``.
"""

from __future__ import annotations

import hashlib
import math

from ownvault.engine.store.catalog.backups import OVERDUE_SLACK

__all__ = ["JITTER_FRACTION", "MAX_JITTER", "jitter_offset", "next_due", "overdue"]

JITTER_FRACTION = 0.1
MAX_JITTER = OVERDUE_SLACK


def jitter_offset(seed: str, name: str, every: float) -> float:
    """This profile's fixed delay after each grid point, in ``[0, min(every/10, 15 min))``."""
    digest = hashlib.blake2b(f"{seed}\0{name}".encode(), digest_size=8).digest()
    unit = int.from_bytes(digest, "big") / 2**64
    return unit * min(every * JITTER_FRACTION, MAX_JITTER)


def next_due(created_at: float, every: float, offset: float, last_start: float | None) -> float:
    """The time the profile should next start (see the module docstring)."""
    anchor = created_at + offset
    if last_start is None:
        return anchor
    earliest = last_start + every / 2
    k = max(0, math.ceil((earliest - anchor) / every))
    return anchor + k * every


def overdue(created_at: float, every: float, last_start: float | None, now: float) -> bool:
    """No run started for two intervals and the jitter bound (see the module docstring)."""
    base = created_at if last_start is None else last_start
    return now > base + 2 * every + MAX_JITTER
