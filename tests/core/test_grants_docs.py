"""The contact card and grant examples in docs/design.md are real: they verify and open."""

from __future__ import annotations

import json
from pathlib import Path

from ownvault.core.grants import ContactCard, Grant
from ownvault.core.keys import VaultKeys

DESIGN = (Path(__file__).parent.parent.parent / "docs" / "design.md").read_text()


def example_after(marker: str) -> str:
    start = DESIGN.index("{", DESIGN.index(marker))
    _value, end = json.JSONDecoder().raw_decode(DESIGN[start:])
    return DESIGN[start : start + end]


def test_card_example() -> None:
    card = ContactCard.from_json(example_after("and a self-signed contact card"))
    bob = VaultKeys(bytes(range(32)))
    assert card.did == bob.did and card.agreement == bob.agreement_public and card.name == "Bob"


def test_grant_example() -> None:
    grant = Grant.parse(example_after("A real grant from the vault of all-zero entropy"))
    assert grant.sender == VaultKeys(bytes(32)).did
    assert grant.open_key(VaultKeys(bytes(range(32))), 1_800_000_000) == bytes([9]) * 32
    assert grant.to_string().startswith("ovgrant1:")
