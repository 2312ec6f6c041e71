"""What the API's routes share: the open vault, its limits, the session tokens and the jobs.

A leaf: it imports nothing else from :mod:`ownvault.server`, so every route module (and
:mod:`ownvault.server.app`) can import it without a cycle.

Session tokens are 32 random bytes (base64url). The one ``ownvault serve`` prints lives as
long as the process; a login with the passphrase issues another one (at most
:data:`MAX_SESSIONS`, oldest dropped first). A presented token is compared with every valid
token by :func:`hmac.compare_digest`, never short-circuiting on the first match. Who may
use which token for what is :mod:`ownvault.server.api.auth`.

Launch links (:class:`Launches`) are how ``ownvault ui`` hands a session to the browser
without putting a token on any command line: a random nonce, valid once, for
:data:`LAUNCH_SECONDS`.

Jobs are long operations run in the background (:mod:`ownvault.server.api.jobs` starts
them): the last :data:`KEEP` are kept in memory; a job does not survive the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request

from ownvault.engine.vault import Vault
from ownvault.errors import NotFoundError, OwnvaultError

__all__ = [
    "API_PREFIX",
    "COOKIE",
    "KEEP",
    "LAUNCH_SECONDS",
    "MAX_SESSIONS",
    "SAFE_METHODS",
    "ApiLimits",
    "ApiState",
    "Job",
    "JobState",
    "Jobs",
    "Launches",
    "Sessions",
    "new_token",
]

API_PREFIX = "/api/v1"
COOKIE = "ov_session"
MAX_SESSIONS = 32
SAFE_METHODS = frozenset({"GET", "HEAD"})
KEEP = 50
LAUNCH_SECONDS = 60.0
MAX_LAUNCHES = 8


@dataclass(frozen=True, slots=True)
class ApiLimits:
    json_body: int = 1024 * 1024  # any request that is not an upload
    upload_chunk: int = 64 * 1024 * 1024  # one PATCH of an upload session
    upload_total: int = 1 << 40  # one file (upload session or one-shot PUT)
    sessions: int = 64  # open upload sessions
    session_idle_seconds: int = 7 * 24 * 3600


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
        self._issued = [
            t for t in self._issued if not hmac.compare_digest(t.encode(), token.encode())
        ]

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


class Launches:
    """One-time launch nonces: :meth:`new` makes one, :meth:`redeem` accepts it once,
    within :data:`LAUNCH_SECONDS` (a monotonic clock); at most :data:`MAX_LAUNCHES` wait."""

    def __init__(self, seconds: float = LAUNCH_SECONDS) -> None:
        self.seconds = seconds
        self._open: dict[
            str, tuple[float, Callable[[], None] | None]
        ] = {}  # nonce -> (deadline, hook)

    def new(self, redeemed: Callable[[], None] | None = None) -> str:
        """A fresh nonce; ``redeemed`` is called once it has been used."""
        nonce = secrets.token_urlsafe(32)
        self._open[nonce] = (time.monotonic() + self.seconds, redeemed)
        while len(self._open) > MAX_LAUNCHES:
            del self._open[next(iter(self._open))]
        return nonce

    def redeem(self, nonce: str) -> bool:
        now = time.monotonic()
        found = None
        for known in list(self._open):  # compare with every nonce, in constant time each
            if hmac.compare_digest(known.encode(), nonce.encode()):
                found = known
            if self._open[known][0] < now:
                del self._open[known]
        if found is None or found not in self._open:
            return False
        _deadline, hook = self._open.pop(found)
        if hook is not None:
            hook()
        return True


JobState = Literal["running", "done", "failed"]


@dataclass
class Job:
    id: str
    kind: str
    subject: str | None = None  # what the job works on, e.g. the grant a revoke job revokes
    state: JobState = "running"
    done: int = 0
    total: int | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "started": self.started,
            "finished": self.finished,
            "result": self.result,
            "error": self.error,
        }


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.last: dict[str, Job] = {}  # the last finished job of each kind

    def start(
        self, kind: str, fn: Callable[[Job], Awaitable[dict[str, Any]]], subject: str | None = None
    ) -> Job:
        """Start ``fn`` as a job, or return the running job of the same kind and subject."""
        running = next(
            (
                j
                for j in self._jobs.values()
                if (j.kind, j.subject) == (kind, subject) and j.state == "running"
            ),
            None,
        )
        if running is not None:
            return running
        job = Job(secrets.token_hex(8), kind, subject)
        self._jobs[job.id] = job
        while len(self._jobs) > KEEP:
            oldest = next(iter(self._jobs))
            if self._jobs[oldest].state == "running":
                break
            del self._jobs[oldest]

        async def run() -> None:
            try:
                job.result = await fn(job)
                job.state = "done"
            except OwnvaultError as exc:
                job.error = {"code": exc.code, "message": exc.message, **exc.context()}
                job.state = "failed"
            except Exception as exc:  # a bug: reported on the job rather than lost
                job.error = {"code": "error", "message": f"{type(exc).__name__}: {exc}"}
                job.state = "failed"
            finally:
                job.finished = time.time()
                self.last[job.kind] = job

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no such job: {job_id[:40]}")
        return job

    def all(self) -> list[Job]:
        return list(reversed(self._jobs.values()))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task


@dataclass
class ApiState:
    """What the API's routes share: the open vault, sessions, jobs. Writes go through
    ``vault.ctx.write()`` (the engine's lock serializes this process's tasks too)."""

    vault: Vault
    sessions: Sessions
    limits: ApiLimits = field(default_factory=ApiLimits)
    jobs: Jobs = field(default_factory=Jobs)
    launches: Launches = field(default_factory=Launches)
    failures: asyncio.Lock = field(default_factory=asyncio.Lock)  # serializes wrong passphrases
    received: dict[str, str] = field(
        default_factory=dict
    )  # grant id -> grant text (this process only)
