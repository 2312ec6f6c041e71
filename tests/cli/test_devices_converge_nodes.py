"""Devices of one vault as real ``ownvault`` processes whose providers are real storage-node
processes on loopback (no local folder): three devices put, rm, tag and get at the same
time and converge to the same names, versions and tags with every acknowledged file's
bytes back; a commit killed with SIGKILL on either device loses nothing acknowledged; a
node killed with SIGKILL and restarted in the middle leaves the devices working on the
others and converging after; a device that was offline while the others made 50+
changes comes back and converges."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_devices_converge import _spawn, _state
from tests.cli.test_keys import js, ov
from tests.engine.helpers import PASS
from tests.server.nodes import Node, NodeCluster

pytestmark = pytest.mark.slow
_LOG: list[str] = []


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


def _devices(tmp_path: Path, nodes: list[Node], count: int) -> list[Path]:
    """Device 0 made with ``init`` and the nodes as its only providers (1-of-3: a put
    places 2 shares, a journal record 2 copies, so one node may be down); the others
    recovered from the phrase, each pointed at another node."""
    home = tmp_path / "dev-0"
    phrase = tmp_path / "phrase.txt"
    ov(home, "init", "--providers", "0", "--k", "1", "--n", "3", "--device-name", "dev-0",
       "--phrase-file", str(phrase))  # fmt: skip
    for i, node in enumerate(nodes):
        ov(home, "provider", "add", f"node-{i}", node.url)
    out = [home]
    for i in range(1, count):
        d = tmp_path / f"dev-{i}"
        ov(d, "recover", "--phrase-file", str(phrase), "--provider", nodes[i % len(nodes)].url,
           "--device-name", f"dev-{i}")  # fmt: skip
        out.append(d)
    return out


def _finish(procs: list[tuple[Path, list[str]]]) -> None:
    """Run commands at once, one process each; one refused because its device was busy
    (exit 9: another process of that device held the vault) is run again, as a user would."""
    running = [(v, args, _spawn(v, *args)) for v, args in procs]
    busy: list[tuple[Path, list[str]]] = []
    for v, args, p in running:
        out, err = p.communicate(timeout=300)
        assert p.returncode in (0, 9), (args, out, err)
        _LOG.append(f"{v.name} {args[0]} -> {p.returncode}: {err.strip()}")
        if p.returncode == 9:
            busy.append((v, args))
    # Again only once every command has ended: run while another process of the same
    # device was still running, the retry itself could find the device busy.
    for v, args in busy:
        _LOG.append(f"{v.name} {args[0]} again: {ov(v, *args).stderr.strip()}")


def _converged(vaults: list[Path]) -> tuple[dict[str, dict[str, object]], dict[str, object]]:
    """Every device's state, asserted equal: (name -> ls entry, name -> versions)."""
    states = [_state(v) for v in vaults]
    if any(s != states[0] for s in states[1:]):
        seen = [set(_summary(s)) for s in states]
        diff = [sorted(x ^ seen[0]) for x in seen[1:]]
        raise AssertionError(f"devices differ from {vaults[0].name}: {diff}; commands: {_LOG}")
    listing, versions = states[0]
    names = {o["name"]: o for o in listing["objects"]}  # type: ignore[index]
    return names, versions  # type: ignore[return-value]


def _summary(state: tuple[object, ...]) -> list[tuple[str, str, str]]:
    """Each name's listing entry and versions, as text (to name what differs)."""
    listing, versions = state
    return [
        (o["name"], json.dumps(o, sort_keys=True), json.dumps(versions[o["name"]], sort_keys=True))  # type: ignore[index]
        for o in listing["objects"]  # type: ignore[index]
    ]


def _bytes_back(tmp_path: Path, vault: Path, want: dict[str, bytes]) -> None:
    for name, data in want.items():
        out = tmp_path / "got" / name
        out.parent.mkdir(exist_ok=True)
        ov(vault, "get", name, "-o", str(out))
        assert out.read_bytes() == data, name
        out.unlink()


def test_three_devices_on_storage_nodes_write_at_once_and_converge(
    tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(3)
    a, b, c = _devices(tmp_path, nodes, 3)
    files = tmp_path / "files"
    files.mkdir()
    for name in ("x", "ya", "yb", "za", "zb", "w", "v"):
        (files / name).write_bytes(os.urandom(200_000) + name.encode())
    ov(a, "put", str(files / "x"), "--tag", "seen")
    ov(b, "put", str(files / "w"))
    ov(c, "ls")  # C pulls: it has seen x v1 and w

    # At once: A and B store a version of one name each, B tags a new name, C removes x's
    # version 1 (the one it saw) while A stores x v2, and C and B read while they do.
    _finish(
        [
            (a, ["put", str(files / "ya"), "--as", "shared"]),
            (b, ["put", str(files / "yb"), "--as", "shared"]),
            (b, ["put", str(files / "zb"), "--tag", "from-b"]),
            (c, ["rm", "x", "--version", "1"]),
            (a, ["put", str(files / "za"), "--as", "x"]),
            (c, ["get", "w", "-o", str(tmp_path / "w-during")]),
            (b, ["put", str(files / "v"), "--as", "w", "--tag", "kept"]),
        ]
    )
    # C's get pulled either before or after B's record of w's new version landed.
    assert (tmp_path / "w-during").read_bytes() in {
        (files / "w").read_bytes(),
        (files / "v").read_bytes(),
    }
    names, versions = _converged([a, b, c])
    assert set(names) == {"shared", "zb", "x", "w"}
    assert len(versions["shared"]["versions"]) == 2  # type: ignore[index]
    # A's put raced C's rm of the version C had seen: the rm took only that one.
    assert len(versions["x"]["versions"]) == 1  # type: ignore[index]
    assert names["zb"]["tags"] == ["from-b"]
    assert names["w"]["tags"] == ["kept"] and len(versions["w"]["versions"]) == 2  # type: ignore[index]
    _bytes_back(
        tmp_path,
        c,
        {"x": (files / "za").read_bytes(), "zb": (files / "zb").read_bytes(),
         "w": (files / "v").read_bytes()},
    )  # fmt: skip
    shared = tmp_path / "shared"
    ov(a, "get", "shared", "-o", str(shared))  # the newest of the two, in the merge order
    assert shared.read_bytes() in {(files / "ya").read_bytes(), (files / "yb").read_bytes()}
    assert js(ov(b, "--json", "versions", "shared")) == versions["shared"]


def _objects(nodes: list[Node], prefix: str) -> set[Path]:
    """Object files under ``prefix`` on every node's disk (any account)."""
    return {
        p for n in nodes for p in n.data.glob(f"accounts/*/objects/{prefix}/**/*") if p.is_file()
    }


def _kill_when(victim: subprocess.Popen[str], nodes: list[Node], prefix: str) -> None:
    """SIGKILL ``victim`` as soon as a new object under ``prefix`` lands on a node (a data
    share: in the middle of the put's writes; a journal record: between the record's
    copies and the catalog's head update)."""
    before = _objects(nodes, prefix)
    deadline = time.monotonic() + 120
    while victim.poll() is None and time.monotonic() < deadline:
        if _objects(nodes, prefix) - before:
            break
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()


def test_a_commit_killed_on_either_device_loses_nothing(
    tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(3)
    a, b = _devices(tmp_path, nodes, 2)
    files = tmp_path / "files"
    files.mkdir()
    acknowledged: dict[str, bytes] = {}
    committed: set[str] = set()
    for point in ("shares", "journal"):
        for who, vault in (("a", a), ("b", b)):
            name = f"{who}-{point}"
            (files / name).write_bytes(os.urandom(3_000_000))
            victim = _spawn(vault, "put", str(files / name))
            _kill_when(victim, nodes, point)
            if victim.returncode == 0:  # it finished before the kill
                acknowledged[name] = (files / name).read_bytes()
            elif point == "journal":  # its record is on a node: the put is committed
                committed.add(name)
            # The device's next command finishes what the killed one committed.
            ok = f"{name}-ok"
            (files / ok).write_bytes(os.urandom(1000))
            ov(vault, "put", str(files / ok))
            acknowledged[ok] = (files / ok).read_bytes()
    ov(a, "put", str(files / "a-shares-ok"), "--as", "last-a")  # A sends after B's last
    names, _versions = _converged([a, b])
    assert set(acknowledged) | committed <= set(names)
    assert set(names) - {"last-a"} <= {
        f"{w}-{p}{s}" for w in "ab" for p in ("shares", "journal") for s in ("", "-ok")
    }
    _bytes_back(tmp_path, b, {n: (files / n).read_bytes() for n in set(names) - {"last-a"}})


READ_ALL = """
import asyncio, dataclasses, hashlib, json, sys
from ownvault.engine.vault import Vault

async def main():
    vault = Vault.open(sys.argv[1], sys.argv[2])
    try:
        await vault.pull()
        out = {}
        for o in (await vault.files.ls()).objects:
            h = hashlib.sha256()
            async for piece in vault.files.read(o.name):
                h.update(piece)
            versions = [dataclasses.asdict(v) for v in await vault.files.versions(o.name)]
            out[o.name] = [h.hexdigest(), versions]
        print(json.dumps(out))
    finally:
        await vault.close()

asyncio.run(main())
"""


def _read_all(vault: Path) -> dict[str, list[object]]:
    """Every name's versions and the SHA-256 of its latest bytes, read back through the
    engine in one process (one ``get`` and ``versions`` process per name would take
    minutes here)."""
    env = {**os.environ, "OWNVAULT_INSECURE_FAST_KDF": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", READ_ALL, str(vault), PASS],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def test_a_node_dies_and_an_offline_device_comes_back(tmp_path: Path, cluster: NodeCluster) -> None:
    nodes = cluster.start_many(3)
    a, b, c = _devices(tmp_path, nodes, 3)
    files = tmp_path / "files"
    want: dict[str, bytes] = {}

    def batch(who: str, first: int, count: int) -> list[str]:
        paths = []
        for i in range(first, first + count):
            name = f"{who}{i:02}"
            path = files / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(os.urandom(5000 + 97 * i) + name.encode())
            want[name] = path.read_bytes()
            paths.append(str(path))
        return paths

    (files / "old").parent.mkdir()
    (files / "old").write_bytes(b"before C went away\n")
    ov(a, "put", str(files / "old"), "--tag", "kept")
    want["old"] = (files / "old").read_bytes()
    ov(c, "ls")  # C has seen "old"; from here on it runs nothing

    # A and B make 53 changes from 17 commands (40 names in 4 puts, 9 rm, 4 new versions),
    # two at a time, and node-1 dies in the middle (kill -9) and comes back.
    _finish([(a, ["put", *batch("a", 0, 10)]), (b, ["put", *batch("b", 0, 10)])])
    cluster.kill(nodes[1])
    _finish([(a, ["put", *batch("a", 10, 10)]), (b, ["put", *batch("b", 10, 10)])])
    for i in range(3):  # on the two nodes left: rm of the other's names, new versions
        _finish([(a, ["rm", f"b{i:02}"]), (b, ["rm", f"a{i:02}"])])
        del want[f"a{i:02}"], want[f"b{i:02}"]
    (files / "new-old").write_bytes(b"B's version of old\n")
    ov(b, "put", str(files / "new-old"), "--as", "old", "--tag", "from-b")
    want["old"] = (files / "new-old").read_bytes()
    cluster.restart(nodes[1])
    for i in range(3, 6):
        _finish(
            [
                (a, ["rm", f"b{i:02}"]),
                (b, ["put", str(files / f"b{i + 10:02}"), "--as", f"a{i:02}"]),
            ]
        )
        del want[f"b{i:02}"]
        want[f"a{i:02}"] = want[f"b{i + 10:02}"]

    # C comes back: its first command pulls everything the others committed.
    listings = [js(ov(v, "--json", "ls")) for v in (c, a, b)]
    assert listings[1] == listings[0] == listings[2]
    names = {o["name"]: o for o in listings[0]["objects"]}
    assert set(names) == set(want)
    versions = [js(ov(v, "--json", "versions", "old")) for v in (c, b)]
    assert versions[0] == versions[1] and len(versions[0]["versions"]) == 2
    assert names["old"]["tags"] == ["from-b", "kept"]
    assert [names[f"a{i:02}"]["versions"] for i in range(3, 6)] == [2, 2, 2]
    got = [_read_all(v) for v in (c, a, b)]
    assert got[0] == got[1] == got[2]
    assert {n: h for n, (h, _v) in got[0].items()} == {
        n: hashlib.sha256(data).hexdigest() for n, data in want.items()
    }
