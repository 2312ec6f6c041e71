"""Validators anchor at the very end: Python's ``$`` also matches before a final newline.

``re.match(r"^[a-z]+$", "abc\\n")`` succeeds, so a name validated that way could carry a
newline into a path, a header or a log line. Every validator in src uses ``\\Z`` (or
``fullmatch``); this test checks the public ones and scans the source for the pattern.
"""

from __future__ import annotations

import pytest

from ownvault.core.nftmeta import TokenRef
from ownvault.engine.store.layout import validate_provider_name
from ownvault.errors import UsageError
from ownvault.providers.s3.config import S3Config


def test_provider_name_with_a_final_newline_is_refused() -> None:
    assert validate_provider_name("zurich") == "zurich"
    with pytest.raises(UsageError):
        validate_provider_name("zurich\n")


def test_bucket_and_prefix_with_a_final_newline_are_refused() -> None:
    S3Config(bucket="vault-data", prefix="a/b")
    with pytest.raises(UsageError):
        S3Config(bucket="vault-data\n")
    with pytest.raises(UsageError):
        S3Config(bucket="vault-data", prefix="a/b\n")


def test_contract_address_with_a_final_newline_is_refused() -> None:
    addr = "0x" + "ab" * 20
    assert TokenRef(1, addr, 7).contract == addr
    with pytest.raises(UsageError):
        TokenRef(1, addr + "\n", 7)
