"""IPFS commands: ``ownvault cid PATH`` and ``ownvault car ls FILE.car`` (no vault needed),
``ownvault car export`` and ``ownvault car import`` (stored content)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.render import emit
from ownvault.cli.session import run_with_vault
from ownvault.core.car import CarReader, dfs_blocks, write_car
from ownvault.core.cid import CID, DAG_PB
from ownvault.core.dagpb import decode_node
from ownvault.core.unixfs import PROFILES, get_profile
from ownvault.engine.ipfs.localcid import cid_of_path
from ownvault.engine.ipfs.publish import CarExport
from ownvault.engine.store.outdir import output_file
from ownvault.engine.vault import Vault
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
            with output_file(car_out) as fh:
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
    """CAR (content-addressed archive) files: inspect, export from and import into the vault."""


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


@car.command("export")
@click.argument("target")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", type=int, help="Version of NAME (default: latest).")
@common
def car_export(target: str, out: Path, version: int | None) -> None:
    """Write the IPFS DAG of a stored file or tree (by NAME or CID) as a CARv1.

    Blocks are regenerated from the stored data (re-imported with the recorded profile,
    or from an imported CAR's block index) and written in depth-first pre-order without
    duplicates; the regenerated root must equal the recorded CID.
    """
    ctx = get_ctx()

    async def go(vault: Vault) -> CarExport:
        try:
            with output_file(out) as fh:  # never through a symlink at OUT or its temp name
                return await vault.ipfs.export_car(target, fh.write, version=version)
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror}") from None

    done = run_with_vault(ctx, go)
    emit(
        ctx,
        asdict(done) | {"car": str(out)},
        lambda: click.echo(f"{done.root}\t{done.blocks} blocks\t{out}"),
    )


@car.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "as_name", help="Store under this name (default: the root CID).")
@click.option("--publish", "publish_it", is_flag=True, help="Publish it once stored.")
@common
def car_import(file: Path, as_name: str | None, publish_it: bool) -> None:
    """Verify a CAR (v1 or v2) and store the files or tree it holds.

    Every block is re-hashed, the DAG must be complete and consistent UnixFS. The
    content is stored like any put; its root CID is kept, also when it was made with a
    chunker or layout ownvault cannot reproduce.
    """
    ctx = get_ctx()
    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    doc = run_with_vault(
        ctx, lambda v: v.ipfs.import_car(file, name=as_name, publish_it=publish_it)
    )

    def human() -> None:
        click.echo(f"stored {doc.name} v{doc.version}: {doc.files} file(s), {doc.bytes} bytes")
        click.echo(f"root {doc.root} ({doc.profile})")
        if doc.published is not None:
            click.echo(doc.published)

    emit(ctx, doc, human)
