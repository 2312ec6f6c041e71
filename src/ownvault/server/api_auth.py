"""Who may use the API: session tokens, compared in constant time, and the CSRF rule.

* ``Authorization: Bearer TOKEN`` authenticates any request. Browsers never attach it on
  their own, so a request carrying it was made by our page's script (or a program that
  holds the token): no other site can forge it (CSRF).
* The ``ov_session`` cookie (``HttpOnly; SameSite=Strict; Path=/api/v1``), set by
  ``POST /session``, authenticates **GET and HEAD only**: downloads by plain links. A
  state-changing request with only the cookie is refused (401), whatever its origin.

Tokens are 32 random bytes (base64url). The one ``ownvault serve`` prints lives as long as
the process; a login with the passphrase issues another one (at most :data:`MAX_SESSIONS`,
oldest dropped first). A presented token is compared with every valid token by
:func:`hmac.compare_digest`, never short-circuiting on the first match.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request

from ownvault.server.api_base import ApiProblem

__all__ = ["COOKIE", "MAX_SESSIONS", "PUBLIC", "Sessions", "new_token"]

COOKIE = "ov_session"
MAX_SESSIONS = 32
SAFE_METHODS = frozenset({"GET", "HEAD"})
# (OpenAPI path, method) of the operations that need no token.
PUBLIC = frozenset({("/openapi.json", "get"), ("/session", "post"), ("/session/info", "get")})


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Sessions:
    """The valid tokens of this process."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ValueError("a session token needs at least 16 characters")
        self.primary = token
        self._issued: list[str] = []

    def valid(self, presented: str | None) -> bool:
        if not presented:
            return False
        ok = False
        given = presented.encode()
        for token in (self.primary, *self._issued):
            ok |= hmac.compare_digest(given, token.encode())
        return ok

    def issue(self) -> str:
        token = new_token()
        self._issued.append(token)
        del self._issued[:-MAX_SESSIONS]
        return token

    def revoke(self, token: str) -> None:
        self._issued = [t for t in self._issued if not hmac.compare_digest(t.encode(), token.encode())]

    @staticmethod
    def bearer(request: Request) -> str | None:
        value = request.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def presented(self, request: Request) -> str | None:
        """The valid token this request authenticates with, or None."""
        token = self.bearer(request)
        if token is not None:
            return token if self.valid(token) else None
        if request.method in SAFE_METHODS:
            cookie = request.cookies.get(COOKIE)
            if cookie is not None and self.valid(cookie):
                return cookie
        return None

    def dependency(self) -> Callable[[Request], Awaitable[None]]:
        """A FastAPI dependency that refuses unauthenticated requests (401)."""

        async def require(request: Request) -> None:
            if self.presented(request) is None:
                if self.bearer(request) is None and request.cookies.get(COOKIE) and request.method not in SAFE_METHODS:
                    raise ApiProblem(401, "unauthorized", "a session cookie alone cannot change anything: send Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"})
                raise ApiProblem(401, "unauthorized", "log in first: Authorization: Bearer TOKEN (printed by `ownvault serve`)", {"WWW-Authenticate": "Bearer"})

        return require
