"""The tools bench/vault.py compares, as real processes: ownvault, borg and restic.

Each tool is driven the same way: ``init`` a fresh repository (untimed), ``put`` a path,
``get`` it back into an empty folder; ``run`` times one command and reads its peak RSS
from ``wait4``. Modes, chosen so each peer runs in its fastest correct mode with the same
compression as ownvault (none: ownvault does not compress):

* borg 1.2: ``borg create --compression none``, once with ``--encryption=repokey``
  (AES-CTR + HMAC-SHA256, fastest on CPUs with SHA extensions) and once with
  ``repokey-blake2`` (AES-CTR + keyed BLAKE2b); the benchmark reports both and compares
  ownvault with whichever is faster in each case.
* restic 0.14: repository format 2 (``init --repository-version 2``: the current format, the
  default from restic 0.16) with ``backup --compression off``; format 1, this version's
  default, cannot compress at all, so both mean "no compression" and format 2 is what a new
  repository gets today.

Caches (borg's files and chunks caches, restic's cache) live under the benchmark's work
folder (``BORG_BASE_DIR``, ``RESTIC_CACHE_DIR``), so peers keep their files caches between
a first and a second backup, as they do for users, and nothing is left in ``$HOME``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Borg", "Ownvault", "Ran", "Restic", "Tool", "bench_env", "run"]

K, N = 3, 6


def bench_env(work: Path) -> dict[str, str]:
    """The environment of every tool: ownvault runs with its bytecode cache (in ``work``,
    not in the tree), as an installed package has it and as Debian's borg has its own;
    ``PYTHONDONTWRITEBYTECODE`` (set in some shells) made every ownvault command compile
    its sources again, 0.25 s or more per command.

    ``ownvault`` is the source tree this benchmark is in (its ``src`` first on
    ``PYTHONPATH``), not whichever tree the interpreter has installed: a worktree's benchmark
    measured the installed main's code, and a relative ``PYTHONPATH=src`` was resolved
    against each tool's own working folder. Entries already on ``PYTHONPATH`` follow,
    made absolute."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    inherited = [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    own = str(Path(__file__).resolve().parent.parent / "src")
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(dict.fromkeys([own, *inherited])),
        "PYTHONPYCACHEPREFIX": str(work / "pycache"),
        "OWNVAULT_PASSPHRASE": "bench passphrase",
        "BORG_PASSPHRASE": "bench",
        "RESTIC_PASSWORD": "bench",
        "BORG_BASE_DIR": str(work / "borg-home"),
        "RESTIC_CACHE_DIR": str(work / "restic-cache"),
    }


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):  # a process may end while we look
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def _pss(pid: int) -> int:
    """Proportional set size (bytes) of a process tree: shared pages are counted once."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


@dataclass
class Ran:
    """One finished command: wall seconds, peak RSS of the process itself (``wait4``: with
    RUSAGE_BOTH semantics, the largest of it and its reaped children, never their sum) and
    the peak PSS of its whole process tree, sampled every 50 ms (worker processes summed);
    ``cpu``: user + system seconds of the process and its reaped children."""

    seconds: float
    rss: int
    tree_pss: int
    cpu: float = 0.0

    @property
    def peak(self) -> int:
        return max(self.rss, self.tree_pss)


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> Ran:
    """Run one child process to the end; raises if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _pss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stderr is not None
    try:
        err = proc.stderr.read()  # read to the end before wait4: a chatty child cannot block
        _pid, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): leave no child behind
        proc.kill()
        proc.wait()
        raise
    finally:
        done.set()
        sampler.join()
    elapsed = time.perf_counter() - t0
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return Ran(elapsed, usage.ru_maxrss * 1024, peak[0], usage.ru_utime + usage.ru_stime)


class Tool:
    """One backup tool: fresh repositories, timed puts and gets."""

    name = ""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.puts = 0

    def init(self, repo: Path) -> None:
        if repo.exists():
            shutil.rmtree(repo)
        self.puts = 0
        subprocess.run(self.init_cmd(repo), env=self.env, check=True, capture_output=True)

    def put(self, repo: Path, src: Path) -> Ran:
        self.puts += 1
        cmd, cwd = self.put_cmd(repo, src)
        return run(cmd, self.env, cwd)

    def get(self, repo: Path, src: Path, dest: Path) -> tuple[Ran, Path]:
        """Restore ``src`` (as last put) under ``dest``; also returns where it landed."""
        cmd, cwd, out = self.get_cmd(repo, src, dest)
        return run(cmd, self.env, cwd), out

    def init_cmd(self, repo: Path) -> list[str]:
        raise NotImplementedError

    def put_cmd(self, repo: Path, src: Path) -> tuple[list[str], Path | None]:
        raise NotImplementedError

    def get_cmd(self, repo: Path, src: Path, dest: Path) -> tuple[list[str], Path | None, Path]:
        raise NotImplementedError


class Ownvault(Tool):
    """``label``/``src``: another source tree of ownvault (its ``src`` folder first on
    PYTHONPATH), named ``ownvault@LABEL``, for A/B rounds of two versions of the code."""

    name = "ownvault"

    def __init__(self, env: dict[str, str], label: str = "", src: Path | None = None) -> None:
        if src is not None:
            env = {**env, "PYTHONPATH": str(src / "src")}
        super().__init__(env)
        if label:
            self.name = f"ownvault@{label}"

    def ov(self, repo: Path, *args: str) -> list[str]:
        return [sys.executable, "-m", "ownvault", "--vault", str(repo), *args]

    def init_cmd(self, repo: Path) -> list[str]:
        phrase = repo.with_name(repo.name + ".phrase")
        phrase.unlink(missing_ok=True)
        return self.ov(repo, "init", "--phrase-file", str(phrase), "--k", str(K), "--n", str(N))

    def put_cmd(self, repo: Path, src: Path) -> tuple[list[str], Path | None]:
        return self.ov(repo, "put", str(src)), None

    def get_cmd(self, repo: Path, src: Path, dest: Path) -> tuple[list[str], Path | None, Path]:
        return self.ov(repo, "get", src.name, "-o", str(dest / src.name)), None, dest / src.name


class Borg(Tool):
    def __init__(self, env: dict[str, str], encryption: str) -> None:
        super().__init__(env)
        self.encryption = encryption
        self.name = f"borg {encryption}"

    def init_cmd(self, repo: Path) -> list[str]:
        return ["borg", "init", f"--encryption={self.encryption}", str(repo)]

    def put_cmd(self, repo: Path, src: Path) -> tuple[list[str], Path | None]:
        archive = f"{repo}::a{self.puts}"
        return ["borg", "create", "--compression", "none", archive, src.name], src.parent

    def get_cmd(self, repo: Path, src: Path, dest: Path) -> tuple[list[str], Path | None, Path]:
        return ["borg", "extract", f"{repo}::a{self.puts}"], dest, dest / src.name


class Restic(Tool):
    name = "restic"

    def init_cmd(self, repo: Path) -> list[str]:
        return ["restic", "--repo", str(repo), "init", "--repository-version", "2"]

    def put_cmd(self, repo: Path, src: Path) -> tuple[list[str], Path | None]:
        return ["restic", "--repo", str(repo), "backup", "--compression", "off", str(src)], None

    def get_cmd(self, repo: Path, src: Path, dest: Path) -> tuple[list[str], Path | None, Path]:
        cmd = ["restic", "--repo", str(repo), "restore", "latest", "--target", str(dest)]
        return cmd, None, dest / str(src).lstrip("/")
