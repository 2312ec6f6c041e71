"""The committed corrupt-input corpus (tests/fixtures/ipfs/corrupt, see make_corrupt.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ownvault import errors

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "ipfs" / "corrupt"


def corpus_cases(parser: str) -> list[Any]:
    expected = json.loads((CORPUS / "expected.json").read_text())
    return [
        pytest.param(CORPUS / name, getattr(errors, spec["error"]), spec["message"], id=name)
        for name, spec in sorted(expected.items())
        if spec["parser"] == parser
    ]
