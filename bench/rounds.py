"""Interleaved rounds and their summaries, shared by every benchmark.

A figure from one run on a shared VM is noise. Each benchmark runs its cases in rounds,
the cases of one round one after the other so that a slow period of the machine hits every
case alike, and reports each case's median with its range. A ratio between two cases is
computed round by round (both measured in the same round) and then summarised the same way.

With ``group``, the groups of cases (e.g. one tool's put and then its get, which reads what
the put wrote) take turns at going first: round i starts with group i mod g (A B C, B C A,
C A B, ...), the cases of a group in their given order. In one fixed order a case always
followed the same one; two runs of identical get code measured 1.10-1.11x each other that
way (docs/design.md, "Many small files", round 5).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Summary", "interleave", "ratio", "round_order", "summary"]


@dataclass(frozen=True)
class Summary:
    """Median and range of one figure over the rounds."""

    median: float
    low: float
    high: float
    rounds: int

    def text(self, unit: str = "", digits: int = 2) -> str:
        fmt = f"{{:.{digits}f}}"
        m, lo, hi = (fmt.format(v) for v in (self.median, self.low, self.high))
        return f"{m}{unit} (range {lo}-{hi}, {self.rounds} rounds)"

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "low": self.low, "high": self.high, "rounds": self.rounds}


def summary(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no values to summarise")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def interleave(
    cases: Mapping[str, Callable[[], float]],
    rounds: int,
    before_each: Callable[[], None] | None = None,
    group: Callable[[str], str] | None = None,
) -> dict[str, list[float]]:
    """Run every case once per round, ``rounds`` times: in the given order, or, with
    ``group`` (a case's name -> its group's), with the groups taking turns at going first.

    Each case returns its figure (seconds, MB/s: the caller decides). ``before_each`` runs
    before every case (e.g. dropping the page cache)."""
    out: dict[str, list[float]] = {name: [] for name in cases}
    for name in round_order(list(cases), rounds, group):
        if before_each is not None:
            before_each()
        out[name].append(cases[name]())
    return out


def round_order(names: list[str], rounds: int, group: Callable[[str], str] | None) -> list[str]:
    """The order :func:`interleave` runs the cases in, all rounds one after the other."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(group(name) if group else "", []).append(name)
    order = list(groups.values())
    out: list[str] = []
    for r in range(rounds):
        turn = r % len(order) if group and order else 0
        for members in order[turn:] + order[:turn]:
            out += members
    return out


def ratio(num: Sequence[float], den: Sequence[float]) -> Summary:
    """Round-by-round ratio num[i] / den[i], summarised."""
    if len(num) != len(den):
        raise ValueError("ratio of figures from different numbers of rounds")
    return summary([a / b for a, b in zip(num, den, strict=True)])
