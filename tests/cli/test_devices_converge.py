"""Three devices of one vault as real ``ownvault`` processes (init, then recover twice from
the phrase) on shared local-folder providers: they put, rm and tag at the same time and
converge to the same names, versions and tags with nothing lost; a commit killed with
SIGKILL on either device loses nothing that was acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.test_keys import js, ov
from tests.engine.helpers import PASS


def _spawn(vault: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS, "OWNVAULT_INSECURE_FAST_KDF": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _state(vault: Path) -> tuple[object, ...]:
    ov(vault, "devices")  # a keyed command pulls (``ls`` shows what was pulled so far)
    listing = js(ov(vault, "--json", "ls"))
    names = [o["name"] for o in listing["objects"]]
    versions = {n: js(ov(vault, "--json", "versions", n)) for n in names}
    return listing, versions


def _devices(tmp_path: Path, count: int) -> list[Path]:
    home = tmp_path / "dev-0"
    phrase = tmp_path / "phrase.txt"
    ov(home, "init", "--providers", "0", "--k", "1", "--n", "2", "--device-name", "dev-0",
       "--phrase-file", str(phrase))  # fmt: skip
    urls = [(tmp_path / f"ext-{i}").as_uri() for i in range(2)]
    for i, url in enumerate(urls):
        ov(home, "provider", "add", f"ext-{i}", url)
    out = [home]
    for i in range(1, count):
        d = tmp_path / f"dev-{i}"
        ov(d, "recover", "--phrase-file", str(phrase), "--provider", urls[i % 2],
           "--device-name", f"dev-{i}")  # fmt: skip
        out.append(d)
    return out


def test_three_devices_write_at_once_and_converge(tmp_path: Path) -> None:
    a, b, c = _devices(tmp_path, 3)
    files = tmp_path / "files"
    files.mkdir()
    for name in ("x", "ya", "yb", "za", "zb"):
        (files / name).write_text(f"content of {name}\n" * 100)
    ov(a, "put", str(files / "x"), "--tag", "seen")
    ov(c, "ls")  # C pulls: it has seen x v1

    # At once: A and B store a version of one name each, B tags a new name, C removes x's
    # version 1 (the one it saw) while A stores x v2 (which C may or may not have pulled).
    procs = [
        _spawn(a, "put", str(files / "ya"), "--as", "shared"),
        _spawn(b, "put", str(files / "yb"), "--as", "shared"),
        _spawn(b, "put", str(files / "zb"), "--tag", "from-b"),
        _spawn(c, "rm", "x", "--version", "1"),
        _spawn(a, "put", str(files / "za"), "--as", "x"),
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode in (0, 9), (p.args, out, err)  # 9: that vault was busy
    # A busy vault (a second process on one device) retries, as a user would.
    for p in procs:
        if p.returncode == 9:
            args = [str(x) for x in p.args]
            ov(Path(args[args.index("--vault") + 1]), *args[args.index("--vault") + 2 :])
    states = [_state(v) for v in (a, b, c)]
    assert states[0] == states[1] == states[2]
    listing, versions = states[0]
    names = {o["name"]: o for o in listing["objects"]}  # type: ignore[index]
    assert set(names) == {"shared", "zb", "x"}
    assert len(versions["shared"]["versions"]) == 2  # type: ignore[index]
    # A's put raced C's rm of the version C had seen: the rm took only that one.
    assert len(versions["x"]["versions"]) == 1  # type: ignore[index]
    assert names["zb"]["tags"] == ["from-b"]
    got = tmp_path / "got"
    ov(c, "get", "x", "-o", str(got))
    assert got.read_text() == (files / "za").read_text()


def test_a_commit_killed_on_either_device_loses_nothing(tmp_path: Path) -> None:
    a, b = _devices(tmp_path, 2)
    files = tmp_path / "files"
    files.mkdir()
    acknowledged: dict[str, bytes] = {}
    for round_ in range(4):
        for who, vault in (("a", a), ("b", b)):
            name = f"{who}{round_}"
            data = os.urandom(3_000_000)
            (files / name).write_bytes(data)
            victim = _spawn(vault, "put", str(files / name))
            time.sleep(0.4 + 0.3 * round_)
            victim.send_signal(signal.SIGKILL)
            victim.communicate()
            # The device's next command finishes what the killed one committed.
            ok = f"{name}-ok"
            (files / ok).write_bytes(os.urandom(1000))
            ov(vault, "put", str(files / ok))
            acknowledged[ok] = (files / ok).read_bytes()
            if victim.returncode == 0:
                acknowledged[name] = data
    ov(a, "put", str(files / "a0-ok"), "--as", "last-a")  # A sends after B's last put
    states = [_state(v) for v in (a, b)]
    assert states[0] == states[1]
    listing = states[0][0]
    stored = {o["name"] for o in listing["objects"]}  # type: ignore[index]
    assert set(acknowledged) <= stored
    for name in stored - {"last-a"}:
        out = tmp_path / f"out-{name}"
        ov(b, "get", name, "-o", str(out))
        if name in acknowledged:
            assert out.read_bytes() == acknowledged[name]
        else:  # killed after its version committed: the whole file, as put
            assert out.read_bytes() == (files / name).read_bytes()
