"""Identity and the recovery kit.

``GET /identity`` gives the vault's ``did:key``, its X25519 key-agreement key and a signed
contact card (``GET /identity/card`` is the same card as a file to hand out).
``POST /recovery/phrase`` gives the 24-word recovery phrase and ``POST /recovery/guardians``
SLIP-39 guardian shares, each only after the passphrase is entered again (a stolen session
token alone reveals neither). Secrets travel only in those response bodies, which are
``Cache-Control: no-store``; never in a URL, a log line or an error message.
``POST /keys/passphrase`` changes the passphrase (the old one again first) and
``POST /keys/rotate`` starts a new content-key epoch, as ``ownvault keys passphrase|rotate``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from ownvault.core.guardians import MAX_SHARES, GuardianGroup
from ownvault.server.api.auth import require_session
from ownvault.server.api.session import check_passphrase
from ownvault.server.api.state import ApiState

__all__ = ["CardOut", "router"]

CardName = Annotated[
    str | None, Query(min_length=1, max_length=200, description="A name to put on the card.")
]


class CardOut(BaseModel):
    format: str
    version: int
    did: str
    agreement: str
    name: str | None
    created: int
    sig: str


class IdentityOut(BaseModel):
    did: str
    agreement: str = Field(
        description="The X25519 key-agreement key (multibase), which grants are sealed to."
    )
    card: CardOut
    vault: str


class PassphraseIn(BaseModel):
    passphrase: str = Field(min_length=1, max_length=4096)


class NewPassphraseIn(PassphraseIn):
    new_passphrase: str = Field(min_length=1, max_length=4096)


class PassphraseOut(BaseModel):
    vault: str
    kdf: dict[str, int]


class RotateIn(BaseModel):
    rewrap: bool = Field(
        default=False, description="Also re-wrap every existing chunk key under the new epoch."
    )


class RotateOut(BaseModel):
    epoch: int
    rewrapped: int


class PhraseOut(BaseModel):
    phrase: str
    words: int


class GuardiansIn(PassphraseIn):
    threshold: int = Field(ge=1, le=MAX_SHARES, description="Shares needed to recover.")
    shares: int = Field(ge=2, le=MAX_SHARES, description="Shares to make (one per guardian).")


class GuardianGroupOut(BaseModel):
    threshold: int
    shares: int
    mnemonics: list[str] = Field(description="One SLIP-39 mnemonic (33 words) per guardian.")


class GuardiansOut(BaseModel):
    group_threshold: int
    groups: list[GuardianGroupOut]


def router(state: ApiState) -> APIRouter:
    """The identity, recovery and key routes, bound to ``state``.

    Long: small route handlers, each a closure over ``state`` and the router; one function
    keeps every route of the tag in one place.
    """
    r = APIRouter(tags=["keys"], dependencies=[Depends(require_session(state.sessions))])
    vault = state.vault

    @r.get(
        "/identity",
        response_model=IdentityOut,
        summary="The vault's did:key, X25519 key and contact card",
    )
    async def identity(name: CardName = None) -> dict[str, Any]:
        return {**asdict(vault.sharing.identity(name)), "vault": str(vault.path)}

    @r.get(
        "/identity/card",
        summary="The contact card as a file to give out (signed; public)",
        response_class=Response,
        responses={200: {"content": {"application/json": {"schema": CardOut.model_json_schema()}}}},
    )
    async def card(name: CardName = None) -> Response:
        doc = vault.sharing.identity(name).card
        body = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        return Response(
            body,
            media_type="application/json",
            headers={
                "Content-Disposition": 'attachment; filename="ownvault-contact.json"',
                "Cache-Control": "no-store",
            },
        )

    @r.post(
        "/recovery/phrase",
        response_model=PhraseOut,
        summary="The recovery phrase (the passphrase again)",
    )
    async def phrase(body: PassphraseIn) -> JSONResponse:
        await check_passphrase(state, body.passphrase)
        text = vault.keys.phrase
        return JSONResponse(
            {"phrase": text, "words": len(text.split())}, headers={"Cache-Control": "no-store"}
        )

    @r.post(
        "/recovery/guardians",
        response_model=GuardiansOut,
        summary="SLIP-39 guardian shares: any THRESHOLD of SHARES recover the vault (the passphrase again)",
    )
    async def guardians(body: GuardiansIn) -> JSONResponse:
        group = GuardianGroup(body.threshold, body.shares)  # UsageError for 1-of-N and T > N
        await check_passphrase(state, body.passphrase)
        [mnemonics] = vault.keyring.guardian_shares([group])
        doc = {
            "group_threshold": 1,
            "groups": [
                {"threshold": group.threshold, "shares": group.count, "mnemonics": mnemonics}
            ],
        }
        return JSONResponse(doc, headers={"Cache-Control": "no-store"})

    @r.post(
        "/keys/passphrase",
        response_model=PassphraseOut,
        summary="Change the passphrase (the keystore is sealed again; sessions stay valid)",
    )
    async def passphrase(body: NewPassphraseIn) -> PassphraseOut:
        await check_passphrase(state, body.passphrase)
        async with state.vault.ctx.write():
            done = await vault.keyring.change_passphrase(body.passphrase, body.new_passphrase)
        return PassphraseOut.model_validate(asdict(done))

    @r.post(
        "/keys/rotate",
        response_model=RotateOut,
        summary="A new content-key epoch for chunk keys written from now on",
    )
    async def rotate(body: RotateIn) -> RotateOut:
        async with state.vault.ctx.write():
            rotation = await vault.keyring.rotate_content_key(rewrap=body.rewrap)
        return RotateOut.model_validate(asdict(rotation))

    return r
