"""File commands: init, put, get, ls, versions, rm, du, providers, check (filled by the engine)."""

from __future__ import annotations
