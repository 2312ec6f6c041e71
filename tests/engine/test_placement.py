from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.engine.store.placement import (
    THIS_MACHINE,
    Candidate,
    Policy,
    best_overflow,
    capacity,
    check_placement,
    domain_overflow,
    place,
    place_upto,
)
from ownvault.errors import FormatError, PolicyError, UsageError


def cands(spec: str) -> list[Candidate]:
    """'DE DE FR -' -> providers p0.. with those jurisdictions ('-' = none)."""
    return [Candidate(i, f"p{i}", None if j == "-" else j) for i, j in enumerate(spec.split())]


def test_distinct_providers_least_loaded_first() -> None:
    cs = [Candidate(i, f"p{i}", "DE", load) for i, load in enumerate([50, 10, 30, 0])]
    assert place(Policy(1, 3), cs) == [3, 1, 2]


def test_survive_jurisdiction_loss() -> None:
    policy = Policy(3, 6, survive_jurisdiction_loss=True)
    chosen = place(policy, cands("CH CH CH CH DE DE DE DE"))
    by = Counter("CH" if i < 4 else "DE" for i in chosen)
    assert by == {"CH": 3, "DE": 3}
    with pytest.raises(PolicyError, match=r"at most 3 share\(s\) per jurisdiction"):
        place(policy, cands("CH CH CH CH CH DE DE"))


def test_exclude_allow_and_unknown() -> None:
    with pytest.raises(PolicyError, match="cannot be shown to be outside"):
        place(Policy(1, 2, exclude=("US",)), cands("- - DE"))
    assert sorted(place(Policy(1, 2, exclude=("US",)), cands("US DE FR"))) == [1, 2]
    assert place(Policy(1, 2, jurisdictions=("de", "FR")), cands("US DE FR US")) == [1, 2]
    with pytest.raises(PolicyError, match="US not in the allowed list"):
        place(Policy(1, 3, jurisdictions=("DE",)), cands("US DE DE"))


def test_messages_say_what_fixes_it() -> None:
    with pytest.raises(PolicyError) as info:
        place(Policy(3, 6), cands("DE DE DE"))
    assert "3 slot(s) for n=6" in str(info.value) and "add providers" in str(info.value)
    with pytest.raises(PolicyError) as info:
        place(Policy(2, 4, max_per_jurisdiction=1), cands("DE DE FR FR"))
    assert "--max-per-jurisdiction 1" in str(info.value) and "other jurisdictions" in str(
        info.value
    )


def test_policy_validation() -> None:
    for bad in [
        dict(k=3, n=3),
        dict(k=2, n=4, jurisdictions=("DEU",)),
        dict(k=2, n=4, jurisdictions=("DE",), exclude=("DE",)),
        dict(k=2, n=4, max_per_provider=3),
        dict(k=2, n=4, max_per_jurisdiction=0),
    ]:
        with pytest.raises(UsageError):
            Policy(**bad)  # type: ignore[arg-type]
    p = Policy(3, 6, ("de",), (), 2, 1, True, True)
    assert Policy.from_json(p.to_json()) == p
    old = '{"k": 3, "n": 6, "jurisdictions": [], "exclude": [], "max_per_jurisdiction": null}'
    assert Policy.from_json(old) == Policy(3, 6)  # a policy stored before domains existed


def dom(spec: str) -> list[Candidate]:
    """'DE:a DE:b FR:a' -> providers p0.. with those jurisdictions and failure domains."""
    out = []
    for i, item in enumerate(spec.split()):
        j, d = item.split(":")
        out.append(Candidate(i, f"p{i}", None if j == "-" else j, 0, True, d))
    return out


def test_two_kinds_of_caps_need_more_than_greedy() -> None:
    # p0 is least loaded and fits alone, but taking it blocks both others: only {p1, p2} works.
    cs = [
        Candidate(0, "p0", "DE", 0, True, "a"),
        Candidate(1, "p1", "DE", 5, True, "b"),
        Candidate(2, "p2", "FR", 5, True, "a"),
    ]
    policy = Policy(1, 2, max_per_jurisdiction=1, survive_domain_loss=True)
    assert sorted(place(policy, cs)) == [1, 2]


def test_embedded_folders_hold_at_most_n_minus_k_once_remote_providers_exist() -> None:
    policy = Policy(3, 6)
    only_here = dom(" ".join(["-:" + THIS_MACHINE] * 6))
    assert len(place(policy, only_here)) == 6  # the default vault still works
    assert best_overflow(policy, only_here) == 3
    # Remote nodes more loaded than the folders: still chosen, for the domain rule.
    cs = only_here + [Candidate(6 + i, f"node{i}", None, 99, True, f"n{i}") for i in range(3)]
    chosen = place(policy, cs)
    assert sum(1 for i in chosen if i < 6) == 3
    assert domain_overflow(policy, [cs[i] for i in chosen]) == 0
    assert capacity(policy, cs, without_domain=THIS_MACHINE) == 3
    # k > n-k: some domain must exceed n-k; it is not this machine when another can.
    wide = only_here + [Candidate(6 + i, f"node{i}", None, 99, True, "host") for i in range(4)]
    chosen = place(Policy(4, 6), wide)
    assert sum(1 for i in chosen if i < 6) == 2
    with pytest.raises(PolicyError, match="failure-domain rule"):
        place(Policy(3, 6, survive_domain_loss=True), only_here + dom("-:x"))


def feasible(policy: Policy, cs: list[Candidate]) -> bool:
    """Brute force: does any multiset of n providers satisfy every rule?"""
    slots = [c for c in cs for _ in range(policy.max_per_provider)]
    for combo in itertools.combinations(range(len(slots)), policy.n):
        holders: list[Candidate | None] = [slots[i] for i in combo]
        if not check_placement(policy, policy.k, policy.n, holders):
            return True
    return False


def best_feasible_overflow(policy: Policy, cs: list[Candidate]) -> int | None:
    """Brute force: the least domain overflow of any placement satisfying every rule."""
    slots = [c for c in cs for _ in range(policy.max_per_provider)]
    best = None
    for combo in itertools.combinations(range(len(slots)), policy.n):
        holders: list[Candidate | None] = [slots[i] for i in combo]
        if not check_placement(policy, policy.k, policy.n, holders):
            o = domain_overflow(policy, holders)
            best = o if best is None else min(best, o)
    return best


@settings(max_examples=150, deadline=None)
@given(
    providers=st.lists(
        st.tuples(st.sampled_from(["CH", "DE", "FR", "-"]), st.sampled_from(["a", "b", "c", ""])),
        min_size=1,
        max_size=7,
    ),
    k=st.integers(1, 3),
    extra=st.integers(1, 3),
    mpj=st.one_of(st.none(), st.integers(1, 3)),
    survive=st.booleans(),
    survive_domain=st.booleans(),
    mpp=st.integers(1, 2),
    exclude=st.sampled_from([(), ("FR",)]),
    loads=st.lists(st.integers(0, 3), min_size=7, max_size=7),
)
def test_places_whenever_any_placement_exists(
    providers: list[tuple[str, str]],
    k: int,
    extra: int,
    mpj: int | None,
    survive: bool,
    survive_domain: bool,
    mpp: int,
    exclude: tuple[str, ...],
    loads: list[int],
) -> None:
    n = k + extra
    if mpj is not None and mpj > n:
        mpj = n
    if mpp > 1 and mpp > n - k:
        mpp = 1
    policy = Policy(k, n, (), exclude, mpj, mpp, survive, survive_domain)
    cs = [
        Candidate(i, f"p{i}", None if r == "-" else r, loads[i], True, d or None)
        for i, (r, d) in enumerate(providers)
    ]
    best = best_feasible_overflow(policy, cs)
    try:
        chosen = place(policy, cs)
    except PolicyError:
        assert best is None
        return
    assert len(chosen) == n and best is not None
    holders: list[Candidate | None] = [cs[i] for i in chosen]
    assert check_placement(policy, k, n, holders) == []
    # The soft domain rule: as few shares above n-k per domain as any placement allows.
    assert domain_overflow(policy, holders) == best


def test_policy_happy_defaults_validates_and_is_versioned() -> None:
    assert Policy(3, 6).happy_shares == 5 and Policy(1, 2).happy_shares == 1
    assert Policy(3, 6, happy=3).happy_shares == 3 and Policy(3, 6, happy=6).happy_shares == 6
    for bad in (2, 7, 0):
        with pytest.raises(UsageError):
            Policy(3, 6, happy=bad)
    stored = json.loads(Policy(3, 6, happy=4).to_json())
    assert stored["version"] == 2 and stored["happy"] == 4
    assert Policy.from_json(Policy(3, 6, happy=4).to_json()) == Policy(3, 6, happy=4)
    # A version-1 policy (before happy) reads with the default.
    old = json.dumps({"k": 3, "n": 6, "jurisdictions": [], "exclude": []})
    assert Policy.from_json(old).happy is None and Policy.from_json(old).happy_shares == 5
    with pytest.raises(FormatError):
        Policy.from_json(json.dumps({"version": 3, "k": 3, "n": 6}))
    # A degraded write places what it can: five providers, one unusable -> 4 of 6, no error.
    got = place_upto(Policy(3, 6), cands("DE DE FR FR NL"), unusable={2})
    assert sorted(got) == [0, 1, 3, 4]
    with pytest.raises(PolicyError):
        place(Policy(3, 6), cands("DE DE FR FR NL"), unusable={2})
