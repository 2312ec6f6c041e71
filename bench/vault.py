"""Vault core benchmark: put/get throughput and peak memory against this machine's ceilings.

Measured in one run, on the same machine:

* ceilings, one core each: SHA-256, BLAKE3, AES-256-GCM, FastCDC, the erasure code
  (k=3, n=6 over 16 MiB packs), Merkle leaves, and raw disk write with fsync;
* the pipeline ceiling: the CPU work a put does per byte (chunking, chunk ids, the CID's
  SHA-256, sealing, erasure coding, Merkle roots over n/k bytes of shares) spread over the
  machine's cores, and the disk's write rate divided by the n/k expansion; the lower wins;
* ``ownvault put``/``get`` of a 1 GiB random file and of a tree of 10,000 small files, as
  real CLI processes, with wall time and peak RSS (``wait4``);
* borg and restic on the same data where installed (``--install-peers`` installs them
  from Debian when run as root).

Usage: ``python bench/vault.py [--size-mib 1024] [--files 10000] [--install-peers] [--json OUT]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import blake3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastcdc import fastcdc

from ownvault.core.chunking import DEFAULT_CHUNKER
from ownvault.core.erasure import ErasureCode
from ownvault.core.merkle import merkle_root

MiB = 1024 * 1024
ENV = {
    **os.environ,
    "OWNVAULT_PASSPHRASE": "bench passphrase",
    "BORG_PASSPHRASE": "bench",
    "RESTIC_PASSWORD": "bench",
}


def rate(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def timed(fn: Any, nbytes: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return rate(nbytes, best)


def ceilings(workdir: Path) -> dict[str, float]:
    data = os.urandom(256 * MiB)
    view = memoryview(data)
    key = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    code = ErasureCode(3, 6)
    packs = [data[i : i + 16 * MiB] for i in range(0, len(data), 16 * MiB)]
    shares_like = [data[i : i + 6 * MiB] for i in range(0, 96 * MiB, 6 * MiB)]
    out = {
        "sha256": timed(lambda: hashlib.sha256(data).digest(), len(data)),
        "blake3": timed(lambda: blake3.blake3(data).digest(), len(data)),
        "aes_gcm": timed(
            lambda: [key.encrypt(nonce, view[i : i + MiB], b"") for i in range(0, len(data), MiB)],
            len(data),
        ),
        "fastcdc": timed(
            lambda: sum(
                1
                for _ in fastcdc(
                    view,
                    DEFAULT_CHUNKER.min_size,
                    DEFAULT_CHUNKER.avg_size,
                    DEFAULT_CHUNKER.max_size,
                    False,
                )
            ),
            len(data),
        ),
        "erasure_3_of_6": timed(lambda: [code.encode(p) for p in packs], len(data)),
        "merkle_16k": timed(lambda: [merkle_root(s) for s in shares_like], 96 * MiB),
    }
    # Disk: 1 GiB (or less) in 16 MiB files, each fsynced, as shares are written.
    target = workdir / "disk-ceiling"
    target.mkdir()
    blob = data[: 16 * MiB]
    total = 64 * 16 * MiB
    t0 = time.perf_counter()
    for i in range(64):
        fd = os.open(target / f"f{i}", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, blob)
        os.fsync(fd)
        os.close(fd)
    out["disk_write_fsync"] = rate(total, time.perf_counter() - t0)
    shutil.rmtree(target)
    return out


def pipeline_ceiling(c: dict[str, float], k: int = 3, n: int = 6) -> dict[str, float]:
    expansion = n / k
    seconds_per_mb = (
        1 / c["fastcdc"]
        + 1 / c["blake3"]
        + 1 / c["sha256"]
        + 1 / c["aes_gcm"]
        + 1 / c["erasure_3_of_6"]
        + expansion / c["merkle_16k"]
    )
    cores = os.cpu_count() or 1
    cpu = cores / seconds_per_mb
    disk = c["disk_write_fsync"] / expansion
    return {
        "cpu_one_core": 1 / seconds_per_mb,
        "cpu_all_cores": cpu,
        "disk": disk,
        "put": min(cpu, disk),
    }


def run_measured(cmd: list[str], cwd: Path | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err}")
    return elapsed, usage.ru_maxrss * 1024


def drop_caches() -> None:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass


def ownvault(vault: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ownvault", "--vault", str(vault), *args]


def make_tree(root: Path, files: int) -> int:
    rnd = os.urandom
    total = 0
    for i in range(files):
        d = root / f"d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        size = 1024 + (i * 7919) % 15000
        (d / f"f{i:05d}.bin").write_bytes(rnd(size))
        total += size
    return total


def peers(workdir: Path, big: Path, install: bool) -> dict[str, Any]:
    if install and os.geteuid() == 0 and not (shutil.which("borg") and shutil.which("restic")):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "borgbackup", "restic"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    out: dict[str, Any] = {}
    size = big.stat().st_size
    if shutil.which("borg"):
        repo = workdir / "borg-repo"
        subprocess.run(
            ["borg", "init", "--encryption=repokey-blake2", str(repo)],
            env=ENV,
            check=True,
            capture_output=True,
        )
        t_put, rss_put = run_measured(["borg", "create", f"{repo}::a", big.name], cwd=big.parent)
        drop_caches()
        dest = workdir / "borg-out"
        dest.mkdir()
        t_get, rss_get = run_measured(["borg", "extract", f"{repo}::a"], cwd=dest)
        out["borg"] = {
            "put_MBps": rate(size, t_put),
            "get_MBps": rate(size, t_get),
            "put_rss": rss_put,
            "get_rss": rss_get,
        }
        shutil.rmtree(repo)
        shutil.rmtree(dest)
    if shutil.which("restic"):
        repo = workdir / "restic-repo"
        subprocess.run(
            ["restic", "init", "--repo", str(repo)], env=ENV, check=True, capture_output=True
        )
        t_put, rss_put = run_measured(["restic", "--repo", str(repo), "backup", str(big)])
        drop_caches()
        dest = workdir / "restic-out"
        t_get, rss_get = run_measured(
            ["restic", "--repo", str(repo), "restore", "latest", "--target", str(dest)]
        )
        out["restic"] = {
            "put_MBps": rate(size, t_put),
            "get_MBps": rate(size, t_get),
            "put_rss": rss_put,
            "get_rss": rss_get,
        }
        shutil.rmtree(repo)
        shutil.rmtree(dest)
    return out


def ceilings_in_child(workdir: Path) -> dict[str, float]:
    """Ceilings measured in a child process: the parent stays small, so the peak RSS that
    its later children inherit at fork (Linux counts it until exec) stays small too."""
    out = subprocess.run(
        [sys.executable, __file__, "--ceilings-only", "--workdir", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def sha256_file(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * MiB):
            h.update(block)
    return h.digest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ceilings-only", action="store_true")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--install-peers", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    if args.ceilings_only:
        print(json.dumps(ceilings(Path(tempfile.mkdtemp(dir=args.workdir)))))
        return
    workdir = Path(tempfile.mkdtemp(prefix="ownvault-bench-", dir=args.workdir))
    results: dict[str, Any] = {"cores": os.cpu_count()}
    try:
        c = ceilings_in_child(workdir)
        results["ceilings_MBps"] = c
        pc = pipeline_ceiling(c)
        results["pipeline_ceiling_MBps"] = pc

        big = workdir / "big.bin"
        with open(big, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(MiB))
        size = big.stat().st_size
        vault = workdir / "vault"
        subprocess.run(
            ownvault(vault, "init", "--phrase-file", str(workdir / "phrase")),
            env=ENV,
            check=True,
            capture_output=True,
        )
        t_put, rss_put = run_measured(ownvault(vault, "put", str(big)))
        drop_caches()
        t_get, rss_get = run_measured(
            ownvault(vault, "get", "big.bin", "-o", str(workdir / "big.out"))
        )
        assert sha256_file(big) == sha256_file(workdir / "big.out"), "get is not byte-identical"
        (workdir / "big.out").unlink()
        t_reput, _ = run_measured(ownvault(vault, "put", str(big)))
        results["file"] = {
            "bytes": size,
            "put_MBps": rate(size, t_put),
            "get_MBps": rate(size, t_get),
            "reput_unchanged_MBps": rate(size, t_reput),
            "put_peak_rss_MB": rss_put / 1e6,
            "get_peak_rss_MB": rss_get / 1e6,
            "put_fraction_of_ceiling": rate(size, t_put) / pc["put"],
        }

        tree = workdir / "tree"
        tree_bytes = make_tree(tree, args.files)
        t_tput, rss_tput = run_measured(ownvault(vault, "put", str(tree)))
        drop_caches()
        t_tget, rss_tget = run_measured(
            ownvault(vault, "get", "tree", "-o", str(workdir / "tree.out"))
        )
        results["tree"] = {
            "files": args.files,
            "bytes": tree_bytes,
            "put_files_per_s": args.files / t_tput,
            "get_files_per_s": args.files / t_tget,
            "put_MBps": rate(tree_bytes, t_tput),
            "get_MBps": rate(tree_bytes, t_tget),
            "put_peak_rss_MB": rss_tput / 1e6,
            "get_peak_rss_MB": rss_tget / 1e6,
        }
        results["peers"] = peers(workdir, big, args.install_peers)
        for p in results["peers"].values():
            p["ownvault_put_ratio"] = results["file"]["put_MBps"] / p["put_MBps"]
            p["ownvault_get_ratio"] = results["file"]["get_MBps"] / p["get_MBps"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def report(r: dict[str, Any]) -> None:
    print(f"== ownvault vault benchmark ({r['cores']} cores) ==")
    print(
        "ceilings, one core (MB/s): "
        + ", ".join(f"{k} {v:,.0f}" for k, v in r["ceilings_MBps"].items())
    )
    pc = r["pipeline_ceiling_MBps"]
    print(
        f"put pipeline ceiling: CPU {pc['cpu_one_core']:,.0f} MB/s on one core, {pc['cpu_all_cores']:,.0f} on all; "
        f"disk {pc['disk']:,.0f} (fsync rate / expansion 2.0) -> {pc['put']:,.0f} MB/s"
    )
    f = r["file"]
    print(
        f"1 file of {f['bytes'] / MiB:,.0f} MiB: put {f['put_MBps']:,.0f} MB/s ({f['put_fraction_of_ceiling']:.0%} of ceiling), "
        f"get {f['get_MBps']:,.0f} MB/s, unchanged re-put {f['reput_unchanged_MBps']:,.0f} MB/s; "
        f"peak RSS put {f['put_peak_rss_MB']:,.0f} MB, get {f['get_peak_rss_MB']:,.0f} MB"
    )
    t = r["tree"]
    print(
        f"tree of {t['files']:,} files ({t['bytes'] / MiB:,.0f} MiB): put {t['put_files_per_s']:,.0f} files/s "
        f"({t['put_MBps']:,.1f} MB/s), get {t['get_files_per_s']:,.0f} files/s; peak RSS put {t['put_peak_rss_MB']:,.0f} MB"
    )
    for name, p in r["peers"].items():
        print(
            f"{name}: put {p['put_MBps']:,.0f} MB/s, get {p['get_MBps']:,.0f} MB/s -> ownvault/{name}: "
            f"put {p['ownvault_put_ratio']:.2f}x, get {p['ownvault_get_ratio']:.2f}x"
        )
    if not r["peers"]:
        print("borg / restic not installed: no peer ratios (use --install-peers as root)")


if __name__ == "__main__":
    main()
