"""Every command the README shows, run exactly as written (issue 19).

The commands are the ``$ `` lines of the README's ``console`` blocks, in order, each run by
bash in one environment that carries over (``export``, ``. .venv/bin/activate``): a home
directory holding what the README assumes you have (``~/Documents/health``,
``report.pdf``; ``friends.txt`` with your did:key and Bob's card ``bob.json``, as the README
says), ``OWNVAULT_PASSPHRASE`` and ``OWNVAULT_NEW_PASSPHRASE`` for the prompts (the README's
way for scripts), ``OWNVAULT_INSECURE_FAST_KDF=1`` (allowed for test suites) and a
``.venv`` that is this test's environment. Servers (``ownvault node serve``, ``serve``,
``ui``) run as real processes on the ports the README names, until the next server on that
port or the end; so do FUSE mounts (``ownvault mount DIR``, ``ownvault open GRANT --mount
DIR``, which a user runs in another terminal), until the README's ``fusermount3 -u DIR`` or
the end. Where the machine allows it (``unshare -rnm``), everything runs in a private
network and mount namespace holding only a loopback interface: the README's fixed ports
cannot meet another test's, ``serve --listen 0.0.0.0:8787`` binds nothing but it, and the
namespace's root may mount FUSE there (a mount in the machine's own mount namespace needs
CAP_SYS_ADMIN over it, which a user namespace does not give), seen by nobody else and gone
with the namespace. Lines after ``# Bob, with his own vault:`` run as Bob (his own home and
vault), until ``# You again:`` or the end of the block.

Nothing is substituted but what the README itself says to substitute (:data:`SUBSTITUTE`),
and the commands not run here are listed with the reason (:data:`NOT_RUN`). Commands
quoted inside sentences (S3, Kubo and pinning-service URLs with placeholders) are not
console lines and are not run; ``curl`` lines must not answer with an error document.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import ownvault

README = Path(__file__).resolve().parents[2] / "README.md"
PASS = "correct horse battery staple"

NOT_RUN = {
    "make demo": "pip-installs the project into .venv from PyPI (tests have no network)",
    "make test": "runs the whole suite, this test included, and installs system packages",
    "pipx install ownvault": "installs from PyPI (tests have no network)",
    "pipx install .": "installs the dependencies from PyPI (tests have no network)",
    "ownvault recover --phrase-file phrase.txt --provider file:///mnt/usb/ownvault": (
        "a new machine: tests/cli/test_readme_recovery.py runs the recover lines"
    ),
    "ownvault recover --guardian-shares": "as above (test_readme_recovery.py)",
    "ownvault recover --phrase-file phrase.txt --provider usb=": "as above (test_readme_recovery.py)",
    "ownvault nft preserve": "needs an Ethereum RPC and IPFS gateways on the internet",
    "ownvault nft verify": "needs an Ethereum RPC and IPFS gateways on the internet",
}


# Run only inside a private network namespace (where it can bind nothing but loopback).
NAMESPACED = {
    "ownvault serve --listen 0.0.0.0:8787": "binds every interface: only in a private network "
    "namespace (unshare -rnm), which this machine does not allow",
}

# Run only where FUSE can mount (the same check as ``ownvault mount``'s).
FUSE = os.access("/dev/fuse", os.R_OK | os.W_OK) and shutil.which("fusermount3") is not None
NEEDS_FUSE = {
    "ownvault mount ~/drive": "FUSE is not available here (/dev/fuse, fusermount3)",
    "ls ~/drive/": "reads the FUSE mount (not available here)",
    "fusermount3 -u": "unmounts the FUSE mount (not available here)",
    "ownvault open grant.json --mount": "FUSE is not available here (/dev/fuse, fusermount3)",
    "ls ~/shared/": "reads the FUSE mount (not available here)",
}

# Holds a network (and mount) namespace open: brings its loopback interface up (SIOCGIFFLAGS /
# SIOCSIFFLAGS with IFF_UP, no `ip` needed), says so, and lives until stdin closes.
_NAMESPACE_HOLDER = """
import fcntl, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0))[:18])[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))
print("ready", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def network_namespace() -> Iterator[list[str]]:
    """The argv prefix that runs a program in a private network and mount namespace, or
    ``[]`` where user namespaces are not allowed."""
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        yield []
        return
    holder = subprocess.Popen(
        ["unshare", "-rnm", "--", sys.executable, "-c", _NAMESPACE_HOLDER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    try:
        ready = holder.stdout.readline().strip() == "ready"
        yield (
            ["nsenter", "--preserve-credentials", "-U", "-n", "-m", "-t", str(holder.pid)]
            if ready
            else []
        )
    finally:
        holder.stdin.close()
        holder.stdout.close()
        holder.wait(timeout=30)


@dataclass
class Person:
    home: Path
    env: dict[str, str]
    prefix: list[str] = field(default_factory=list)

    def argv(self, *command: str) -> list[str]:
        """``command`` in the namespace if any, started in this person's home (entering a
        mount namespace moves the working directory to its root)."""
        return [*self.prefix, f"--wd={self.home}", *command] if self.prefix else [*command]


@dataclass
class Session:
    """The README's shell: the people, the running servers and mounts, what serve printed."""

    tmp: Path
    me: Person
    bob: Person
    servers: dict[int, subprocess.Popen[str]] = field(default_factory=dict)
    served: dict[str, str] = field(default_factory=dict)
    mounts: dict[Path, tuple[Person, subprocess.Popen[str]]] = field(default_factory=dict)

    def stop(self, port: int) -> None:
        proc = self.servers.pop(port, None)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()

    def unmount(self, where: Path) -> None:
        """Unmount ``where`` as the README's user would, if its line did not run, and stop
        its process; a mount whose process died is detached all the same."""
        person, proc = self.mounts.pop(where)
        if proc.poll() is None:
            unmount = person.argv("fusermount3", "-u", str(where))
            subprocess.run(unmount, capture_output=True, timeout=60)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        detach = person.argv("fusermount3", "-u", "-z", str(where))
        subprocess.run(detach, capture_output=True, timeout=60)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def readme_commands() -> list[tuple[str, str]]:
    """(who, command) for each ``$ `` line of the README's console blocks, continuation
    lines joined; ``who`` is ``me`` or ``bob``."""
    out = []
    who = "me"
    in_block = False
    pending = ""
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```console"
            who = "me"
            continue
        if not in_block:
            continue
        if line.startswith("# Bob"):
            who = "bob"
        elif line.startswith("# You again"):
            who = "me"
        if pending:
            pending += " " + line.strip()
        elif line.startswith("$ "):
            pending = line[2:]
        else:
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        out.append((who, pending))
        pending = ""
    return out


def _code(command: str) -> str:
    """The command without its trailing comment (for matching, not for running)."""
    return re.sub(r"\s+#.*$", "", command).strip()


def _not_run(command: str, namespaced: bool = True, fuse: bool = True) -> str | None:
    code = _code(command)
    skip = {**NOT_RUN, **({} if namespaced else NAMESPACED), **({} if fuse else NEEDS_FUSE)}
    return next((why for start, why in skip.items() if code.startswith(start)), None)


def _server_port(command: str) -> int | None:
    code = _code(command)
    if not re.match(r"ownvault (node serve|serve|ui)\b", code):
        return None
    listen = re.search(r"--listen \S+:(\d+)", code)
    return int(listen.group(1)) if listen else 8787


def _mount_point(person: Person, command: str) -> Path | None:
    """The folder ``ownvault mount DIR`` or ``ownvault open GRANT --mount DIR`` mounts on."""
    code = _code(command)
    where = re.fullmatch(r"ownvault mount (\S+)", code) or re.fullmatch(
        r"ownvault open \S+ --mount (\S+)", code
    )
    return _path(person, where.group(1)) if where else None


def _unmounted(person: Person, command: str) -> Path | None:
    """The folder a ``fusermount3 -u DIR`` line unmounts."""
    where = re.fullmatch(r"fusermount3 -u (\S+)", _code(command))
    return _path(person, where.group(1)) if where else None


def _path(person: Person, path: str) -> Path:
    """``path`` as ``person``'s bash sees it (``~`` is their home, relative to it)."""
    return person.home / path.removeprefix("~/") if path.startswith("~/") else person.home / path


def _substitute(session: Session, command: str) -> str:
    """What the README says to substitute: your disk's mount point, a grant id, the token
    serve printed."""
    command = command.replace("/media/me/usb-disk", str(session.me.home / "usb-disk"))
    if "3f2a9c01" in command:
        command = command.replace("3f2a9c01", session.served["grant"])
    if command.startswith("T=…;"):
        command = command.replace("T=…;", f"T={session.served['token']};", 1)
    return command


def _bash(person: Person, command: str) -> subprocess.CompletedProcess[str]:
    """Run one line in bash with ``person``'s environment; keep what it exported."""
    envfile = person.home / ".readme-env"
    script = f"set -a\n{command}\nrc=$?\nenv -0 > {envfile}\nexit $rc\n"
    proc = subprocess.run(
        person.argv("bash", "--norc", "--noprofile", "-c", script),
        cwd=person.home, env=person.env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if envfile.exists():
        pairs = (kv.partition("=") for kv in envfile.read_text().split("\0") if kv)
        person.env = {k: v for k, _, v in pairs if not k.startswith(("BASH_", "_"))}
        envfile.unlink()
    return proc


def _start_server(session: Session, person: Person, command: str, port: int) -> None:
    session.stop(port)
    proc = subprocess.Popen(
        person.argv("bash", "--norc", "--noprofile", "-c", f"exec {command}"),
        cwd=person.home, env=person.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    session.servers[port] = proc
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=120)
    assert lines and lines[0].strip(), (command, proc.poll())
    doc = json.loads(lines[0])
    assert doc["listening"].endswith(f":{port}"), doc
    if "#token=" in str(doc.get("ui", "")):
        session.served["token"] = str(doc["ui"]).split("#token=", 1)[1]
    elif doc.get("token_file"):
        token_file = Path(str(doc["token_file"])).expanduser()
        session.served["token"] = (person.home / token_file).read_text().strip()


def _start_mount(session: Session, person: Person, command: str, where: Path) -> None:
    """Start a FUSE mount as the README's other terminal would; wait until it is ready."""
    errors = session.tmp / f"mount-{where.name}.err"
    with errors.open("w") as err:
        proc = subprocess.Popen(
            person.argv("bash", "--norc", "--noprofile", "-c", f"exec {command}"),
            cwd=person.home, env=person.env, stdout=subprocess.PIPE, stderr=err,
            stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
    session.mounts[where] = (person, proc)
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=120)
    assert lines and lines[0].strip(), (command, proc.poll(), errors.read_text())
    assert json.loads(lines[0]) == {"mounted": str(where)}, lines[0]


def _before(session: Session, command: str) -> None:
    """Give the user what the README says they have when a command needs it."""
    me, bob = session.me, session.bob
    code = _code(command)
    if "--allowlist friends.txt" in code:
        did = json.loads(_bash(me, "ownvault identity --json").stdout)["did"]
        (me.home / "friends.txt").write_text(did + "\n")
    if code.startswith("ownvault contacts add bob.json"):
        assert _bash(bob, "ownvault init --phrase-file phrase.txt").returncode == 0
        card = _bash(bob, "ownvault identity --name Bob --card bob.json")
        assert card.returncode == 0, card.stderr
        shutil.copy(bob.home / "bob.json", me.home / "bob.json")
    if code.startswith("ownvault open grant.json"):  # the grant you made last, sent to Bob
        mine, his = me.home / "grant.json", bob.home / "grant.json"
        if not his.exists() or his.read_bytes() != mine.read_bytes():
            shutil.copy(mine, his)
    if "3f2a9c01" in code:  # the newest grant not revoked yet
        grants = json.loads(_bash(me, "ownvault grants --json").stdout)["grants"]
        session.served["grant"] = next(g["grant"] for g in grants if not g["revoked"])


def _fixtures(home: Path) -> None:
    health = home / "Documents" / "health"
    (health / "2026").mkdir(parents=True)
    for i in range(6):
        (health / "2026" / f"scan-{i}.bin").write_bytes(os.urandom(5000 + 997 * i))
    (health / "notes.txt").write_text("blood pressure fine\n")
    (home / "report.pdf").write_bytes(os.urandom(200_000))
    (home / "usb-disk").mkdir()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    def person(name: str) -> Person:
        home = tmp_path / name
        home.mkdir()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "OWNVAULT_HOME": str(home / "vault") if name == "bob" else "",
            "OWNVAULT_PASSPHRASE": PASS,
            "OWNVAULT_NEW_PASSPHRASE": PASS,
            "OWNVAULT_INSECURE_FAST_KDF": "1",
            # The ownvault under test, whatever the .venv's own install points at.
            "PYTHONPATH": str(Path(ownvault.__file__).parent.parent),
            "BROWSER": "true",  # `ownvault ui` opens "a browser" that does nothing
        }
        if name == "bob":  # Bob has ownvault installed already
            env["PATH"] = f"{Path(sys.prefix) / 'bin'}:{env['PATH']}"
        else:
            del env["OWNVAULT_HOME"]  # the README's tour exports it
        return Person(home, env)

    me, bob = person("me"), person("bob")
    _fixtures(me.home)
    (me.home / ".venv").symlink_to(sys.prefix)  # the environment `make demo` made
    with network_namespace() as prefix:
        me.prefix = bob.prefix = prefix
        s = Session(tmp_path, me, bob)
        try:
            yield s
        finally:
            for where in list(s.mounts):
                s.unmount(where)
            for port in list(s.servers):
                s.stop(port)


def test_not_run_list_is_short_and_current() -> None:
    commands = [_code(c) for _, c in readme_commands()]
    assert len(commands) > 60
    for start in {**NOT_RUN, **NAMESPACED, **NEEDS_FUSE}:
        assert any(c.startswith(start) for c in commands), f"no README command {start!r}"
    assert sum(1 for c in commands if _not_run(c)) <= 10


@pytest.mark.timeout(1800)
def test_every_readme_command_runs_as_written(session: Session) -> None:
    ran = []
    for who, command in readme_commands():
        if _not_run(command, namespaced=bool(session.me.prefix), fuse=FUSE):
            continue
        person = session.bob if who == "bob" else session.me
        _before(session, command)
        command = _substitute(session, command)
        port = _server_port(command)
        if port is not None:
            _start_server(session, person, command, port)
            ran.append(command)
            continue
        where = _mount_point(person, command)
        if where is not None:
            _start_mount(session, person, command, where)
            ran.append(command)
            continue
        proc = _bash(person, command)
        assert proc.returncode == 0, (command, proc.returncode, proc.stdout, proc.stderr)
        where = _unmounted(person, command)
        if where is not None:  # the mount process ends when its folder is unmounted
            _, mount = session.mounts[where]
            assert mount.wait(timeout=60) == 0, command
            session.unmount(where)
        if _code(command).startswith("curl ") and proc.stdout.startswith("{"):
            doc = json.loads(proc.stdout)  # an API error is {"error": {"code", "message"}}
            assert not isinstance(doc.get("error"), dict), (command, proc.stdout)
        ran.append(command)
    assert len(ran) >= 60
    # In the namespace, the one line that binds every interface ran too.
    assert any("--listen 0.0.0.0:" in c for c in ran) == bool(session.me.prefix)
    # Where FUSE works, both mounts ran, and each was unmounted by the README's line.
    assert sum(1 for c in ran if _code(c).startswith("fusermount3 -u ")) == (2 if FUSE else 0)
    assert not session.mounts
