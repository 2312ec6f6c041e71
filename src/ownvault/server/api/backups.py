"""Backup profiles: ``GET /backups``, ``GET /backups/{name}/runs``,
``GET /backups/{name}/forget-preview``, ``POST /backups/{name}/run``.

The same engine calls as ``ownvault backup ls|run|forget --dry-run`` (``vault.backups``).
A run holds the vault's writer lock until it is done and answers with the recorded run
(``result`` ``ok`` or ``failed``: a failed backup is a result, not an HTTP error).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from ownvault.server.api.auth import require_session
from ownvault.server.api.state import ApiState

__all__ = ["router"]

ProfileName = Path(min_length=1, max_length=64, description="The profile's name.")


class RunOut(BaseModel):
    profile: str
    started: float
    finished: float | None
    result: Literal["running", "ok", "failed"]
    version: int | None
    files: int
    bytes: int
    new_bytes: int
    added: int
    changed: int
    removed: int
    forgotten: int
    error: str | None


class ProfileOut(BaseModel):
    name: str
    source: str
    dest: str
    every: str
    every_seconds: float
    excludes: list[str]
    exclude_file: str | None
    retention: dict[str, Any]
    retention_text: str
    conditions: dict[str, Any]
    created: float
    last_run: RunOut | None
    last_success: float | None
    next_run: float
    overdue: bool
    failed: bool


class ProfileList(BaseModel):
    profiles: list[ProfileOut]


class RunList(BaseModel):
    runs: list[RunOut]


class KeptOut(BaseModel):
    version: int
    time: float
    reasons: list[str] = []


class ForgetPreview(BaseModel):
    name: str
    policy: str
    keep: list[KeptOut]
    remove: list[KeptOut]
    dry_run: bool
    packs_deleted: int
    packs_repacked: int
    bytes_freed: int


def router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["backups"], dependencies=[Depends(require_session(state.sessions))])
    vault = state.vault

    @r.get("/backups", response_model=ProfileList, summary="Backup profiles and their state")
    async def profiles() -> dict[str, Any]:
        return {"profiles": [s.to_json() for s in vault.backups.ls()]}

    @r.get("/backups/{name}/runs", response_model=RunList, summary="A profile's recent runs")
    async def runs(
        name: str = ProfileName, limit: int = Query(default=20, ge=1, le=200)
    ) -> dict[str, Any]:
        return {"runs": [x.to_json() for x in vault.backups.runs(name, limit)]}

    @r.get(
        "/backups/{name}/forget-preview",
        response_model=ForgetPreview,
        summary="What the profile's retention keeps and removes now (changes nothing)",
    )
    async def preview(name: str = ProfileName) -> dict[str, Any]:
        return (await vault.backups.forget(name, dry_run=True)).to_json()

    @r.post("/backups/{name}/run", response_model=RunOut, summary="Run a backup profile now")
    async def run_now(name: str = ProfileName) -> dict[str, Any]:
        return (await vault.backups.run(name)).to_json()

    return r
