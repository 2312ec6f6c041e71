"""The README's recovery promise, run as written (issue 14): a default vault (six embedded
folders, 3-of-6) plus remote storage nodes as real processes; the vault directory is
deleted; ``recover --provider`` pointing at ONE node brings every file back byte-identical.

The commands are the README's: ``OWNVAULT_HOME`` names the vault directory and ``HOME``
holds ``~/guardians``; node URLs are the loopback ports of the nodes started here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ownvault

from ..server.nodes import NodeCluster

PASS = "readme passphrase"


class Shell:
    """``$ ownvault ...`` in a working directory with the README's environment."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.home = cwd / "vault"
        self.env = {
            **os.environ,
            "HOME": str(cwd),
            "OWNVAULT_HOME": str(self.home),
            "OWNVAULT_PASSPHRASE": PASS,
            "OWNVAULT_INSECURE_FAST_KDF": "1",
            # The commands run in another directory: import the ownvault under test.
            "PYTHONPATH": str(Path(ownvault.__file__).parent.parent),
        }

    def __call__(self, *args: str, check: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "ownvault", *args],
            cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=300,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.returncode == check, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_lose_the_machine_recover_from_one_node(tmp_path: Path, cluster: NodeCluster) -> None:
    me = tmp_path / "me"
    (me / "Documents" / "health" / "2026").mkdir(parents=True)
    for i in range(12):
        (me / "Documents" / "health" / "2026" / f"scan-{i}.bin").write_bytes(
            os.urandom(20_000 + 7919 * i)
        )
    (me / "Documents" / "health" / "notes.txt").write_text("blood pressure fine\n")
    (me / "report.pdf").write_bytes(os.urandom(2_200_000))
    report_v1 = (me / "report.pdf").read_bytes()
    sh = Shell(me)
    zurich, berlin, paris = cluster.start_many(3, jurisdictions=["CH", "DE", "FR"])

    # The tour: a default vault, data stored before any remote provider exists.
    sh("init", "--phrase-file", "phrase.txt")
    sh("put", str(me / "Documents" / "health"), "--tag", "health")
    # Providers, then rebalance: the README's "Providers ..." section.
    for name, node, cc in (
        ("zurich", zurich, "CH"),
        ("berlin", berlin, "DE"),
        ("paris", paris, "FR"),
    ):
        sh("provider", "add", name, node.url, "--jurisdiction", cc)
    sh("rebalance")
    sh("put", "report.pdf", "--as", "work/report.pdf")
    (me / "report.pdf").write_bytes((me / "report.pdf").read_bytes()[:-10] + b"v2-changed")
    sh("put", "report.pdf", "--as", "work/report.pdf")
    sh("keys", "guardians", "--threshold", "3", "--shares", "5", "-o", str(me / "guardians"))
    wanted = {
        "health": _files(me / "Documents" / "health"),
        "report v2": (me / "report.pdf").read_bytes(),
    }

    def everything_back(tag: str) -> None:
        out = me / f"restored-{tag}"
        sh("get", "health", "-o", str(out))
        assert _files(out) == wanted["health"]
        sh("get", "work/report.pdf", "-o", str(me / f"report-{tag}.pdf"))
        assert (me / f"report-{tag}.pdf").read_bytes() == wanted["report v2"]
        sh("get", "work/report.pdf", "--version", "1", "-o", str(me / f"v1-{tag}.pdf"))
        assert (me / f"v1-{tag}.pdf").read_bytes() == report_v1

    # Losing the laptop: the vault directory, with the six embedded folders in it, is gone.
    shutil.rmtree(sh.home)
    # $ ownvault recover --phrase-file phrase.txt --provider https://node.example.org
    out = sh("recover", "--phrase-file", "phrase.txt", "--provider", berlin.url)
    assert "Recovered vault at" in out.stdout and "catalog snapshot" in out.stdout
    assert "warning" not in out.stderr
    everything_back("phrase")

    # Again, from guardian shares 1, 4 and 5 and another node:
    # $ ownvault recover --guardian-shares g1.txt g4.txt g5.txt --provider https://node.example.org
    shutil.rmtree(sh.home)
    shares = sorted((me / "guardians").iterdir())
    assert len(shares) == 5
    picked = [str(shares[0]), str(shares[3]), str(shares[4])]
    sh("recover", "--guardian-shares", *picked, "--provider", paris.url)
    everything_back("guardians")


def test_recover_names_a_provider_that_moved(tmp_path: Path, cluster: NodeCluster) -> None:
    """``$ ownvault recover --phrase-file phrase.txt --provider usb=file:///media/new-mount``:
    the USB disk is mounted somewhere else on the new machine; NAME=URL finds the vault on
    it and records the provider's new place."""
    me = tmp_path / "me"
    (me / "usb-disk").mkdir(parents=True)
    (me / "report.pdf").write_bytes(os.urandom(300_000))
    sh = Shell(me)
    zurich, berlin = cluster.start_many(2, jurisdictions=["CH", "DE"])
    sh("init", "--providers", "0", "--k", "2", "--n", "3", "--phrase-file", "phrase.txt")
    sh("provider", "add", "usb", (me / "usb-disk").as_uri(), "--jurisdiction", "DE")
    sh("provider", "add", "zurich", zurich.url, "--jurisdiction", "CH")
    sh("provider", "add", "berlin", berlin.url, "--jurisdiction", "DE")
    sh("put", "report.pdf", "--as", "work/report.pdf")

    shutil.rmtree(sh.home)
    new_mount = me / "new-mount"
    (me / "usb-disk").rename(new_mount)
    sh("recover", "--phrase-file", "phrase.txt", "--provider", f"usb={new_mount.as_uri()}")
    sh("get", "work/report.pdf", "-o", "back.pdf")
    assert (me / "back.pdf").read_bytes() == (me / "report.pdf").read_bytes()
    urls = {
        p["name"]: p["url"] for p in json.loads(sh("provider", "ls", "--json").stdout)["providers"]
    }
    assert urls["usb"] == new_mount.as_uri()
