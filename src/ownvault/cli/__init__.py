"""The ``ownvault`` command line. Thin: parse -> engine -> render.

Errors are mapped to exit codes in exactly one place (:func:`main`), via
:func:`ownvault.errors.exit_code_for`. Command groups live in sibling modules and are
registered in :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import sys

from ownvault.cli.app import cli, run_cli

__all__ = ["cli", "main"]

COMMAND_MODULES = [
    "ownvault.cli.files",
    "ownvault.cli.admin",
    "ownvault.cli.ipfs",
    "ownvault.cli.node",
    "ownvault.cli.publish",
    "ownvault.cli.nft",
]

for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def _bound_malloc() -> None:
    """Keep big buffers (packs, shares) out of glibc's arenas.

    glibc raises its mmap threshold each time a large mmapped block is freed, after which
    16 MiB pack buffers come from per-thread arenas and stay resident when freed: a 1 GiB
    put peaked at ~600 MB RSS. A fixed 1 MiB threshold returns them to the kernel on free
    (measured: ~250 MB). Only on glibc; elsewhere nothing happens.
    """
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        if not name:
            return
        libc = ctypes.CDLL(name)
        m_mmap_threshold = -3
        libc.mallopt(m_mmap_threshold, 1024 * 1024)
    except (OSError, AttributeError):
        return


def main(argv: list[str] | None = None) -> None:
    _bound_malloc()
    sys.exit(run_cli(argv))
