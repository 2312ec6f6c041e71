"""The files ``ownvault backup install-timer`` writes: a systemd user service and timer, or
a launchd agent (macOS), that run ``ownvault backup run`` (every due profile) regularly.

The passphrase never goes into these files: both read ``OWNVAULT_PASSPHRASE`` from
``~/.config/ownvault/backup.env`` (the user creates it, mode 600).
"""

from __future__ import annotations

import os
import plistlib
import shutil
import sys
from pathlib import Path

from ownvault.engine.backup.profile import parse_every

__all__ = ["ENV_FILE", "LAUNCHD_LABEL", "SYSTEMD_UNIT", "ownvault_command", "timer_files"]

SYSTEMD_UNIT = "ownvault-backup"
LAUNCHD_LABEL = "org.ownvault.backup"
ENV_FILE = ".config/ownvault/backup.env"


def _systemd_quote(arg: str) -> str:
    """One ExecStart= argument: double-quoted, with systemd's escapes and ``%`` doubled."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def _systemd_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def _systemd(exe: list[str], vault: Path, seconds: int) -> list[tuple[Path, str]]:
    argv = " ".join(_systemd_quote(a) for a in (*exe, "backup", "run", "--vault", str(vault)))
    service = f"""[Unit]
Description=ownvault: run the backup profiles that are due
Documentation=https://github.com/ownvault/ownvault#backups
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
EnvironmentFile=%h/{ENV_FILE}
ExecStart={argv}
Nice=10
IOSchedulingClass=idle
"""
    timer = f"""[Unit]
Description=ownvault: check for due backup profiles every {seconds} s

[Timer]
OnBootSec=120
OnUnitActiveSec={seconds}
RandomizedDelaySec=60
Unit={SYSTEMD_UNIT}.service

[Install]
WantedBy=timers.target
"""
    d = _systemd_dir()
    return [(d / f"{SYSTEMD_UNIT}.service", service), (d / f"{SYSTEMD_UNIT}.timer", timer)]


def _launchd(exe: list[str], vault: Path, seconds: int) -> list[tuple[Path, str]]:
    # launchd has no environment file: a POSIX sh reads it, then execs ownvault directly
    # ("$0" "$@" are the arguments after the script, never parsed by the shell).
    script = f'set -a; . "$HOME/{ENV_FILE}"; set +a; exec "$0" "$@"'
    plist = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": [
            "/bin/sh",
            "-c",
            script,
            *exe,
            "backup",
            "run",
            "--vault",
            str(vault),
        ],
        "StartInterval": seconds,
        "RunAtLoad": True,
        "ProcessType": "Background",
        "LowPriorityIO": True,
        "Nice": 10,
        "StandardErrorPath": str(Path.home() / "Library" / "Logs" / "ownvault-backup.log"),
    }
    text = plistlib.dumps(plist, sort_keys=False).decode("utf-8")
    return [(Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist", text)]


def ownvault_command(argv0: str, override: str | None) -> list[str]:
    """How the timer starts this ownvault: ``override`` (``OWNVAULT_EXE``), else the
    program that is running (``python -m ownvault``: this interpreter with ``-m``)."""
    if override:
        return [override]
    if Path(argv0).name == "__main__.py":
        return [sys.executable, "-m", "ownvault"]
    found = shutil.which(argv0)
    return [str(Path(found or argv0).absolute())]


def timer_files(kind: str, exe: list[str], vault: Path, check_every: str) -> list[tuple[Path, str]]:
    """(path, content) of each file for ``kind`` (``systemd`` or ``launchd``); ``exe``: the
    command that runs ownvault (:func:`ownvault_command`)."""
    seconds = int(parse_every(check_every))
    return _systemd(exe, vault, seconds) if kind == "systemd" else _launchd(exe, vault, seconds)
