from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.engine.store.placement import Candidate, Policy, check_placement, place
from ownvault.errors import PolicyError, UsageError


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
    assert "--max-per-jurisdiction 1" in str(info.value) and "other jurisdictions" in str(info.value)


def test_policy_validation() -> None:
    for bad in [dict(k=3, n=3), dict(k=2, n=4, jurisdictions=("DEU",)), dict(k=2, n=4, jurisdictions=("DE",), exclude=("DE",)),
                dict(k=2, n=4, max_per_provider=3), dict(k=2, n=4, max_per_jurisdiction=0)]:
        with pytest.raises(UsageError):
            Policy(**bad)  # type: ignore[arg-type]
    p = Policy(3, 6, ("de",), (), 2, 1, True)
    assert Policy.from_json(p.to_json()) == p


def feasible(policy: Policy, cs: list[Candidate]) -> bool:
    """Brute force: does any multiset of n providers satisfy every rule?"""
    slots = [c for c in cs for _ in range(policy.max_per_provider)]
    for combo in itertools.combinations(range(len(slots)), policy.n):
        holders: list[Candidate | None] = [slots[i] for i in combo]
        if not check_placement(policy, policy.k, policy.n, holders):
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(
    regions=st.lists(st.sampled_from(["CH", "DE", "FR", "-"]), min_size=1, max_size=7),
    k=st.integers(1, 3),
    extra=st.integers(1, 3),
    mpj=st.one_of(st.none(), st.integers(1, 3)),
    survive=st.booleans(),
    exclude=st.sampled_from([(), ("FR",)]),
)
def test_greedy_places_whenever_any_placement_exists(
    regions: list[str], k: int, extra: int, mpj: int | None, survive: bool, exclude: tuple[str, ...]
) -> None:
    n = k + extra
    if mpj is not None and mpj > n:
        mpj = n
    policy = Policy(k, n, (), exclude, mpj, 1, survive)
    cs = [Candidate(i, f"p{i}", None if r == "-" else r) for i, r in enumerate(regions)]
    try:
        chosen = place(policy, cs)
    except PolicyError:
        assert not feasible(policy, cs)
        return
    assert len(chosen) == n
    holders: list[Candidate | None] = [cs[i] for i in chosen]
    assert check_placement(policy, k, n, holders) == []
