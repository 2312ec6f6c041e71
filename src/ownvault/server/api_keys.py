"""Identity and the recovery kit.

``GET /identity`` gives the vault's ``did:key``. ``POST /recovery/phrase`` gives the
24-word recovery phrase, and only after the passphrase is entered again (a stolen session
token alone does not reveal it); the response is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from ownvault.core.keystore import Keystore

if TYPE_CHECKING:
    from ownvault.server.api_base import ApiState

__all__ = ["router"]


class IdentityOut(BaseModel):
    did: str
    vault: str


class PassphraseIn(BaseModel):
    passphrase: str = Field(min_length=1, max_length=4096)


class PhraseOut(BaseModel):
    phrase: str
    words: int


def router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["keys"], dependencies=[Depends(state.sessions.dependency())])
    vault = state.vault

    @r.get("/identity", response_model=IdentityOut, summary="The vault's did:key")
    async def identity() -> dict[str, Any]:
        return {"did": vault.did, "vault": str(vault.path)}

    @r.post("/recovery/phrase", response_model=PhraseOut, summary="The recovery phrase (the passphrase again)")
    async def phrase(body: PassphraseIn) -> JSONResponse:
        store = Keystore.from_json((vault.path / "keystore.json").read_bytes())
        await asyncio.to_thread(store.unlock, body.passphrase)
        text = vault.keys.phrase
        return JSONResponse({"phrase": text, "words": len(text.split())}, headers={"Cache-Control": "no-store"})

    return r
