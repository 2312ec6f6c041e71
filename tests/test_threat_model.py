"""The threat-model table in docs/design.md names tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = "### Hostile input across the system"


def _table_rows() -> list[str]:
    text = (ROOT / "docs" / "design.md").read_text()
    section = text[text.index(HEADING) :]
    section = section[: section.index("\n## ")]
    return [line for line in section.splitlines() if line.startswith("| ") and "`test_" in line]


def test_every_row_names_an_existing_test() -> None:
    defined = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined.update(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))
    rows = _table_rows()
    assert len(rows) >= 30
    missing = []
    for row in rows:
        last_cell = row.rstrip(" |").rsplit("|", 1)[1]
        names = re.findall(r"`(test_\w+)`", last_cell)
        assert names, row
        missing += [n for n in names if n not in defined]
    assert missing == []
