"""Parsing of command-line values: durations, sizes, expiry times, byte ranges, labels,
listen addresses.

Every parser raises :class:`~ownvault.errors.UsageError` (exit code 2) with the option's
expected form in the message.
"""

from __future__ import annotations

import datetime
import re
import time

from ownvault.errors import UsageError

__all__ = [
    "parse_csv",
    "parse_duration",
    "parse_expiry",
    "parse_fetch_size",
    "parse_labels",
    "parse_listen",
    "parse_range",
    "parse_size",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*\Z")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_REL = re.compile(r"^\+?(\d+)([dhm])\Z")
_FETCH_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``6h``, ``1d`` -> seconds."""
    match = _DURATION.match(text.lower())
    if not match:
        raise UsageError(f"not a duration: {text!r:.40} (try 30m, 6h, 1d)")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def parse_expiry(text: str | None, now: float | None = None) -> int | None:
    """``2026-12-31``, ``2026-12-31T18:00:00+01:00`` (UTC when no zone), or ``7d``/``12h``/``30m``."""
    if text is None:
        return None
    now = time.time() if now is None else now
    m = _REL.match(text.strip())
    if m:
        return int(now) + int(m.group(1)) * {"d": 86400, "h": 3600, "m": 60}[m.group(2)]
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--expires wants a date (2026-12-31), a time, or 7d/12h/30m; got {text!r:.40}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp())


def parse_range(text: str | None) -> tuple[int, int | None] | None:
    """``A-B`` (inclusive), ``A-`` (to the end) or ``-N`` (the last N bytes, as in HTTP)
    -> (start, end exclusive or None); a suffix range is (-N, None)."""
    if text is None:
        return None
    try:
        a, _, b = text.partition("-")
        if not a:
            n = int(b)
            if n <= 0:
                raise ValueError
            return -n, None
        start = int(a)
        end = int(b) + 1 if b else None
    except ValueError:
        raise UsageError(f"--range wants A-B, A- or -N (bytes, inclusive), got {text!r}") from None
    if start < 0 or (end is not None and end <= start):
        raise UsageError(f"empty or invalid --range {text!r}")
    return start, end


def parse_fetch_size(text: str) -> int:
    """``50M``, ``1G``, ``512k`` -> bytes (powers of 1024), at least 1."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in _FETCH_UNITS else ""
    try:
        value = int(float(t[: len(t) - len(unit)]) * _FETCH_UNITS[unit])
    except ValueError:
        raise UsageError(f"bad size {text!r} (e.g. 50M, 1G)") from None
    if value <= 0:
        raise UsageError(f"size must be > 0: {text!r}")
    return value


def parse_labels(values: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` options -> a dict."""
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key:
            raise UsageError(f"--label wants KEY=VALUE, got {v!r}")
        out[key] = val
    return out


def parse_csv(value: str | None) -> tuple[str, ...]:
    """``A,B,,C`` -> ("A", "B", "C") (empty items dropped)."""
    return tuple(x for x in (value or "").split(",") if x.strip())


def parse_listen(text: str, *, option: str = "--listen", example: str = "") -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port), the port 0-65535. The error
    names ``option`` and shows ``example`` (e.g. ``127.0.0.1:8650``) when given."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        hint = f", e.g. {example}" if example else ""
        raise UsageError(f"{option} wants HOST:PORT{hint} (got {text!r:.60})")
    return host.strip("[]"), int(port)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """``512``, ``64MiB``, ``10G``, ``1.5TB`` -> bytes (units are powers of 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"not a size: {text!r:.40} (try 500M, 10GiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
