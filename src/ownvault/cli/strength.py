"""How guessable a new passphrase is, and what the keystore's Argon2id cost buys against it.

The estimate is zxcvbn's (Dropbox's estimator, ported to Python): a guess count from
dictionaries, keyboard patterns, dates and repeats, and a score 0-4. Below score 3 the
commands that set a passphrase (``init``, ``recover``, ``keys passphrase``) warn; they never
refuse. The time a guess takes is measured here, one Argon2id derivation at the keystore's
cost on this machine: an attacker with a copy of the keystore guesses offline, on as many
machines (or GPUs with enough memory) as they pay for, so the figure is per machine like this
one, an upper bound on their time, not a promise."""

from __future__ import annotations

import os
import time

from ownvault.core.crypto import Argon2Params, argon2id

__all__ = ["WEAK_SCORE", "passphrase_warning"]

WEAK_SCORE = 3
"""zxcvbn scores below this warn (3: "safely unguessable: moderate protection from offline
slow-hash scenario", zxcvbn's own reading)."""

_ESTIMATE_CHARS = 100  # zxcvbn's matching is superlinear; longer passphrases are strong anyway


def passphrase_warning(passphrase: str, kdf: Argon2Params) -> str | None:
    """A warning when ``passphrase`` is weak, with the offline guess time at ``kdf``; else None."""
    from zxcvbn import zxcvbn  # its dictionaries cost ~20 ms: only init and passphrase load it

    estimate = zxcvbn(passphrase[:_ESTIMATE_CHARS])
    score = int(estimate["score"])
    if score >= WEAK_SCORE:
        return None
    guesses = float(estimate["guesses"])
    per_guess = _one_derivation(kdf)
    hint = str(estimate["feedback"].get("warning") or "").rstrip(".")
    hint = hint[:1].lower() + hint[1:]
    count = f"{guesses:,.0f}" if guesses < 1e9 else f"{guesses:.1e}"
    return (
        f"weak passphrase (zxcvbn score {score} of 4{'; ' + hint if hint else ''}): about "
        f"{count} guesses find it. One Argon2id derivation at this keystore's cost "
        f"(t={kdf.time_cost}, {kdf.memory_cost_kib // 1024} MiB, p={kdf.parallelism}) took "
        f"{per_guess:.3f} s here, so anyone with a copy of the keystore finds it offline in "
        f"{_duration(guesses * per_guess)} on one machine like this (less on many). Argon2id "
        "makes each guess cost that time and memory; it cannot make a short passphrase long. "
        "Use a longer one: four or more random words, or a sentence only you would write."
    )


def _one_derivation(kdf: Argon2Params) -> float:
    """Seconds of one Argon2id derivation at ``kdf`` on this machine (measured, not assumed)."""
    start = time.perf_counter()
    argon2id(b"ownvault strength probe", os.urandom(16), kdf)
    return time.perf_counter() - start


def _duration(seconds: float) -> str:
    """``seconds`` in the largest unit that keeps a number a reader can compare."""
    if seconds < 1:
        return "under a second"
    for unit, size in (("year", 31_557_600), ("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = seconds / size
            if n >= 1_000_000:
                return f"more than a million {unit}s"
            return f"about {n:,.0f} {unit}{'s' if round(n) != 1 else ''}"
    return f"about {seconds:.0f} second{'s' if round(seconds) != 1 else ''}"
