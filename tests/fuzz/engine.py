"""Run the fuzz targets under atheris (libFuzzer, coverage-guided).

    python -m tests.fuzz.engine [--seconds N] [--save] [--jobs J] [TARGET ...]

One process imports and instruments ``ownvault`` once, then forks one child per target
(libFuzzer runs once per process): each child starts from a fresh corpus made of the
target's seeds (valid encodings from the project's encoders) and its stored corrupt
fixtures (``tests/fixtures/corrupt/<target>/``), fuzzes for ``--seconds`` with a per-input
time limit and an RSS limit, and stops at the first crash. The summary (one JSON line per
target: executions, seconds, crash file) goes to stdout; the exit status is 1 if any
target crashed, timed out or ran out of memory.

``--save`` (``make fuzz``) copies each crashing input into the target's fixture folder,
where the corpus replay test (``tests/fuzz/test_corpus.py``) keeps it as a regression
fixture from then on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ownvault", "http_message_signatures", "http_sfv"]):
    from tests.fuzz import targets as _targets

    _targets.preload()

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "corrupt"
PER_INPUT_TIMEOUT = 10  # seconds: a slower input is a crash ("bounded time")
RSS_LIMIT_MB = 1024  # a process over this is a crash ("bounded memory")


def _child(name: str, corpus: Path, artifacts: Path, seconds: int, log: Path) -> None:
    target = _targets.TARGETS[name]
    # libFuzzer ends the child without running atexit: a target's temporary files (the
    # drive target's vault) go into this run's folder, which the parent removes
    tempfile.tempdir = str(corpus.parent)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    argv = [
        f"fuzz-{name}",
        str(corpus),
        f"-max_total_time={seconds}",
        f"-timeout={PER_INPUT_TIMEOUT}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-max_len={target.max_len}",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
        "-close_fd_mask=0",
    ]

    def run(data: bytes) -> None:
        try:
            target.run(data)
        except BaseException:
            # Record the input ourselves: libFuzzer does not see Python exceptions as crashes.
            (artifacts / ("crash-" + hashlib.sha1(data).hexdigest())).write_bytes(data)
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)

    atheris.Setup(argv, run)
    atheris.Fuzz()  # exits the child


def _stats(log: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key in ("number_of_executed_units", "peak_rss_mb", "new_units_added"):
        m = re.search(rf"stat::{key}:\s*(\d+)", log)
        if m:
            out[key] = int(m.group(1))
    if "number_of_executed_units" not in out:
        runs = re.findall(r"^#(\d+)\s", log, re.M)
        out["number_of_executed_units"] = int(runs[-1]) if runs else 0
    return out


def _prepare(name: str, work: Path) -> tuple[Path, Path]:
    corpus = work / name / "corpus"
    artifacts = work / name / "artifacts"
    corpus.mkdir(parents=True)
    artifacts.mkdir(parents=True)
    for seed in _targets.TARGETS[name].seeds():
        (corpus / ("seed-" + hashlib.sha1(seed).hexdigest())).write_bytes(seed)
    fixtures = FIXTURES / name
    if fixtures.is_dir():
        for f in fixtures.iterdir():
            if f.is_file() and not f.name.startswith("."):
                shutil.copyfile(f, corpus / f.name)
    return corpus, artifacts


def _finish(name: str, status: int, seconds: float, work: Path, save: bool) -> dict[str, object]:
    log = (work / name / "log").read_text("utf-8", "replace")
    crashes = sorted((work / name / "artifacts").iterdir())
    result: dict[str, object] = {
        "target": name,
        "status": status,
        "seconds": round(seconds, 1),
        **_stats(log),
        "crashes": [c.name for c in crashes],
    }
    if crashes or status != 0:
        result["log"] = log[log.find("Traceback") :][-3000:] if "Traceback" in log else log[-3000:]
    if crashes:
        result["input_hex"] = crashes[0].read_bytes()[:512].hex()
    if save:
        dest = FIXTURES / name
        dest.mkdir(parents=True, exist_ok=True)
        for c in crashes:
            shutil.copyfile(c, dest / c.name)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="default: all")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")))
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once")
    parser.add_argument("--save", action="store_true", help="copy crashers into the fixtures")
    args = parser.parse_args(argv)
    names = args.targets or list(_targets.TARGETS)
    unknown = set(names) - set(_targets.TARGETS)
    if unknown:
        parser.error(f"unknown targets: {sorted(unknown)}")
    failed = False
    total = 0
    with tempfile.TemporaryDirectory(prefix="ownvault-fuzz-") as tmp:
        work = Path(tmp)
        pending = list(names)
        running: dict[int, tuple[str, float]] = {}
        while pending or running:
            while pending and len(running) < args.jobs:
                name = pending.pop(0)
                corpus, artifacts = _prepare(name, work)
                sys.stdout.flush()
                pid = os.fork()
                if pid == 0:
                    try:
                        _child(name, corpus, artifacts, args.seconds, work / name / "log")
                    finally:
                        os._exit(70)
                running[pid] = (name, time.monotonic())
            pid, wait_status = os.wait()
            name, started = running.pop(pid)
            status = os.waitstatus_to_exitcode(wait_status)
            result = _finish(name, status, time.monotonic() - started, work, args.save)
            total += int(result.get("number_of_executed_units", 0))  # type: ignore[call-overload]
            failed |= status != 0 or bool(result["crashes"])
            print(json.dumps(result), flush=True)
    print(
        json.dumps({"total_executions": total, "targets": len(names), "failed": failed}), flush=True
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
