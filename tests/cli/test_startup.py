"""A short command starts without the heavy libraries (docs/design.md, "Engine architecture",
start-up): importing the CLI, ``ls --help``, and ``ls`` / ``du`` on a vault of local folders
never import S3, HTTP, the servers, FUSE or the NFT code. Checked by what a fresh process has
in ``sys.modules`` after running the real entry point, not by timing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from ownvault.cli.app import COMMAND_MODULES, cli
from ownvault.engine.store.filescache import GRANULARITY_NS

from ..server.nodes import NodeCluster

SRC = Path(__file__).resolve().parents[2] / "src"

# What a command that only reads the local catalog must not import: remote adapters, servers,
# FUSE, and the engine's features other than files (the facade makes them on first use).
HEAVY = (
    "boto3",
    "botocore",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "wsgidav",
    "mfusepy",
    "prometheus_client",
    "http_message_signatures",
    "shamir_mnemonic",
    "zxcvbn",
    "ownvault.server",
    "ownvault.providers.node",
    "ownvault.providers.s3",
    "ownvault.providers.ipfs",
    "ownvault.providers.webfetch",
    "ownvault.engine.nft",
    "ownvault.engine.health",
    "ownvault.engine.fleet",
    "ownvault.engine.sharing",
    "ownvault.engine.keys",
    "ownvault.engine.ipfs",
    "ownvault.engine.backup",
    "ownvault.engine.maintenance",
)

# Runs the ``ownvault`` entry point (``ownvault.cli:main``) with the given arguments, then
# writes the names in ``sys.modules`` to the file named by the first argument.
PROBE = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
code = 0
if args != ["--import-only"]:
    from ownvault.cli import main
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
else:
    import ownvault.cli.app
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def loaded(tmp_path: Path, *args: str) -> set[str]:
    """The modules a fresh ``ownvault ARGS`` process has imported when it ends (exit 0)."""
    out = tmp_path / "modules.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "OWNVAULT_PASSPHRASE": "startup test passphrase",
        "OWNVAULT_INSECURE_FAST_KDF": "1",
    }
    subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    doc = json.loads(out.read_text())
    assert doc["code"] in (0, None)
    return set(doc["modules"])


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vault on its six embedded local folders, with two stored files."""
    tmp = tmp_path_factory.mktemp("startup")
    path = tmp / "vault"
    loaded(tmp, "--vault", str(path), "init", "--phrase-file", str(tmp / "phrase"))
    for name in ("a.txt", "b.txt"):
        (tmp / name).write_text(name * 100)
    loaded(tmp, "--vault", str(path), "put", str(tmp / "a.txt"), str(tmp / "b.txt"))
    return path


def test_importing_the_cli_imports_no_command(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--import-only")
    assert heavy_in(modules) == []
    assert not {m for m in modules if m.startswith("ownvault.engine")}
    assert not set(COMMAND_MODULES.values()) & modules


def test_the_entry_point_finds_malloc_without_a_library_search(tmp_path: Path) -> None:
    """``main`` sets glibc's arena count through the process's own symbols: no
    ``ctypes.util.find_library``, which runs ``ldconfig -p`` in a subprocess."""
    modules = loaded(tmp_path, "--version")
    assert "ctypes" in modules
    assert "ctypes.util" not in modules


def test_ls_help_imports_only_its_module(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "ls", "--help")
    assert heavy_in(modules) == []
    assert set(COMMAND_MODULES.values()) & modules == {"ownvault.cli.listing"}


@pytest.mark.parametrize("command", [["ls"], ["ls", "a.txt"], ["du"], ["versions", "a.txt"]])
def test_a_short_command_on_local_folders_stays_light(
    tmp_path: Path, vault: Path, command: list[str]
) -> None:
    modules = loaded(tmp_path, "--vault", str(vault), "--json", *command)
    assert "ownvault.engine.store.catalog" in modules  # it did open the catalog
    assert heavy_in(modules) == []


# What ``ls`` and ``du`` (the local catalog only) need not load: the keystore's KDF, the
# crypto libraries, the share store, the engine's facade, the event loop.
KEYLESS = ("argon2", "cryptography", "blake3", "ownvault.engine.vault", "ownvault.core.crypto")
KEYLESS += ("ownvault.engine.store.shares", "ownvault.engine.store.context", "asyncio")


@pytest.mark.parametrize("command", [["ls"], ["ls", "a.txt"], ["du"]])
def test_listing_commands_load_no_key_and_no_crypto(
    tmp_path: Path, vault: Path, command: list[str]
) -> None:
    modules = loaded(tmp_path, "--vault", str(vault), "--json", *command)
    assert "ownvault.engine.files.listing" in modules
    assert sorted(m for m in modules for k in KEYLESS if m == k or m.startswith(k + ".")) == []
    versions = loaded(tmp_path, "--vault", str(vault), "--json", "versions", "a.txt")
    assert {"argon2", "ownvault.engine.vault"} <= versions  # the probe sees an unlock


# What ``put`` of a tree the files cache knows unchanged must not load (it is answered from
# the local catalog: engine.files.reput): the keystore's KDF, the crypto libraries, the
# event loop, the engine's facade and context, the put pipeline, the passphrase checks, rich.
REPUT_LAZY: tuple[str, ...] = (
    *KEYLESS,
    "ownvault.engine.store.versions",
    "ownvault.engine.store.ingest",
)
REPUT_LAZY += ("ownvault.engine.store.treeread", "ownvault.cli.strength", "zxcvbn", "rich")
REPUT_LAZY += ("fastcdc", "ownvault.core.unixfs")  # the chunker and the CID builder
# The catalog's table groups it does not reach (catalog/groups.py makes each, and imports its
# module, on first use) and the op vocabulary (core.journalops: only when a record is built
# or applied; the catalog holds heads and clocks through core.journalclock).
CATALOG_UNUSED = ("backups", "contents", "fleet", "healthlog", "ipfs", "journalplaces")
CATALOG_UNUSED += ("journalrevoke", "journalrows", "journalsettings", "nft", "packs", "sharing")
CATALOG_UNUSED += ("underrep", "usage")
JOURNAL_OPS = ("ownvault.core.journalops", "ownvault.core.journalplaces")
JOURNAL_OPS += ("ownvault.engine.store.journalrows",)
REPUT_LAZY += (*(f"ownvault.engine.store.catalog.{m}" for m in CATALOG_UNUSED), *JOURNAL_OPS)


def test_an_unchanged_reput_loads_neither_keys_nor_the_put_pipeline(tmp_path: Path) -> None:
    vault, tree = tmp_path / "vault", tmp_path / "tree"
    loaded(tmp_path, "--vault", str(vault), "init", "--phrase-file", str(tmp_path / "phrase"))
    (tree / "sub").mkdir(parents=True)
    for name in ("a.bin", "sub/b.bin"):
        (tree / name).write_bytes(os.urandom(5000))
    time.sleep(GRANULARITY_NS / 1e9 + 0.2)  # old enough for the files cache to remember
    first = loaded(tmp_path, "--vault", str(vault), "put", str(tree))
    assert {"argon2", "ownvault.engine.store.ingest", "asyncio"} <= first  # the probe sees them
    assert {*JOURNAL_OPS, "ownvault.engine.store.catalog.packs"} <= first
    again = loaded(tmp_path, "--vault", str(vault), "put", str(tree))
    assert "ownvault.engine.files.reput" in again
    lazy = sorted(m for m in again for k in REPUT_LAZY if m == k or m.startswith(k + "."))
    assert lazy == [] and heavy_in(again) == []
    (tree / "a.bin").write_bytes(b"changed")
    changed = loaded(tmp_path, "--vault", str(vault), "put", str(tree))
    assert {"argon2", "ownvault.engine.store.ingest"} <= changed


def _ownvault(vault: Path, passphrase: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OWNVAULT_PASSPHRASE"}
    env["PYTHONPATH"] = str(SRC)
    if passphrase is not None:
        env["OWNVAULT_PASSPHRASE"] = passphrase
    return subprocess.run(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("passphrase", ["a wrong passphrase", None])
def test_ls_and_du_read_the_plaintext_catalog_without_the_passphrase_and_nothing_else_does(
    tmp_path: Path, vault: Path, passphrase: str | None
) -> None:
    """``ls`` and ``du`` show what the local catalog already shows to anyone who can read
    the vault folder (docs/design.md, "Threat model"), with a wrong passphrase or none;
    every command that needs a key still refuses: content, the keys, writes."""
    listed = _ownvault(vault, passphrase, "ls")
    assert listed.returncode == 0, listed.stderr
    assert {o["name"] for o in json.loads(listed.stdout)["objects"]} == {"a.txt", "b.txt"}
    du = _ownvault(vault, passphrase, "du")
    assert du.returncode == 0 and json.loads(du.stdout)["objects"] == 2
    (tmp_path / "c.txt").write_text("c")
    refused = [
        ["get", "a.txt", "-o", str(tmp_path / "out.txt")],
        ["put", str(tmp_path / "c.txt")],
        ["versions", "a.txt"],
        ["keys", "phrase", "--to-file", str(tmp_path / "phrase.txt")],
    ]
    for args in refused:
        ran = _ownvault(vault, passphrase, *args)
        assert ran.returncode != 0, args
        expected = "auth" if passphrase is not None else "usage"
        assert json.loads(ran.stdout)["error"]["code"] == expected, (args, ran.stdout)
    assert not (tmp_path / "out.txt").exists() and not (tmp_path / "phrase.txt").exists()
    after = json.loads(_ownvault(vault, passphrase, "ls").stdout)["objects"]
    assert {o["name"] for o in after} == {"a.txt", "b.txt"}  # the put was refused


def test_ls_with_a_remote_provider_pulls_first(tmp_path: Path) -> None:
    """A vault with a storage node among its providers: whether another device committed
    there cannot be told from names alone without the vault's keys (docs/design.md,
    "Listing without the passphrase"), so ``ls`` and ``du`` unlock and pull first, which
    opens the node; with local folders only they stay keyless (the tests above)."""
    vault = tmp_path / "vault"
    loaded(tmp_path, "--vault", str(vault), "init", "--phrase-file", str(tmp_path / "phrase"))
    with NodeCluster(tmp_path / "nodes") as cluster:
        (node,) = cluster.start_many(1, jurisdictions=["CH"])
        added = loaded(tmp_path, "--vault", str(vault), "provider", "add", "n1", node.url)
        assert "httpx" in added  # adding it did talk to the node
        for command in ("ls", "du"):
            modules = loaded(tmp_path, "--vault", str(vault), command)
            assert {"httpx", "argon2", "ownvault.engine.vault"} <= modules


def test_the_probe_sees_heavy_imports(tmp_path: Path) -> None:
    """The check above can fail: ``ownvault --help`` imports every command module, and with
    them the node server (Starlette) and the node client (httpx)."""
    modules = loaded(tmp_path, "--help")
    assert set(COMMAND_MODULES.values()) <= modules
    assert {"starlette", "httpx", "ownvault.server"} <= modules
    assert heavy_in(modules) != []


def test_the_command_map_is_exact() -> None:
    """Every top-level command is in ``COMMAND_MODULES`` under the module that defines it,
    and the map names no command that does not exist."""
    for module in sorted(set(COMMAND_MODULES.values())):
        __import__(module)
    registered = {
        name: command.callback.__module__ if command.callback else ""
        for name, command in cli.commands.items()
    }
    assert registered == dict(COMMAND_MODULES)


def test_help_lists_every_command() -> None:
    ctx = click.Context(cli, info_name="ownvault")
    assert cli.list_commands(ctx) == sorted(COMMAND_MODULES)
    assert all(cli.get_command(ctx, name) is not None for name in COMMAND_MODULES)
