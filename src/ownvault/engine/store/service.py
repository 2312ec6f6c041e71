"""How a feature offers its functions as methods: ``op(fn)`` binds a ``fn(ctx, ...)``.

A feature's functions take the :class:`~ownvault.engine.store.context.VaultContext` first;
its service class (``vault.sharing``, ``vault.keys``, ...) holds one context and lists the
functions it offers with :class:`op`, so ``vault.sharing.share(...)`` is
``sharing.grants.share(ctx, ...)`` with the same signature and documentation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast, overload

from ownvault.engine.store.context import VaultContext

__all__ = ["Service", "op"]

P = ParamSpec("P")
R = TypeVar("R")


class Service:
    """A feature's face on one vault."""

    def __init__(self, ctx: VaultContext) -> None:
        self.ctx = ctx


class op(Generic[P, R]):
    """A feature function offered as a method of a :class:`Service`, with ``ctx`` bound."""

    def __init__(self, fn: Callable[Concatenate[VaultContext, P], R]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> op[P, R]: ...

    @overload
    def __get__(self, obj: Service, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, obj: Service | None, owner: type[Any]) -> op[P, R] | Callable[P, R]:
        if obj is None:
            return self
        return cast(Callable[P, R], functools.partial(self.fn, obj.ctx))
