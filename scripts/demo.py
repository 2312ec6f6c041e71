"""`make demo`: a vault on the embedded default providers, end to end, with the real CLI.

Creates a throwaway vault (six local folders, any 3 of 6 shares), stores sample files,
reads them back byte-identical, loses two providers, reads again, and prints the health.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def ov(vault: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "ownvault", "--vault", str(vault), *args]
    print("$ ownvault " + " ".join(args), flush=True)
    out = subprocess.run(
        cmd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OWNVAULT_PASSPHRASE": "demo passphrase"},
    )
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    return out.stdout


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ownvault-demo-"))
    vault = work / "vault"
    samples = work / "samples"
    (samples / "health").mkdir(parents=True)
    (samples / "photos").mkdir()
    (samples / "health" / "bloodwork-2026.txt").write_text("hemoglobin 14.1 g/dL\n")
    (samples / "photos" / "beach.raw").write_bytes(os.urandom(20 * 1024 * 1024))
    (samples / "README.txt").write_text("my files, my keys\n")
    ov(vault, "init", "--phrase-file", str(work / "recovery-phrase.txt"))
    ov(vault, "put", str(samples), "--tag", "personal")
    ov(vault, "ls")
    ov(vault, "get", "samples", "-o", str(work / "restored"))
    assert not filecmp.dircmp(samples, work / "restored").diff_files
    assert (work / "restored" / "photos" / "beach.raw").read_bytes() == (
        samples / "photos" / "beach.raw"
    ).read_bytes()
    print("restored tree is byte-identical")
    for lost in ("local-2", "local-5", "local-6"):
        shutil.rmtree(vault / "providers" / lost)
    print("removed three of six provider folders (local-2, local-5, local-6)")
    ov(vault, "get", "samples/photos/beach.raw", "-o", str(work / "beach-again.raw"))
    assert (work / "beach-again.raw").read_bytes() == (
        samples / "photos" / "beach.raw"
    ).read_bytes()
    print("still readable from the remaining three")
    ov(vault, "du")
    subprocess.run(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), "check"],
        env={**os.environ, "OWNVAULT_PASSPHRASE": "demo passphrase"},
    )
    print(f"\ndemo vault left at {vault} (passphrase: 'demo passphrase')")


if __name__ == "__main__":
    main()
