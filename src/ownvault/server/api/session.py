"""Logging in and out: ``POST /session`` (token or passphrase), ``DELETE /session``.

A login with the passphrase runs the keystore's Argon2id check in a thread; failures are
serialized and each costs at least :data:`FAIL_DELAY` seconds, so the endpoint is no
faster an oracle than the keystore file itself.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Annotated

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ownvault.core.keystore import Keystore
from ownvault.errors import AuthError
from ownvault.server.api.auth import require_session
from ownvault.server.api.problems import ApiProblem
from ownvault.server.api.state import API_PREFIX, COOKIE, ApiState, Sessions

__all__ = ["FAIL_DELAY", "check_passphrase", "router"]

FAIL_DELAY = 1.0


async def check_passphrase(state: ApiState, passphrase: str) -> None:
    """The keystore's Argon2id check of ``passphrase`` (``AuthError`` when wrong). Failures
    are serialized and each costs at least :data:`FAIL_DELAY` seconds, for every route that
    takes the passphrase (login, recovery phrase, guardian shares)."""
    try:
        store = Keystore.from_json((state.vault.path / "keystore.json").read_bytes())
        await asyncio.to_thread(store.unlock, passphrase)
    except AuthError:
        async with state.failures:
            await asyncio.sleep(FAIL_DELAY)
        raise


class Login(BaseModel):
    passphrase: str | None = Field(
        default=None,
        max_length=4096,
        description="The vault's passphrase (not needed with a Bearer token).",
    )


class SessionOut(BaseModel):
    token: str
    did: str


class SessionInfo(BaseModel):
    authenticated: bool
    version: str


def _cookie(response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=API_PREFIX)


def router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["session"])
    sessions: Sessions = state.sessions

    @r.post(
        "/session",
        response_model=SessionOut,
        summary="Log in: exchange a token or the passphrase for a session",
    )
    async def login(request: Request, body: Annotated[Login | None, Body()] = None) -> Response:
        token = Sessions.bearer(request)
        if token is not None:
            if not sessions.valid(token):
                raise ApiProblem(401, "unauthorized", "invalid token")
        elif body is not None and body.passphrase:
            await check_passphrase(state, body.passphrase)
            token = sessions.issue()
        else:
            raise ApiProblem(
                401, "unauthorized", 'send Authorization: Bearer TOKEN or {"passphrase": ...}'
            )
        response = JSONResponse({"token": token, "did": state.vault.did})
        _cookie(response, token)
        return response

    @r.delete(
        "/session",
        status_code=204,
        dependencies=[Depends(require_session(sessions))],
        summary="Log out: forget this session's token and cookie",
    )
    async def logout(request: Request) -> Response:
        token = sessions.presented(request)
        if token is not None and token != sessions.primary:
            sessions.revoke(token)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path=API_PREFIX, httponly=True, samesite="strict")
        return response

    @r.get("/session/info", response_model=SessionInfo, summary="Whether this request is logged in")
    async def info(request: Request) -> dict[str, object]:
        return {
            "authenticated": sessions.presented(request) is not None,
            "version": version("ownvault"),
        }

    return r
