from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.engine.helpers import Vaults

# Test suites use the cheapest Argon2id cost for vaults made through the CLI; the
# parameter is stored in each keystore, so this changes nothing about the format.
os.environ.setdefault("OWNVAULT_INSECURE_FAST_KDF", "1")


@pytest.fixture
def vaults() -> Iterator[Vaults]:
    """Open or create vaults in a test (``vaults.create(path)``, ``vaults.open(path)``,
    ``vaults.track(vault)``); all are closed when the test ends, also when it fails."""
    opened = Vaults()
    try:
        yield opened
    finally:
        opened.close_all()
