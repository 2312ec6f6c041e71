"""Vault benchmark (issue 15): put and get against this machine's ceilings and against borg
and restic, every figure from interleaved rounds (bench/rounds.py: medians with ranges,
ratios taken round by round in the same run).

What it measures, all real processes on one machine:

1. Ceilings (bench/ceilings.py, in a child process so this one stays small): each stage of
   the pipeline on warm reused buffers (FastCDC with the vault's parameters, keyed BLAKE3,
   SHA-256, AES-256-GCM per chunk, Merkle leaves, ``ErasureCode`` and raw ISA-L), and the disk
   as shares are written (buffered + fsync into a warm folder, O_DIRECT + fsync) and read
   (O_DIRECT). From them, per round, the pipeline ceilings: the per-byte CPU work of a put
   (or a get) spread over the cores, against the disk (the file read once and its shares
   written n/k times for a put, k data shares read and the file written for a get: one
   disk, whose reads and writes take turns); the lower one is the ceiling, and every
   ownvault figure is printed as a fraction of it (round i of the ceilings paired with
   round i of the case).
2. A random file of ``--size-mib`` (1 GiB) put and got back, from a fresh vault or repository
   in every round, by ownvault, borg (repokey and repokey-blake2; bench/peers.py says why these
   modes) and restic; ``--files`` (10,000) files of 1-16 KiB put and got the same way; an
   unchanged re-put of a tree of 64 files of ``--size-mib`` in total (each tool backs the tree
   up once, untimed, its files 2.5 s old, past the files caches' too-recent window, then every
   round times one more put: borg's, restic's and ownvault's files caches skip unchanged
   files); peak RSS (``wait4``)
   of every put and get. The page cache is dropped before every timed command (as root),
   for every tool alike. Every get is checked byte for byte against its source.
3. Startup: ``ownvault ls`` and ``ownvault du`` on a small vault against ``python -c pass``
   (10 interleaved runs, page cache warm). The target is judged on a vault with the real
   passphrase KDF (what a user runs); the same commands also run on a vault initialised
   with ``OWNVAULT_INSECURE_FAST_KDF=1`` (test-only; the cost is stored in the keystore).
   ``ls`` and ``du`` no longer unlock the keystore, so both should give the same times.
   In the same rounds, the bare put of the 1 GiB file (``bench/putbare.py``: the put's
   per-byte work alone, the same library calls in two processes, no engine) as ``bare put``.
   Every put of that file is printed with its CPU seconds per GiB (user + system, its worker
   processes included) and the speed that CPU would allow with every core busy from start
   to end; ownvault's put against the bare put and against that speed.
4. ``--huge-gib N`` (default 0: skipped; the issue's target is 10): one put and one get of an
   N GiB file, reporting peak RSS and seconds only.

Then the issue's targets next to the ratios, each MET or MISSED by a factor.

Usage: ``python bench/vault.py [--rounds 5] [--size-mib 1024] [--files 10000]
[--huge-gib 0] [--quick] [--only file|small|reput ...] [--ab LABEL=DIR ...] [--json OUT]``;
``--quick`` is 256 MiB, 2,000 files, 2 rounds. ``--only`` runs just those cases (no ceilings,
no startup); ``--ab main=/tmp/main`` adds the ownvault of another source tree (e.g. ``git
archive main``) as ``ownvault@main`` to every round and prints ownvault / ownvault@main
round by round: an A/B of two versions of the code with the peers in the same run.
Needs borg and restic on PATH (``--install-peers`` installs them from Debian as root).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw

from ownvault.core.crypto import Argon2Params
from ownvault.core.erasure import ErasureCode
from ownvault.engine.store.filescache import GRANULARITY_NS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import Borg, Ownvault, Ran, Restic, Tool, bench_env, run
from rounds import interleave, ratio, summary
from targets import TARGETS, judge

MiB = 1 << 20
K, N = 3, 6
HERE = Path(__file__).resolve().parent
SECTIONS = ("file", "small", "reput")


def drop_caches() -> None:
    """Write back and drop the page cache (root only; a no-op otherwise, said in the output)."""
    os.sync()
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
        f.write(os.urandom(size % MiB))


def small_tree(root: Path, files: int) -> int:
    total = 0
    for i in range(files):
        d = root / f"d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        size = 1024 + (i * 7919) % (15 * 1024 + 1)
        (d / f"f{i:05d}.bin").write_bytes(os.urandom(size))
        total += size
    return total


def digest(path: Path) -> str:
    """SHA-256 over a file, or over a tree's relative paths and contents."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if f != path else "").encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(8 * MiB):
                h.update(block)
    return h.hexdigest()


def ceilings(work: Path, rounds: int, mib: int) -> dict[str, list[float]]:
    out = subprocess.run(
        [sys.executable, str(HERE / "ceilings.py"), "--rounds", str(rounds), "--mib", str(mib),
         "--workdir", str(work)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, list[float]] = json.loads(out.stdout)
    return result


def pipeline(c: dict[str, list[float]], cores: int) -> dict[str, list[float]]:
    """Per round: the put and get ceilings (MB/s of file bytes) and their parts."""
    x = N / K
    out: dict[str, list[float]] = {}
    for r in range(len(c["fastcdc"])):

        def s(name: str, r: int = r) -> float:  # seconds per MB of one stage
            return 1 / c[name][r]

        put_cpu = 1 / (
            s("fastcdc") + s("blake3_keyed") + s("sha256") + s("aes_gcm_seal")
            + s("isal_encode") + x * s("merkle_leaves")
        )  # fmt: skip
        put_cpu_pyeclib = 1 / (1 / put_cpu - s("isal_encode") + s("erasure_encode"))
        get_cpu = 1 / (s("merkle_leaves") + s("aes_gcm_open"))
        degraded_cpu = 1 / (1 / get_cpu + s("isal_decode_one_lost"))
        write = max(c["disk_write_buffered"][r], c["disk_write_direct"][r])
        # The file read (cold: the cache is dropped) and the shares written are on one disk
        # here, and its reads and writes take turns (dd on this VM: 1.14 s reading a GiB of
        # shares, 0.88 s writing a GiB, 1.88 s both at once), so their times add: a put
        # reads each byte once and writes it n/k times, a get reads it once (k data shares)
        # and writes it once.
        put_disk = 1 / (s("disk_read_direct") + x / write)
        get_disk = 1 / (s("disk_read_direct") + 1 / write)
        rows = {
            "put_cpu_one_core": put_cpu,
            "put_cpu_all_cores": cores * put_cpu,
            "put_cpu_all_cores_with_ErasureCode": cores * put_cpu_pyeclib,
            "put_disk": put_disk,
            "put": min(cores * put_cpu, put_disk),
            "get_cpu_all_cores": cores * get_cpu,
            "get_cpu_all_cores_one_share_lost": cores * degraded_cpu,
            "get_disk": get_disk,
            "get": min(cores * get_cpu, get_disk),
        }
        for k, v in rows.items():
            out.setdefault(k, []).append(v)
    return out


class Section:
    """One table of cases run in interleaved rounds; keeps figures and peak memory per case."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.cases: dict[str, Callable[[], float]] = {}
        self.rss: dict[str, list[int]] = {}
        self.pss: dict[str, list[int]] = {}
        self.figures: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}  # CPU seconds (user + system) per round

    def timed(self, name: str, step: Callable[[], Ran], amount: float) -> None:
        """A case whose figure is ``amount`` / seconds (MB/s or files/s)."""
        self.rss[name], self.pss[name], self.cpu[name] = [], [], []

        def case() -> float:
            ran = step()
            self.cpu[name].append(ran.cpu)
            self.rss[name].append(ran.rss)
            self.pss[name].append(ran.tree_pss)
            return amount / ran.seconds

        self.cases[name] = case

    def run(self) -> None:
        # A tool's cases stay together and in order (its get reads what its put wrote);
        # the tools take turns at going first.
        self.figures = interleave(self.cases, self.rounds, group=tool_of)


def tool_of(case: str) -> str:
    """The tool of a case: ``borg repokey put`` -> ``borg repokey``."""
    return case.rsplit(" ", 1)[0]


def put_get(sec: Section, tool: Tool, work: Path, src: Path, amount: float, check: str) -> None:
    """Two cases: a put into a fresh repository, then a get of it (checked, then removed)."""
    repo, dest = work / f"repo-{tool.name.replace(' ', '-')}", work / "out"

    def put() -> Ran:
        tool.init(repo)
        drop_caches()
        return tool.put(repo, src)

    def get() -> Ran:
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        drop_caches()
        ran, out = tool.get(repo, src, dest)
        if digest(out) != check:
            raise RuntimeError(f"{tool.name} get of {src.name} is not byte-identical")
        shutil.rmtree(dest)
        shutil.rmtree(repo)
        return ran

    sec.timed(f"{tool.name} put", put, amount)
    sec.timed(f"{tool.name} get", get, amount)


def bare_case(sec: Section, work: Path, src: Path, amount: float, env: dict[str, str]) -> None:
    """The bare put (``putbare.py``: the put's per-byte work alone) as the case ``bare put``."""
    out = work / "bare"

    def put() -> Ran:
        shutil.rmtree(out, ignore_errors=True)
        drop_caches()
        return run([sys.executable, str(HERE / "putbare.py"), str(src), str(out)], env)

    sec.timed("bare put", put, amount)


def reput(sec: Section, tool: Tool, work: Path, src: Path, amount: float) -> Path:
    """One untimed first put; the case is every further put of the unchanged tree."""
    repo = work / f"reput-{tool.name.replace(' ', '-')}"
    tool.init(repo)
    tool.put(repo, src)

    def again() -> Ran:
        drop_caches()
        return tool.put(repo, src)

    sec.timed(f"{tool.name} re-put", again, amount)
    return repo


def startup(work: Path, env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """``ls``/``du`` on a small vault with the real KDF (what users get, judged) and on one
    whose keystore has the test-only fast KDF (the same commands without Argon2id's cost)."""
    tree = work / "startup-tree"
    small_tree(tree, 50)
    cmds: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
    vaults = []
    for suffix, extra in (("", {}), (" (fast test KDF)", {"OWNVAULT_INSECURE_FAST_KDF": "1"})):
        ov = Ownvault({**env, **extra})  # the KDF cost is chosen at init, stored in the keystore
        vault = work / f"small-vault{len(vaults)}"
        ov.init(vault)
        ov.put(vault, tree)
        vaults.append(vault)
        cmds[f"ownvault ls{suffix}"] = ov.ov(vault, "ls")
        cmds[f"ownvault du{suffix}"] = ov.ov(vault, "du")
    cases = {name: (lambda c=cmd: run(c, env).seconds) for name, cmd in cmds.items()}
    out = interleave(cases, runs)
    for p in [*vaults, tree]:
        shutil.rmtree(p)
    return out


def kdf_seconds() -> float:
    p = Argon2Params()
    t0 = time.perf_counter()
    hash_secret_raw(b"bench", b"0" * 16, time_cost=p.time_cost, memory_cost=p.memory_cost_kib,
                    parallelism=p.parallelism, hash_len=32, type=Type.ID)  # fmt: skip
    return time.perf_counter() - t0


def huge(work: Path, env: dict[str, str], gib: int) -> dict[str, float]:
    ov, src, vault, dest = Ownvault(env), work / "huge.bin", work / "huge-vault", work / "out"
    random_file(src, gib * 1024 * MiB)
    check = digest(src)
    ov.init(vault)
    drop_caches()
    put = ov.put(vault, src)
    dest.mkdir()
    drop_caches()
    get, out = ov.get(vault, src, dest)
    if digest(out) != check:
        raise RuntimeError("ownvault get of the huge file is not byte-identical")
    src.unlink()
    shutil.rmtree(vault)
    shutil.rmtree(dest)
    return {"gib": gib, "put_s": put.seconds, "get_s": get.seconds,
            "put_peak_MB": put.peak / 1e6, "get_peak_MB": get.peak / 1e6}  # fmt: skip


def tools(env: dict[str, str], ab: dict[str, Path]) -> list[Tool]:
    out: list[Tool] = [Ownvault(env)]
    out += [Ownvault(env, label, src) for label, src in ab.items()]
    if shutil.which("borg"):
        out += [Borg(env, "repokey"), Borg(env, "repokey-blake2")]
    if shutil.which("restic"):
        out.append(Restic(env))
    return out


def install_peers() -> None:
    if os.geteuid() == 0 and not (shutil.which("borg") and shutil.which("restic")):
        subprocess.run(["apt-get", "install", "-y", "-q", "borgbackup", "restic"], check=False,
                       capture_output=True)  # fmt: skip


def _ab(specs: list[str]) -> dict[str, Path]:
    """``--ab LABEL=DIR`` options: LABEL -> a source tree of ownvault (with ``src/``)."""
    out = {}
    for spec in specs:
        label, sep, src = spec.partition("=")
        if not sep or not label or not (Path(src) / "src" / "ownvault").is_dir():
            raise SystemExit(f"--ab wants LABEL=DIR with DIR/src/ownvault: {spec!r}")
        out[label] = Path(src).resolve()
    return out


def section(r: dict[str, Any], key: str, ts: list[Tool], work: Path, src: Path, count: float,
            amount: float) -> None:  # fmt: skip
    """Put and get ``src`` with every tool in interleaved rounds, into ``r[key]``."""
    sec = Section(r["rounds"])
    check = digest(src)
    for t in ts:
        put_get(sec, t, work, src, amount, check)
    if key == "file":
        bare_case(sec, work, src, amount, ts[0].env)
    sec.run()
    fig = "files_per_s" if key == "small" else "MBps"
    r[key] = {"files": count, "bytes": r.pop("_bytes"), fig: sec.figures, "rss": sec.rss,
              "tree_pss": sec.pss, "cpu_s": sec.cpu}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--huge-gib", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="256 MiB, 2,000 files, 2 rounds")
    ap.add_argument("--only", action="append", choices=SECTIONS,
                    help="run only these cases (repeatable; no ceilings, no startup)")  # fmt: skip
    ap.add_argument("--ab", action="append", default=[], metavar="LABEL=DIR",
                    help="also run the ownvault in source tree DIR as ownvault@LABEL")  # fmt: skip
    ap.add_argument("--install-peers", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.quick:
        args.size_mib, args.files, args.rounds = 256, 2000, 2
    if args.install_peers:
        install_peers()
    only = set(args.only or SECTIONS)
    ab = _ab(args.ab)
    cores = os.cpu_count() or 1
    # SIGTERM unwinds like Ctrl-C, so the ``finally`` below removes the work folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="ownvault-bench-"))
    env = bench_env(work)
    r: dict[str, Any] = {
        "cores": cores, "rounds": args.rounds, "size_mib": args.size_mib, "files": args.files,
        "drop_caches": os.geteuid() == 0, "peers": {},
    }  # fmt: skip
    try:
        if args.only is None:
            c = ceilings(work, args.rounds, min(256, args.size_mib))
            r["ceilings_MBps"] = c
            r["erasure_engine"] = getattr(ErasureCode(K, N), "engine_name", "pyeclib")
            r["pipeline_MBps"] = pipeline(c, cores)
        ts = tools(env, ab)
        r["peers"] = {t.name: t.__class__.__name__ for t in ts[1:]}
        size = args.size_mib * MiB

        if "file" in only:
            big = work / "big.bin"
            random_file(big, size)
            r["_bytes"] = size
            section(r, "file", ts, work, big, 1, size / 1e6)
            big.unlink()

        if "small" in only:
            tree = work / "tree"
            r["_bytes"] = small_tree(tree, args.files)
            section(r, "small", ts, work, tree, args.files, args.files)
            shutil.rmtree(tree)

        if "reput" in only:
            tree = work / "tree64"
            tree.mkdir()
            for i in range(64):
                random_file(tree / f"f{i:02d}.bin", size // 64)
            # Older than the files caches' "changed too recently to trust" window (ownvault:
            # GRANULARITY_NS), as the files of a real re-put are: else the first timed round
            # reads the files written last again.
            time.sleep(GRANULARITY_NS / 1e9 + 0.5)
            sec = Section(args.rounds)
            repos = [reput(sec, t, work, tree, size / 1e6) for t in ts]
            sec.run()
            r["reput"] = {"files": 64, "bytes": size, "MBps": sec.figures, "rss": sec.rss,
                          "tree_pss": sec.pss}  # fmt: skip
            for p in [*repos, tree]:
                shutil.rmtree(p)

        if args.only is None:
            r["startup_s"] = startup(work, env, 10)
            r["kdf_s"] = kdf_seconds()
        if args.huge_gib:
            r["huge"] = huge(work, env, args.huge_gib)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r["judged"] = judge(r, TARGETS)
    figures = [("ceilings_MBps", r.get("ceilings_MBps")), ("pipeline_MBps", r.get("pipeline_MBps")),
               ("file_MBps", r.get("file", {}).get("MBps")),
               ("small_files_per_s", r.get("small", {}).get("files_per_s")),
               ("reput_MBps", r.get("reput", {}).get("MBps")), ("startup_s", r.get("startup_s"))]  # fmt: skip
    r["summaries"] = {
        key: {name: summary(v).as_dict() for name, v in figs.items()}
        for key, figs in figures
        if figs is not None
    }
    report(r)
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))


def med(values: list[float], unit: str = "", digits: int = 0) -> str:
    return summary(values).text(unit, digits)


def report(r: dict[str, Any]) -> None:
    print(f"== ownvault vault benchmark: {r['cores']} cores, {r['rounds']} interleaved rounds, "
          f"medians (range) ==")  # fmt: skip
    if not r["drop_caches"]:
        print("(not root: the page cache was NOT dropped between cases)")
    pc = r.get("pipeline_MBps")
    if pc is not None:
        print(f"\nceilings, one core, warm buffers (MB/s; ErasureCode's engine: "
              f"{r['erasure_engine']}):")  # fmt: skip
        for name, v in r["ceilings_MBps"].items():
            print(f"  {name:28s} {med(v)}")
        print(f"\npipeline ceilings (MB/s of file bytes, k={K} n={N}, {r['cores']} cores):")
        for name, v in pc.items():
            print(f"  {name:38s} {med(v)}")
    sections = [
        ("file", f"1 file of {r['size_mib']} MiB", "MBps", " MB/s"),
        ("small", f"{r['files']:,} files of 1-16 KiB", "files_per_s", " files/s"),
        ("reput", f"unchanged re-put of 64 files, {r['size_mib']} MiB", "MBps", " MB/s"),
    ]
    sections = [row for row in sections if row[0] in r]
    for key, title, fig, unit in sections:
        s = r[key]
        print(f"\n{title}:")
        for name, v in s[fig].items():
            rss, pss = max(s["rss"][name]) / 1e6, max(s["tree_pss"][name]) / 1e6
            line = f"  {name:28s} {med(v, unit):36s} RSS {rss:4,.0f} PSS {pss:4,.0f} MB"
            if name.startswith("ownvault") and pc is not None:
                op = "get" if name.endswith(" get") else "put"
                mbps = [x * s["bytes"] / s["files"] / 1e6 for x in v] if key == "small" else v
                f = ratio(mbps, pc[op])
                line += f"  {f.median:.1%} ({f.low:.1%}-{f.high:.1%}) of the {op} ceiling"
            print(line)
        for name, v in s[fig].items():  # A/B: this tree's ownvault against each other one
            tool, _, op = name.partition(" ")
            if tool.startswith("ownvault@") and f"ownvault {op}" in s[fig]:
                print(
                    f"  {'ownvault / ' + name:38s} {ratio(s[fig]['ownvault ' + op], v).text('x')}"
                )
    if "file" in r:
        cpu_report(r)
    print("\nborg's modes, repokey / repokey-blake2 round by round (> 1: repokey is faster):")
    for key, _title, fig, _unit in sections:
        figs = r[key][fig]
        for op in ("put", "get", "re-put"):
            a, b = f"borg repokey {op}", f"borg repokey-blake2 {op}"
            if a in figs and b in figs:
                print(f"  {key + ' ' + op:28s} {ratio(figs[a], figs[b]).text('x')}")
    if "startup_s" in r:
        print("\nstartup (seconds, warm cache):")
        for name, v in r["startup_s"].items():
            print(f"  {name:28s} {med(v, ' s', 3)}")
        print(f"  (Argon2id at the default cost, included in ls/du: {r['kdf_s']:.3f} s)")
    if "huge" in r:
        h = r["huge"]
        print(f"\nhuge file, {h['gib']} GiB, one run (peak = RSS or tree PSS, the larger): put "
              f"{h['put_s']:.0f} s, peak {h['put_peak_MB']:,.0f} MB; get {h['get_s']:.0f} s, "
              f"peak {h['get_peak_MB']:,.0f} MB")  # fmt: skip
    print("\ntargets (issue 15), ratios round by round:")
    for row in r["judged"]:
        print(f"  {row['target']:34s} {row['verdict']:17s} {row['value']}")


def cpu_report(r: dict[str, Any]) -> None:
    """The puts of the file section by their CPU: seconds per GiB (user + system, workers
    included), and the speed that CPU allows with every core busy from start to end."""
    figs, cpu, size = r["file"]["MBps"], r["file"]["cpu_s"], r["file"]["bytes"]
    print(
        f"\nthe puts of 1 file by CPU (user + system per GiB; MB/s with {r['cores']} cores busy):"
    )
    for name in (n for n in figs if n.endswith(" put")):
        per_gib = [c * 2**30 / size for c in cpu[name]]
        bound = [size / (c / r["cores"]) / 1e6 for c in cpu[name]]
        print(f"  {name:28s} {med(per_gib, ' s/GiB', 2):34s} at most {med(bound, ' MB/s')}")
    borg = [n for n in ("borg repokey put", "borg repokey-blake2 put") if n in figs]
    own = figs["ownvault put"]
    if "bare put" in figs:
        print(f"  {'ownvault put / bare put':28s} {ratio(own, figs['bare put']).text('x')}")
    bound = [size / (c / r["cores"]) / 1e6 for c in cpu["ownvault put"]]
    print(f"  {'ownvault put / its CPU bound':28s} {ratio(own, bound).text('x')}")
    if borg:
        fastest = max(borg, key=lambda n: summary(figs[n]).median)
        print(f"  {'its CPU bound / ' + fastest:28s} {ratio(bound, figs[fastest]).text('x')}")


if __name__ == "__main__":
    main()
