"""Who may use the API: the session-token dependency and the CSRF rule.

* ``Authorization: Bearer TOKEN`` authenticates any request. Browsers never attach it on
  their own, so a request carrying it was made by our page's script (or a program that
  holds the token): no other site can forge it (CSRF).
* The ``ov_session`` cookie (``HttpOnly; SameSite=Strict; Path=/api/v1``), set by
  ``POST /session``, authenticates **GET and HEAD only**: downloads by plain links. A
  state-changing request with only the cookie is refused (401), whatever its origin.

The tokens themselves (issue, compare, revoke) are :class:`ownvault.server.api.state.Sessions`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from ownvault.server.api.problems import ApiProblem
from ownvault.server.api.state import COOKIE, SAFE_METHODS, Sessions

__all__ = ["PUBLIC", "require_session"]

# (OpenAPI path, method) of the operations that need no token.
PUBLIC = frozenset({("/openapi.json", "get"), ("/session", "post"), ("/session/info", "get")})


def require_session(sessions: Sessions) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency that refuses unauthenticated requests (401)."""

    async def require(request: Request) -> None:
        if sessions.presented(request) is None:
            if (
                Sessions.bearer(request) is None
                and request.cookies.get(COOKIE)
                and request.method not in SAFE_METHODS
            ):
                raise ApiProblem(
                    401,
                    "unauthorized",
                    "a session cookie alone cannot change anything: send Authorization: Bearer TOKEN",
                    {"WWW-Authenticate": "Bearer"},
                )
            raise ApiProblem(
                401,
                "unauthorized",
                "log in first: Authorization: Bearer TOKEN (printed by `ownvault serve`)",
                {"WWW-Authenticate": "Bearer"},
            )

    return require
