"""The type of decoded JSON whose shape is not yet checked.

``json.loads`` returns ``Any``; ownvault names the result :data:`JSONValue` instead and
narrows it with ``isinstance`` where it is used, so that a hostile document of the wrong
shape fails a check rather than an attribute lookup deep inside a caller.
"""

from __future__ import annotations

from typing import TypeAlias

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
"""Any JSON value, recursively (objects are ``dict``, arrays ``list``)."""

__all__ = ["JSONValue"]
