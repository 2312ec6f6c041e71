"""When a due profile may run: only on AC power, and only if a command says so.

``--only-on-ac-power``: Linux reads ``/sys/class/power_supply`` (a ``Mains`` supply that
is online, or no battery at all: a desktop); macOS asks ``pmset -g batt``; where neither
answers, the condition holds (a backup is not withheld on a guess). ``--only-if CMD``: an
argument vector run without a shell (as ``--on-failure``); exit status 0 means go, e.g. a
script that checks the Wi-Fi network or a metered connection. A scheduled run that a
condition holds back is *deferred*, not failed, and tried again at the next pass; a
profile deferred for two intervals becomes overdue like any other. ``backup run NAME``
runs regardless: the user asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ownvault.errors import UsageError

__all__ = ["CHECK_TIMEOUT", "POWER_SUPPLY", "Conditions", "on_ac_power"]

POWER_SUPPLY = Path("/sys/class/power_supply")
CHECK_TIMEOUT = 30.0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def on_ac_power(root: Path = POWER_SUPPLY, platform: str = sys.platform) -> bool | None:
    """True on mains power, False on battery, None when the system does not say."""
    if platform == "darwin":
        return None  # answered by pmset, asynchronously (Conditions.blocked)
    if not root.is_dir():
        return None
    kinds = [(_read(d / "type"), _read(d / "online")) for d in sorted(root.iterdir())]
    if not kinds:
        return None
    if any(kind in ("Mains", "USB") and online == "1" for kind, online in kinds):
        return True
    return not any(kind == "Battery" for kind, _ in kinds)  # no battery: a desktop


async def _exit_code(argv: tuple[str, ...]) -> int | str:
    """The command's exit status, or why it could not say."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        return f"cannot run {argv[0]}: {exc.strerror}"
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), CHECK_TIMEOUT)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        return f"{argv[0]} did not answer within {CHECK_TIMEOUT:.0f} s"
    if argv[0] == "pmset":
        return 0 if b"AC Power" in out else 1
    return proc.returncode if proc.returncode is not None else "no exit status"


@dataclass(frozen=True, slots=True)
class Conditions:
    ac_power: bool = False
    only_if: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.ac_power:
            out["ac_power"] = True
        if self.only_if:
            out["only_if"] = list(self.only_if)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Conditions:
        extra = set(obj) - {"ac_power", "only_if"}
        if extra:
            raise UsageError(f"unknown backup condition(s): {', '.join(sorted(extra))}")
        return cls(bool(obj.get("ac_power", False)), tuple(obj.get("only_if", ())))

    async def blocked(self, power_root: Path = POWER_SUPPLY) -> str | None:
        """Why the profile may not run now, or None."""
        if self.ac_power:
            ac = on_ac_power(power_root)
            if ac is None and sys.platform == "darwin":
                ac = await _exit_code(("pmset", "-g", "batt")) == 0
            if ac is False:
                return "on battery power (--only-on-ac-power)"
        if self.only_if:
            code = await _exit_code(self.only_if)
            if code != 0:
                why = f"exit status {code}" if isinstance(code, int) else code
                return f"--only-if {' '.join(self.only_if)}: {why}"
        return None
