"""The vault as a drive (issue 18): reading and writing through the FUSE mount and WebDAV
against `ownvault get`/`put` in the same run, and `ls -R` of a large tree through the mount.

Usage: ``python bench/drive.py [--size-mib 1024] [--files 10000]``. Needs root, /dev/fuse
and fuse3 for the mount parts (scripts/setup.d/drive.sh). Prints one JSON document:
seconds and MB/s of each way in and out, the ratios to `get`/`put`, and `ls -R` seconds.
Every command runs as a real process on loopback.
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
from pathlib import Path

import httpx

MiB = 1 << 20
ENV = {**os.environ, "OWNVAULT_PASSPHRASE": "bench passphrase", "OWNVAULT_INSECURE_FAST_KDF": "1"}
OV = [sys.executable, "-m", "ownvault"]


def ov(vault: Path, *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([*OV, "--vault", str(vault), *args], env=ENV, check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - t0


def timed(cmd: list[str], **kw: object) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - t0


def start(cmd: list[str], log: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    err = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"{cmd[4]} did not start: {log.read_text()}")
    return proc, json.loads(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=10_000)
    args = ap.parse_args()
    size = args.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="ownvault-bench-drive-"))
    out: dict[str, object] = {"size_mib": args.size_mib}
    try:
        vault = work / "vault"
        ov(vault, "init", "--phrase-file", str(work / "phrase"))
        for name in ("a.bin", "b.bin", "c.bin", "d.bin"):
            with open(work / name, "wb") as f:
                for _ in range(args.size_mib):
                    f.write(os.urandom(MiB))
        put = ov(vault, "put", str(work / "a.bin"))
        get = ov(vault, "get", "a.bin", "-o", str(work / "a.out"))
        (work / "a.out").unlink()
        out["put_s"], out["get_s"] = round(put, 2), round(get, 2)
        # WebDAV
        serve, doc = start([*OV, "--vault", str(vault), "serve", "--listen", "127.0.0.1:0"],
                           work / "serve.err")  # fmt: skip
        token = str(doc["ui"]).split("#token=", 1)[1]
        try:
            with httpx.Client(auth=("ownvault", token), timeout=600) as c:
                url = f"{doc['listening']}/dav/"
                t0 = time.perf_counter()
                with c.stream("GET", url + "a.bin") as r:
                    n = sum(len(b) for b in r.iter_bytes(MiB))
                assert n == size
                out["webdav_get_s"] = round(time.perf_counter() - t0, 2)
                t0 = time.perf_counter()
                with open(work / "b.bin", "rb") as f:
                    r = c.put(url + "b.bin", content=iter(lambda: f.read(MiB), b""))
                assert r.status_code == 201, r.text
                out["webdav_put_s"] = round(time.perf_counter() - t0, 2)
            out["serve_vmhwm_kib"] = int(
                next(ln for ln in Path(f"/proc/{serve.pid}/status").read_text().splitlines()
                     if ln.startswith("VmHWM")).split()[1]
            )  # fmt: skip
        finally:
            serve.terminate()
            serve.wait(30)
        # FUSE
        if os.geteuid() == 0 and os.path.exists("/dev/fuse") and shutil.which("fusermount3"):
            tree = work / "tree"
            for i in range(args.files):
                d = tree / f"d{i // 100:03d}"
                d.mkdir(parents=True, exist_ok=True)
                (d / f"f{i:05d}.txt").write_bytes(b"x" * (i % 100))
            ov(vault, "put", str(tree))
            mnt = work / "mnt"
            mnt.mkdir()
            mount, _ = start([*OV, "--vault", str(vault), "mount", str(mnt)], work / "mount.err")
            try:
                out["mount_read_s"] = round(
                    timed(["cat", str(mnt / "a.bin")], stdout=subprocess.DEVNULL), 2
                )
                out["mount_write_s"] = round(timed(["cp", str(work / "c.bin"), str(mnt)]), 2)
                out["ls_R_s"] = round(
                    timed(["ls", "-R", str(mnt / "tree")], stdout=subprocess.DEVNULL), 2
                )
                out["ls_lR_s"] = round(
                    timed(["ls", "-lR", str(mnt / "tree")], stdout=subprocess.DEVNULL), 2
                )
            finally:
                subprocess.run(["fusermount3", "-u", str(mnt)], check=False)
                mount.wait(60)
        put_s, get_s = float(out["put_s"]), float(out["get_s"])  # type: ignore[arg-type]
        for k in ("webdav_get_s", "mount_read_s"):
            if k in out:
                out[k.replace("_s", "_vs_get")] = round(get_s / float(out[k]), 2)  # type: ignore[arg-type]
        for k in ("webdav_put_s", "mount_write_s"):
            if k in out:
                out[k.replace("_s", "_vs_put")] = round(put_s / float(out[k]), 2)  # type: ignore[arg-type]
        print(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
