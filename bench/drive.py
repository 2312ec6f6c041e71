"""The vault as a drive (issue 18): reading and writing through the FUSE mount and WebDAV
against `ownvault get`/`put` in the same run, and `ls -R` of a large tree through the mount.

Usage: ``python bench/drive.py [--size-mib 1024] [--files 10000] [--rounds 5] [--quick]``.
Needs root (it drops the page cache through /proc/sys/vm/drop_caches before each case),
/dev/fuse and fuse3 (scripts/setup.d/drive.sh); curl is used where installed. Every
command runs as a real process on loopback: ``ownvault serve`` and ``ownvault mount`` stay
up for the whole run, the CLI commands start for each case (their ~2 s start is part of
what a user waits for, so it stays in the figures).

The cases run in interleaved rounds (``bench/rounds.py``: every case once per round, the
rounds one after the other), so a slow period of this shared machine hits every case alike:

* read the stored file: ``ownvault get``, ``cat`` through the mount, a streamed httpx GET
  and ``curl`` from ``/dav/``;
* write a file of fresh random bytes (made before each case, untimed, so nothing
  deduplicates): ``ownvault put``, ``cp`` into the mount, a streamed httpx PUT and
  ``curl -T`` to ``/dav/``; each written name is deleted again after the round, untimed;
* ``ls -R`` of a 10,000-file tree through a mount started for it (cold: page, dentry and
  inode caches dropped, the drive's memory empty), then again at once (warm).

Ratios to ``get``/``put`` are taken round by round, then summarised as median and range
with the issue's targets (read via mount and WebDAV >= 70 % of ``get``, write via the mount
>= 70 % of ``put``, ``ls -R`` of 10,000 files < 2 s), each MET or MISSED by its median.
The last line is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
from rounds import Summary, interleave, ratio, summary

MiB = 1 << 20
ENV = {**os.environ, "OWNVAULT_PASSPHRASE": "bench passphrase", "OWNVAULT_INSECURE_FAST_KDF": "1"}
OV = [sys.executable, "-m", "ownvault"]
READ_TARGET = WRITE_TARGET = 0.70
LS_TARGET_S = 2.0
READS = ("get", "mount_cat", "dav_get_httpx", "dav_get_curl")


def drop_caches() -> None:
    """Page cache, dentries and inodes out (root only), so every read comes from the
    providers' files on disk, as after a reboot."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, env=ENV, check=True, capture_output=True, **kw)  # type: ignore[call-overload]


def timed(cmd: list[str], **kw: object) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=ENV, check=True, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - t0


def random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))


class Proc:
    """A long-running ``ownvault`` process that prints one JSON line when it is ready."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=err)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise SystemExit(f"{' '.join(cmd[3:6])} did not start: {log.read_text()}")
        self.doc: dict[str, object] = json.loads(line)

    def stop(self, unmount: Path | None = None) -> None:
        if self.proc.poll() is None:
            if unmount is not None:
                subprocess.run(["fusermount3", "-u", str(unmount)], check=False,
                               capture_output=True)  # fmt: skip
            else:
                self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
                if unmount is not None:  # a killed mount leaves its mount point to lift
                    subprocess.run(["fusermount3", "-uz", str(unmount)], check=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=None, help="file size (1024; quick 128)")
    ap.add_argument("--files", type=int, default=None, help="files for ls -R (10000; quick 2000)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a first look")
    args = ap.parse_args()
    size_mib = args.size_mib or (128 if args.quick else 1024)
    files = args.files or (2000 if args.quick else 10_000)
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        raise SystemExit(
            "bench/drive.py needs root, /dev/fuse and fuse3 (scripts/setup.d/drive.sh)"
        )
    size = size_mib * MiB
    curl = shutil.which("curl")
    work = Path(tempfile.mkdtemp(prefix="ownvault-bench-drive-"))
    vault = work / "vault"
    mnt, lsmnt = work / "mnt", work / "lsmnt"
    src = work / "src"
    src.mkdir()
    print(f"drive: {size_mib} MiB file, {files} files for ls -R, {args.rounds} rounds, "
          f"{os.cpu_count()} cores (shared)", file=sys.stderr, flush=True)  # fmt: skip
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        run([*OV, "--vault", str(vault), "init", "--phrase-file", str(work / "phrase")])
        random_file(work / "stored.bin", size)
        run([*OV, "--vault", str(vault), "put", str(work / "stored.bin")])
        (work / "stored.bin").unlink()
        tree = work / "tree"
        for i in range(files):
            d = tree / f"d{i // 100:03d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i:05d}.txt").write_bytes(b"x" * (i % 100))
        run([*OV, "--vault", str(vault), "put", str(tree)])
        shutil.rmtree(tree)

        serve = Proc([*OV, "--vault", str(vault), "serve", "--listen", "127.0.0.1:0"],
                     work / "serve.err")  # fmt: skip
        stack.callback(serve.stop)
        token = str(serve.doc["ui"]).split("#token=", 1)[1]
        dav = f"{serve.doc['listening']}/dav/"
        client = stack.enter_context(httpx.Client(auth=("ownvault", token), timeout=3600))
        mnt.mkdir()
        mount = Proc([*OV, "--vault", str(vault), "mount", str(mnt)], work / "mount.err")
        stack.callback(mount.stop, mnt)
        lsmnt.mkdir()
        written: list[str] = []

        def fresh(name: str) -> Path:
            path = src / name
            random_file(path, size)
            written.append(name)
            drop_caches()
            return path

        def get() -> float:
            t = timed([*OV, "--vault", str(vault), "get", "stored.bin", "-o", str(work / "out")],
                      stdout=subprocess.DEVNULL)  # fmt: skip
            (work / "out").unlink()
            return t

        def mount_cat() -> float:
            return timed(["cat", str(mnt / "stored.bin")], stdout=subprocess.DEVNULL)

        def dav_get() -> float:
            t0 = time.perf_counter()
            with client.stream("GET", dav + "stored.bin") as r:
                r.raise_for_status()
                n = sum(len(b) for b in r.iter_raw(MiB))
            assert n == size, n
            return time.perf_counter() - t0

        def curl_get() -> float:
            assert curl is not None
            return timed([curl, "-sSf", "-u", f"ownvault:{token}", "-o", "/dev/null",
                          dav + "stored.bin"])  # fmt: skip

        def put() -> float:
            path = fresh("put.bin")
            t = timed([*OV, "--vault", str(vault), "put", str(path)], stdout=subprocess.DEVNULL)
            path.unlink()
            return t

        def mount_cp() -> float:
            path = fresh("cp.bin")
            t = timed(["cp", str(path), str(mnt / "cp.bin")])
            path.unlink()
            return t

        def dav_put() -> float:
            path = fresh("davput.bin")
            t0 = time.perf_counter()
            with open(path, "rb") as f:
                r = client.put(dav + "davput.bin", content=iter(lambda: f.read(MiB), b""))
            t = time.perf_counter() - t0
            assert r.status_code in (201, 204), r.text
            path.unlink()
            return t

        def curl_put() -> float:
            assert curl is not None
            path = fresh("curlput.bin")
            t = timed([curl, "-sSf", "-u", f"ownvault:{token}", "-T", str(path),
                       dav + "curlput.bin"], stdout=subprocess.DEVNULL)  # fmt: skip
            path.unlink()
            return t

        ls_mount: list[Proc] = []

        def ls_cold() -> float:
            ls_mount.append(Proc([*OV, "--vault", str(vault), "mount", "--read-only",
                                  str(lsmnt)], work / "lsmount.err"))  # fmt: skip
            drop_caches()
            return timed(["ls", "-R", str(lsmnt / "tree")], stdout=subprocess.DEVNULL)

        def ls_warm() -> float:
            try:
                return timed(["ls", "-R", str(lsmnt / "tree")], stdout=subprocess.DEVNULL)
            finally:
                ls_mount.pop().stop(lsmnt)

        stack.callback(lambda: [p.stop(lsmnt) for p in ls_mount])
        cases: dict[str, Callable[[], float]] = {
            "get": get,
            "mount_cat": mount_cat,
            "dav_get_httpx": dav_get,
            **({"dav_get_curl": curl_get} if curl else {}),
            "put": put,
            "mount_cp": mount_cp,
            "dav_put_httpx": dav_put,
            **({"dav_put_curl": curl_put} if curl else {}),
            "ls_R_cold": ls_cold,
            "ls_R_warm": ls_warm,
        }

        def forget() -> None:  # after each round: the written names go, untimed
            for name in written:
                client.delete(dav + name)
            written.clear()

        def round_of(name: str, case: Callable[[], float]) -> Callable[[], float]:
            def one() -> float:
                if name in READS:  # writes drop after making their file, ls_R_cold itself
                    drop_caches()
                t = case()
                print(f"  {name:14} {t:7.2f} s", file=sys.stderr, flush=True)
                if name == "ls_R_warm":
                    forget()
                return t

            return one

        seconds = interleave({n: round_of(n, c) for n, c in cases.items()}, args.rounds)
        report(seconds, size_mib, files, args.rounds, serve.proc.pid)


def report(
    seconds: dict[str, list[float]], size_mib: int, files: int, rounds: int, serve_pid: int
) -> None:
    out: dict[str, object] = {"size_mib": size_mib, "files": files, "rounds": rounds,
                              "cores": os.cpu_count(), "seconds": {}, "ratios": {}}  # fmt: skip
    print(f"\n{size_mib} MiB, {rounds} interleaved rounds, {os.cpu_count()} cores shared with "
          "other work; seconds (median, range):")  # fmt: skip
    for name, values in seconds.items():
        s = summary(values)
        out["seconds"][name] = s.as_dict()  # type: ignore[index]
        rate = "" if name.startswith("ls") else f"  {size_mib / s.median:7.1f} MiB/s"
        print(f"  {name:14} {s.text(' s')}{rate}")
    print("ratios round by round (> 1: faster than the CLI command):")
    verdicts: list[tuple[str, Summary, str]] = []
    for name, base, target in (
        ("mount_cat", "get", READ_TARGET),
        ("dav_get_httpx", "get", READ_TARGET),
        ("dav_get_curl", "get", READ_TARGET),
        ("mount_cp", "put", WRITE_TARGET),
        ("dav_put_httpx", "put", None),
        ("dav_put_curl", "put", None),
    ):
        if name not in seconds:
            continue
        # speed ratio: base seconds / case seconds, each pair from the same round
        r = ratio(seconds[base], seconds[name])
        out["ratios"][f"{name}_vs_{base}"] = r.as_dict()  # type: ignore[index]
        goal = "" if target is None else f" (target >= {target:.2f})"
        verdict = "" if target is None else ("MET" if r.median >= target else "MISSED")
        print(f"  {name:14} / {base}: {r.text(' x')}{goal} {verdict}")
        if target is not None:
            verdicts.append((f"{name} >= {target:.0%} of {base}", r, verdict))
    for name in ("ls_R_cold", "ls_R_warm"):
        s = summary(seconds[name])
        verdict = "MET" if s.median < LS_TARGET_S else "MISSED"
        label = f"{name} of {files} files < {LS_TARGET_S:g} s"
        if files != 10_000:
            label += " (target is for 10,000 files)"
        verdicts.append((label, s, verdict))
    print("targets (by the median):")
    for label, s, verdict in verdicts:
        print(f"  {verdict:6} {label}: {s.text()}")
    status = Path(f"/proc/{serve_pid}/status").read_text().splitlines()
    out["serve_vmhwm_kib"] = int(next(ln for ln in status if ln.startswith("VmHWM")).split()[1])
    out["targets"] = {label: verdict for label, _s, verdict in verdicts}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
