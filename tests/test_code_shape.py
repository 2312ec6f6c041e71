"""The shape of the source (issue 13): no module over 600 lines, no function over 80 lines
unless its docstring says why ("Long:" followed by the reason)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ownvault"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def long_modules(paths: list[Path], root: Path) -> list[str]:
    """Modules longer than MAX_MODULE_LINES, as ``path: lines`` (relative to ``root``)."""
    out = []
    for path in paths:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            out.append(f"{path.relative_to(root)}: {lines}")
    return out


def long_functions(source: str, name: str) -> list[str]:
    """Functions (sync, async, nested; counted from ``def`` to their last line) longer than
    MAX_FUNCTION_LINES whose docstring gives no reason (``Long:`` and a word after it)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        assert node.end_lineno is not None
        length = node.end_lineno - node.lineno + 1  # from ``def`` (decorators not counted)
        if length <= MAX_FUNCTION_LINES:
            continue
        doc = ast.get_docstring(node) or ""
        _, found, reason = doc.partition("Long:")
        if not found or not reason.strip():
            out.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    return out


def test_no_module_over_600_lines() -> None:
    assert long_modules(_modules(), SRC.parent) == []


def test_no_function_over_80_lines_without_a_reason() -> None:
    found = []
    for path in _modules():
        found += long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(SRC.parent)))
    assert found == []


def test_the_checks_catch_what_they_should(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    assert long_functions(f"def f() -> None:\n{body}\n", "m") == ["m:1 f: 82 lines"]
    nested = (
        f"class C:\n    async def g(self) -> None:\n    {body.replace(chr(10), chr(10) + '    ')}\n"
    )
    assert long_functions(nested, "m") == ["m:2 g: 82 lines"]
    short = "\n".join(f"    x{i} = {i}" for i in range(79))
    assert long_functions(f"def f() -> None:\n{short}\n", "m") == []
    decorated = "@app.get(\n" + "    '/x',\n" * 10 + ")\n" + "def f() -> None:\n" + short + "\n"
    assert long_functions(decorated, "m") == []
    said = f'def f() -> None:\n    """Long: one table, read top to bottom."""\n{body}\n'
    assert long_functions(said, "m") == []
    bare = f'def f() -> None:\n    """Long:"""\n{body}\n'
    assert long_functions(bare, "m") == ["m:1 f: 83 lines"]
    big = tmp_path / "big.py"
    big.write_text("x = 1\n" * 601)
    ok = tmp_path / "ok.py"
    ok.write_text("x = 1\n" * 600)
    assert long_modules([ok], tmp_path) == []
    assert long_modules([big, ok], tmp_path) == ["big.py: 601"]


CATALOG = SRC / "engine" / "store" / "catalog"
SQL_CALLS = {"execute", "executemany", "executescript", "fetchone", "fetchall", "conn"}


def sql_outside_catalog(source: str, name: str) -> list[str]:
    """Uses of a database connection (``.execute(``, ``.fetchall()``, ``.conn``, ...) in a
    module outside the catalog package: only the catalog runs SQL (docs/design.md)."""
    return [
        f"{name}:{node.lineno} .{node.attr}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in SQL_CALLS
    ]


def test_only_the_catalog_runs_sql() -> None:
    found = []
    for path in _modules():
        if CATALOG in path.parents:
            continue
        found += sql_outside_catalog(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)))
    assert found == []


def test_the_sql_check_catches_what_it_should() -> None:
    source = "def f(cat):\n    cat.conn.execute('SELECT 1').fetchone()\n"
    assert sorted(sql_outside_catalog(source, "m")) == [
        "m:2 .conn",
        "m:2 .execute",
        "m:2 .fetchone",
    ]
    assert sql_outside_catalog("def f(cat):\n    return cat.providers()\n", "m") == []


def test_no_issue_numbers_in_the_source() -> None:
    """The code says why in its own words; issue numbers belong to the tracker."""
    pattern = re.compile(r"\bissues? #?\d+", re.IGNORECASE)
    found = [
        f"{path.relative_to(SRC)}:{n}"
        for path in _modules()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
