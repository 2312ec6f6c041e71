"""IPFS commands that need no vault: ``ownvault cid PATH`` and ``ownvault car ls FILE.car``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from ownvault.cli.app import cli, common, emit, get_ctx
from ownvault.core.car import CarReader, dfs_blocks, write_car
from ownvault.core.cid import CID, DAG_PB
from ownvault.core.dagpb import decode_node
from ownvault.core.unixfs import PROFILES, get_profile
from ownvault.engine.localcid import cid_of_path
from ownvault.errors import IntegrityError, UsageError

__all__ = ["car", "cid_command"]

_READ = 1 << 20


@cli.command("cid")
@click.argument("path", type=click.Path(exists=False, path_type=Path))
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default="kubo-v1",
    show_default=True,
    help="Import profile: kubo-v1 = `ipfs add --cid-version=1`, kubo-v0 = `ipfs add`, "
    "unixfs-v1-2025 = IPIP-499.",
)
@click.option("--hidden", is_flag=True, help="Include names starting with '.' (Kubo's --hidden).")
@click.option(
    "--car",
    "car_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the DAG as a CARv1 (DFS order; keeps the blocks in memory).",
)
@common
def cid_command(path: Path, profile: str, hidden: bool, car_out: Path | None) -> None:
    """Print the CID `ipfs add [-r] PATH` would give, without a node or a vault.

    Directories are added recursively like `ipfs add -r`: names sorted, hidden names
    skipped unless --hidden, symlinks stored as UnixFS symlinks (not followed).
    """
    ctx = get_ctx()
    blocks: dict[CID, bytes] | None = {} if car_out is not None else None
    sink = None if blocks is None else blocks.__setitem__
    root = cid_of_path(path, get_profile(profile), hidden=hidden, on_block=sink)
    if car_out is not None and blocks is not None:
        try:
            with open(car_out, "wb") as fh:
                for part in write_car([root.cid], dfs_blocks(root.cid, blocks.__getitem__)):
                    fh.write(part)
        except OSError as exc:
            raise UsageError(f"cannot write {car_out}: {exc.strerror}") from None
    doc = {
        "cid": str(root.cid),
        "profile": profile,
        "kind": root.kind,
        "size": root.size,
        "tsize": root.tsize,
        "files": root.files,
        "directories": root.directories,
    }
    if car_out is not None:
        doc["car"] = str(car_out)
    emit(ctx, doc, lambda: click.echo(str(root.cid)))


@cli.group("car")
def car() -> None:
    """Inspect CAR (content-addressed archive) files."""


def _chunks(path: Path) -> Iterator[bytes]:
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_READ):
                yield chunk
    except OSError as exc:
        raise UsageError(f"cannot open {path}: {exc.strerror}") from None


@car.command("ls")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@common
def car_ls(file: Path) -> None:
    """Validate a CAR (v1 or v2) and list its roots and blocks.

    Every block is re-hashed against its CID and every root must be present; dag-pb
    links to blocks that are not in the file are reported (a CAR may be partial).
    """
    ctx = get_ctx()
    reader = CarReader(_chunks(file))
    listed = []
    present: set[CID] = set()
    linked: set[CID] = set()
    for block in reader:
        if block.cid in present:
            listed.append({"cid": str(block.cid), "duplicate": True})
            continue
        present.add(block.cid)
        if block.cid.codec == DAG_PB:
            linked.update(link.cid for link in decode_node(block.data).links)
        listed.append(
            {"cid": str(block.cid), "codec": block.cid.codec_name, "size": len(block.data)}
        )
    missing_roots = [str(r) for r in reader.roots if r not in present]
    if missing_roots:
        raise IntegrityError(f"CAR root not among its blocks: {missing_roots[0]}")
    missing = sorted(str(c) for c in linked - present)
    doc = {
        "version": reader.version,
        "roots": [str(r) for r in reader.roots],
        "blocks": listed,
        "block_count": len(present),
        "missing_links": missing,
        "complete": not missing,
    }

    def human() -> None:
        for root in reader.roots:
            click.echo(f"root\t{root}")
        for item in listed:
            if item.get("duplicate"):
                click.echo(f"{item['cid']}\tduplicate")
            else:
                click.echo(f"{item['cid']}\t{item['codec']}\t{item['size']}")
        state = "complete" if not missing else f"{len(missing)} linked blocks missing"
        click.echo(f"CARv{reader.version}: {len(present)} blocks, all hashes ok, {state}", err=True)

    emit(ctx, doc, human)
