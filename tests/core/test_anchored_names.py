"""Validators anchor at the very end: Python's ``$`` also matches before a final newline.

``re.match(r"^[a-z]+$", "abc\\n")`` succeeds, so a name validated that way could carry a
newline into a path, a header or a log line. Every validator in src uses ``\\Z`` (or
``fullmatch``); this test checks the public ones and scans the source for the pattern.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ownvault.core.nftmeta import TokenRef
from ownvault.engine.store.layout import validate_provider_name
from ownvault.errors import UsageError
from ownvault.providers.s3.config import S3Config

SRC = Path(__file__).resolve().parents[2] / "src" / "ownvault"


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


def _dollar_anchored_patterns(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "re"
            and node.func.attr in ("compile", "match", "search")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            pattern = node.args[0].value
            if pattern.endswith("$") and not pattern.endswith("\\$"):
                lines.append(node.lineno)
    return lines


def test_no_python_regex_in_src_is_anchored_with_dollar() -> None:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        lines = _dollar_anchored_patterns(ast.parse(path.read_text(), str(path)))
        if lines:
            found[str(path.relative_to(SRC))] = lines
    assert found == {}, "use \\Z (or fullmatch): $ matches before a final newline"
