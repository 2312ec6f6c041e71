"""The public API is exactly ``ownvault.__all__`` (in the style of httpx's
``tests/test_exported_members.py``): sorted, every name in it exported, and every public
name of the package in it."""

from __future__ import annotations

import types

import ownvault

# Dunder names that are part of the API.
INCLUDED_PRIVATE = {"__version__"}


def _subpackage(value: object) -> bool:
    """``ownvault.core`` etc.: set on the package by importing them, not API names."""
    return isinstance(value, types.ModuleType) and value.__name__.startswith("ownvault.")


def test_all_is_sorted() -> None:
    assert ownvault.__all__ == sorted(ownvault.__all__)


def test_every_name_in_all_is_exported() -> None:
    namespace: dict[str, object] = {}
    exec("from ownvault import *", namespace)
    assert sorted(n for n in namespace if n != "__builtins__") == ownvault.__all__


def test_every_public_name_is_in_all() -> None:
    """``dir(ownvault)`` (which names the lazily imported ones too, see the package's
    ``__getattr__``), each name resolved."""
    public = sorted(
        name
        for name in dir(ownvault)
        if (not name.startswith("_") or name in INCLUDED_PRIVATE)
        and not _subpackage(getattr(ownvault, name))
    )
    assert public == ownvault.__all__


def test_an_unknown_name_is_an_attribute_error() -> None:
    """The lazy ``__getattr__`` answers only for the names it has."""
    assert not hasattr(ownvault, "NoSuchName")


def test_exports_come_from_the_package() -> None:
    """No stray re-export of a third-party name (a class or function defined outside ownvault)."""
    for name in ownvault.__all__:
        value = getattr(ownvault, name)
        module = getattr(value, "__module__", "ownvault")
        assert module.startswith("ownvault"), (name, module)
