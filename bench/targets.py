"""Issue 15's targets, judged on bench/vault.py's figures: MET, or MISSED by what factor.

A ratio target compares ownvault with a peer round by round (bench/rounds.py ``ratio``) and
judges the median; for borg the peer is whichever mode (repokey or repokey-blake2) has the
better median in that case, so ownvault is compared with borg at its fastest. A bound target
(memory, startup) judges the worst peak seen (the process's RSS or its process tree's PSS,
whichever is larger, over every ownvault put and get) and the median startup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rounds import ratio, summary

__all__ = ["TARGETS", "Target", "judge"]


@dataclass(frozen=True)
class Target:
    label: str
    section: str  # "file", "small", "reput", "rss", "startup"
    op: str  # "put", "get", "re-put"; the command for startup
    peer: str  # "borg", "restic"; "" for bounds
    bound: float  # a ratio's minimum, or a bound's maximum (MB, seconds)


TARGETS = [
    Target("put 1 file >= 2x borg", "file", "put", "borg", 2.0),
    Target("put 1 file >= 1.3x restic", "file", "put", "restic", 1.3),
    Target("get 1 file >= 2x borg", "file", "get", "borg", 2.0),
    Target("get 1 file >= 1.3x restic", "file", "get", "restic", 1.3),
    Target("put small files >= 1x borg", "small", "put", "borg", 1.0),
    Target("get small files >= 1x borg", "small", "get", "borg", 1.0),
    Target("unchanged re-put >= 2x borg", "reput", "re-put", "borg", 2.0),
    Target("peak RSS <= 300 MB (any put/get)", "rss", "", "", 300.0),
    Target("ownvault ls starts < 0.3 s", "startup", "ownvault ls", "", 0.3),
    Target("ownvault du starts < 0.3 s", "startup", "ownvault du", "", 0.3),
]

FIGURE = {"file": "MBps", "small": "files_per_s", "reput": "MBps"}


def _fastest(figs: dict[str, list[float]], peer: str, op: str) -> str | None:
    names = [n for n in figs if n.startswith(peer) and n.endswith(f" {op}")]
    return max(names, key=lambda n: summary(figs[n]).median, default=None)


def judge(r: dict[str, Any], targets: list[Target]) -> list[dict[str, str]]:
    out = []
    for t in targets:
        if t.section not in r and t.section != "rss":
            continue  # not run (``--only``)
        if t.section in FIGURE:
            figs = r[t.section][FIGURE[t.section]]
            peer = _fastest(figs, t.peer, t.op)
            if peer is None:
                out.append({"target": t.label, "value": f"{t.peer} not installed", "verdict": "-"})
                continue
            s = ratio(figs[f"ownvault {t.op}"], figs[peer])
            value, ok, off = f"{s.text('x')} vs {peer}", s.median >= t.bound, t.bound / s.median
        elif t.section == "rss":
            peaks = [v for sec in FIGURE if sec in r for kind in ("rss", "tree_pss")
                     for n, vs in r[sec][kind].items() if n.split(" ")[0] == "ownvault"
                     for v in vs]  # fmt: skip
            if "huge" in r:
                peaks += [r["huge"]["put_peak_MB"] * 1e6, r["huge"]["get_peak_MB"] * 1e6]
            worst = max(peaks) / 1e6
            value, ok, off = (
                f"{worst:,.0f} MB (worst of all rounds)",
                worst <= t.bound,
                worst / t.bound,
            )
        else:
            s = summary(r["startup_s"][t.op])
            value, ok, off = s.text(" s", 3), s.median < t.bound, s.median / t.bound
        verdict = "MET" if ok else f"MISSED by {off:.{2 if off >= 1.01 else 3}f}x"
        out.append({"target": t.label, "value": value, "verdict": verdict})
    return out
