"""Long operations run in the background, with progress the web UI polls.

``POST /jobs {"kind"}`` starts one (or returns the one of that kind still running: pressing
a button twice starts nothing twice) and answers 202; ``GET /jobs/{id}`` gives its state,
``done``/``total`` and, when finished, its ``result`` or ``error``. The last
:data:`KEEP` jobs are kept in memory; a job does not survive the process.

Kinds: ``check`` (:meth:`Vault.check`: every share of every latest version, stat'ed on its
provider), ``deep_check`` (:meth:`Vault.deep_check`: ``check`` plus every share read whole
and verified; bad shares recorded for repair), ``audit`` (:meth:`Vault.audit`: random blocks of every provider's shares
challenged, the run recorded in the catalog: the "last audit" the health view shows per
provider), ``repair`` (:meth:`Vault.repair`: missing and corrupt shares regenerated from
k good ones; progress counts packs), ``rebalance`` (:meth:`Vault.rebalance`: shares moved
to satisfy the placement policy), each that writes under the API's write lock; and
``revoke`` (started by ``POST /grants/{id}/revoke``; its ``subject`` is the grant id;
progress counts the packs re-encrypted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.responses import JSONResponse

from ownvault.server.api.auth import require_session
from ownvault.server.api.state import ApiState, Job

__all__ = ["JobKind", "JobOut", "router"]


class JobKind(StrEnum):
    check = "check"
    deep_check = "deep_check"
    audit = "audit"
    repair = "repair"
    rebalance = "rebalance"


class JobOut(BaseModel):
    id: str
    kind: str
    subject: str | None
    state: str
    done: int
    total: int | None
    started: float
    finished: float | None
    result: dict[str, Any] | None
    error: dict[str, str] | None


class JobList(BaseModel):
    jobs: list[JobOut]


class JobStart(BaseModel):
    kind: JobKind


def router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["jobs"], dependencies=[Depends(require_session(state.sessions))])
    vault = state.vault

    async def check(job: Job) -> dict[str, Any]:
        job.total = 1
        result = await vault.health.check()
        job.done = 1
        return result.to_json()

    async def deep_check(job: Job) -> dict[str, Any]:
        job.total = 1
        async with state.vault.ctx.write():  # records the run and any bad share in the catalog
            result = await vault.health.deep_check()
        job.done = 1
        return result.to_json()

    async def audit(job: Job) -> dict[str, Any]:
        job.total = 1
        async with state.vault.ctx.write():  # records the run in the catalog
            report = await vault.health.audit()
        job.done = 1
        return report.to_json()

    async def repair(job: Job) -> dict[str, Any]:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        async with state.vault.ctx.write():
            report = await vault.health.repair(progress=progress)
        return report.to_json()

    async def rebalance(job: Job) -> dict[str, Any]:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        async with state.vault.ctx.write():
            report = await vault.fleet.rebalance(progress=progress)
        return report.to_json()

    runners: dict[str, Callable[[Job], Awaitable[dict[str, Any]]]] = {
        JobKind.check.value: check,
        JobKind.deep_check.value: deep_check,
        JobKind.audit.value: audit,
        JobKind.repair.value: repair,
        JobKind.rebalance.value: rebalance,
    }

    @r.post("/jobs", status_code=202, response_model=JobOut, summary="Start a background job")
    async def start(body: JobStart) -> JSONResponse:
        job = state.jobs.start(body.kind.value, runners[body.kind.value])
        return JSONResponse(job.to_json(), status_code=202)

    @r.get("/jobs", response_model=JobList, summary="Recent jobs, newest first")
    async def jobs() -> dict[str, Any]:
        return {"jobs": [j.to_json() for j in state.jobs.all()]}

    @r.get("/jobs/{job_id}", response_model=JobOut, summary="One job's state and progress")
    async def job(job_id: str) -> dict[str, Any]:
        return state.jobs.get(job_id).to_json()

    return r
