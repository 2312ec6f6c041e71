"""mfusepy, bound to libfuse 3 whenever the system has it.

mfusepy looks for ``find_library("fuse")`` first, so on a system with both libfuse 2 and 3
installed (Debian installs libfuse2 with several packages) it binds libfuse 2. Through
libfuse 2 the kernel sends the mount's writes in 4 KiB requests (no ``big_writes``): a
512 MiB ``cp`` into the mount made 131,000 write calls and took 10.2 s against 2.9 s for
``ownvault put`` of the same bytes. Through libfuse 3 (writes of up to 1 MiB) the same
``cp`` made 1,459 calls and took 6.3 s. So the soname ``libfuse3.so.3`` is tried first;
a user's own ``FUSE_LIBRARY_PATH`` or ``FUSE_LIBRARY_NAME`` still wins, and a system with
only libfuse 2 keeps working through it.

Every module that needs mfusepy imports it from here, so the choice is made before its
first import.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["LIBFUSE3", "mfusepy"]

LIBFUSE3 = "libfuse3.so.3"


def _prefer_libfuse3() -> None:
    if os.environ.get("FUSE_LIBRARY_PATH") or os.environ.get("FUSE_LIBRARY_NAME"):
        return
    try:
        ctypes.CDLL(LIBFUSE3)
    except OSError:
        return  # no libfuse 3: mfusepy finds what there is
    os.environ["FUSE_LIBRARY_PATH"] = LIBFUSE3


_prefer_libfuse3()

import mfusepy  # noqa: E402  (after the library is chosen: mfusepy loads it on import)
