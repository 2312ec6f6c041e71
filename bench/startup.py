"""How long a short command takes, end to end: the target is ``ls`` and ``du`` under 0.3 s.

Usage: ``python bench/startup.py [--rounds 10]``. Each case is a fresh process running the
``ownvault`` entry point of this tree, in interleaved rounds (``bench/rounds.py``), with the
bytecode cache warm (as an installed package has it; the cache goes to a temporary
directory, not into the tree). Printed: ``python -c pass`` (the floor: the interpreter
itself), ``import ownvault.cli.app``, ``ls --help``, ``ls`` and ``du`` on a small vault
of six local folders whose keystore has the default Argon2id cost, the same on a vault made
with the test-only fast KDF, and the KDF alone. (``ls`` and ``du`` no longer unlock the
keystore, docs/design.md "Listing without the passphrase", so the two vaults should give the
same times; the KDF line shows what a command that unlocks pays on top.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rounds import interleave, summary

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ownvault.core.crypto import Argon2Params, argon2id  # noqa: E402 (after the path insert)

MAIN = "from ownvault.cli import main; main()"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ownvault-startupbench-"))
    try:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "PYTHONPYCACHEPREFIX": str(work / "pycache"),
            "OWNVAULT_PASSPHRASE": "startup bench",
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        fast = {**env, "OWNVAULT_INSECURE_FAST_KDF": "1"}

        def run(argv: list[str], environ: dict[str, str]) -> float:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, *argv], env=environ, check=True, stdout=subprocess.DEVNULL
            )
            return time.perf_counter() - start

        files = [work / f"file-{i}" for i in range(20)]
        for f in files:
            f.write_bytes(os.urandom(16 * 1024))
        for name, environ in (("real", env), ("fast", fast)):
            vault = str(work / name)
            run(["-c", MAIN, "--vault", vault, "init", "--phrase-file", vault + ".phrase"], environ)
            run(["-c", MAIN, "--vault", vault, "put", *map(str, files)], environ)

        def ov(*argv: str, environ: dict[str, str] = env) -> float:
            return run(["-c", MAIN, *argv], environ)

        def kdf() -> float:
            start = time.perf_counter()
            argon2id(b"startup bench", b"\0" * 16, Argon2Params())
            return time.perf_counter() - start

        cases = {
            "python -c pass (floor)": lambda: run(["-c", "pass"], env),
            "import ownvault.cli.app": lambda: run(["-c", "import ownvault.cli.app"], env),
            "ownvault ls --help": lambda: ov("ls", "--help"),
            "ownvault ls": lambda: ov("--vault", str(work / "real"), "ls"),
            "ownvault du": lambda: ov("--vault", str(work / "real"), "du"),
            "ownvault ls (fast KDF vault)": lambda: ov(
                "--vault", str(work / "fast"), "ls", environ=fast
            ),
            "ownvault du (fast KDF vault)": lambda: ov(
                "--vault", str(work / "fast"), "du", environ=fast
            ),
            "Argon2id, default cost (in process)": kdf,
        }
        for case in cases.values():  # warm the bytecode cache
            case()
        results = interleave(cases, args.rounds)
        print(f"start-up, {args.rounds} interleaved rounds (target: ls and du < 0.3 s)")
        for name, values in results.items():
            print(f"  {name:38} {summary(values).text(' s', 3)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
