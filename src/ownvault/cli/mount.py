"""``ownvault mount MOUNTPOINT``: the vault as a folder (FUSE), until unmounted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.session import open_vault
from ownvault.core.keys import VaultKeys
from ownvault.engine.files.drive import Drive, DriveOptions
from ownvault.engine.sharing.reader import open_grant
from ownvault.errors import UsageError

__all__ = ["mount_cmd", "mount_grant_dir"]


def _mountpoint(mountpoint: str) -> Path:
    where = Path(mountpoint).absolute()
    if not where.is_dir():
        raise UsageError(f"{mountpoint} is not a directory")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        raise UsageError("FUSE is not available here (/dev/fuse): install fuse3")
    return where


@cli.command("mount")
@common
@click.argument("mountpoint", type=click.Path(file_okay=False))
@click.option("--read-only", is_flag=True, help="Refuse every change through the mount.")
@click.option(
    "--cache-mib",
    type=click.IntRange(1, 65536),
    default=DriveOptions().cache_mib,
    show_default=True,
    help="Decoded packs kept in memory for reads.",
)
@click.option(
    "--spool-mib",
    type=click.IntRange(1, 1 << 24),
    default=DriveOptions().spool_mib,
    show_default=True,
    help="Bytes of files being written at once (spooled in VAULT/spool, mode 0600).",
)
def mount_cmd(mountpoint: str, read_only: bool, cache_mib: int, spool_mib: int) -> None:
    """Show the vault as folders at MOUNTPOINT (FUSE) until unmounted.

    Each stored name is a path, at its latest version; MOUNTPOINT/.versions/NAME/N is
    version N, read-only. A file written through the mount is stored as a new version
    when it is closed. Unmount with `fusermount3 -u MOUNTPOINT` or Ctrl-C. Prints one
    JSON line {"mounted": MOUNTPOINT} on stdout once the mount is ready.
    """
    ctx = get_ctx()
    where = _mountpoint(mountpoint)
    try:
        from ownvault.server.fuse import Loop, mount
    except OSError as exc:  # mfusepy loads libfuse when imported
        raise UsageError(f"libfuse 3 is not installed ({exc}): install fuse3") from None
    vault = open_vault(ctx)
    loop = Loop()
    options = DriveOptions(cache_mib=cache_mib, spool_mib=spool_mib, read_only=read_only)
    drive = Drive(vault.ctx, options)
    try:
        mount(drive, loop, str(where), ready=json.dumps({"mounted": str(where)}))
    finally:
        loop.run(drive.close())
        loop.run(vault.close())
        loop.stop()


def mount_grant_dir(keys: VaultKeys, grant_text: str, mountpoint: str) -> None:
    """``ownvault open GRANT --mount DIR``: the grant, read-only, until unmounted."""
    where = _mountpoint(mountpoint)
    try:
        from ownvault.server.fuse import Loop
        from ownvault.server.grantfs import mount_grant
    except OSError as exc:
        raise UsageError(f"libfuse 3 is not installed ({exc}): install fuse3") from None
    loop = Loop()
    try:
        reader = loop.run(open_grant(keys, grant_text))
        try:
            mount_grant(reader, loop, str(where), ready=json.dumps({"mounted": str(where)}))
        finally:
            loop.run(reader.close())
    finally:
        loop.stop()
