"""Bearer tokens (stored hashed) and roles: admin, operator, program-manager (one program), member (one tenant).

An operator runs the pool's machines: nodes (add, drain, resize, remove), sites (but their executor,
connection and data classes) and prices; it sees every job, usage and cost, but not a job's command,
environment or log, and it may not submit or cancel jobs, mint tokens, or touch programs, grants or tenants
(the admin's: money and who may use the pool). Give the people who keep the
hardware running an operator token: one that registers nodes no longer spends any tenant's grant.

Visibility: an admin and an operator see everything; a member sees its tenant's objects; a program manager sees its
program, the grants from it and the tenants holding them (and their jobs and usage). Anything else is
answered 404, as if it did not exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from accelpool.api.errors import ApiError, not_found
from accelpool.storage.queries import hash_token
from accelpool.storage.sql import SqlStore
from accelpool.storage.views import TokenView

ROLES = ("admin", "operator", "program-manager", "member")
_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    token: TokenView
    job: str | None = None  # a per-job token: only this job (see JobTokens)

    @property
    def role(self) -> str:
        return self.token.role

    @property
    def is_admin(self) -> bool:
        return self.token.role == "admin"

    @property
    def runs_pool(self) -> bool:
        """Whether it may change the pool's machines (nodes, sites, prices): an admin or an operator."""
        return self.token.role in ("admin", "operator")

    @property
    def sees_all(self) -> bool:
        """Whether it sees every tenant's and program's objects (an admin, an operator)."""
        return self.token.role in ("admin", "operator")

    @property
    def sees_contents(self) -> bool:
        """Whether a job's command and output are shown: not to a program manager, who sees the jobs
        charged to its program's grants for their use and cost, nor to an operator, who sees every job for
        the pool's upkeep (a command line or a log may hold the tenant's secrets and code, and neither is
        the tenant)."""
        return self.token.role not in ("program-manager", "operator")

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise ApiError(403, f"role '{self.role}' may not do this (needs {' or '.join(roles)})", "token")


class TokenCache:
    """Token look-ups by hash, cached a few seconds. A revocation through this store (the API, the CLI
    through the API) ends every cached look-up at once: entries remember the store's write version and
    any invalidating write makes them stale. A revocation written by another process takes effect within
    _CACHE_SECONDS. Unknown tokens are cached too, briefly, so a flood of bad tokens costs no queries."""

    def __init__(
        self,
        store: SqlStore,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``now``: the clock expiry is judged by (the app's ``Hooks.now``); ``monotonic``: the cache's."""
        self.store = store
        self._now = now
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, int, TokenView | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, secret: str) -> TokenView | None:
        key = hash_token(secret)
        mono = self._monotonic()
        version = self.store.write_version
        hit = self._cache.get(key)
        if hit is not None and mono - hit[0] < _CACHE_SECONDS and hit[1] == version:
            tok = hit[2]
        else:
            tok = self.store.token_by_secret(secret, now=self._now())
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = (mono, version, tok)
        if tok is not None and tok.expires is not None and tok.expires <= self._now():
            return None  # expired (also while cached)
        return tok

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


JOB_TOKEN_PREFIX = "apj_"
JOB_TOKEN_ROLE = "job"


class JobTokens:
    """Per-job tokens: ``apj_<job id, base64>.<attempt>.<HMAC-SHA256>``, signed with a key kept in the data
    dir (``job-token.key``, 0600; jobs never see the data dir). Nothing is stored: a token is valid while
    its job is running that attempt (checked in the store on every request), so it dies with the attempt.
    It may only read its own job and report its own progress (``JOB_ROUTES``)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_data_dir(cls, data_dir: str | Path) -> JobTokens:
        path = Path(data_dir) / "job-token.key"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):  # the other process may be writing it now
                key = path.read_bytes()
                if len(key) == 32:
                    return cls(key)
                time.sleep(0.02)
            raise RuntimeError(
                f"{path}: not a job-token key (32 bytes); remove it to make a new one"
            ) from None
        key = secrets.token_bytes(32)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return cls(key)

    def _mac(self, job_id: str, attempt: int) -> str:
        msg = f"{job_id}\0{attempt}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def issue(self, job_id: str, attempt: int) -> str:
        jid = base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")
        return f"{JOB_TOKEN_PREFIX}{jid}.{attempt}.{self._mac(job_id, attempt)}"

    def verify(self, secret: str) -> tuple[str, int] | None:
        """(job id, attempt) of a well-signed token, else None."""
        m = re.fullmatch(
            rf"{JOB_TOKEN_PREFIX}([A-Za-z0-9_-]{{1,200}})\.(\d{{1,9}})\.([0-9a-f]{{64}})", secret
        )
        if m is None:
            return None
        try:
            raw = m.group(1)
            job_id = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        attempt = int(m.group(2))
        if not hmac.compare_digest(self._mac(job_id, attempt), m.group(3)):
            return None
        return job_id, attempt


def job_routes(job_id: str) -> set[tuple[str, str]]:
    """What a job token may call: read its own job (and events) and report its own progress."""
    base = f"/api/v1/jobs/{job_id}"
    return {("GET", base), ("GET", base + "/events"), ("POST", base + "/progress"), ("GET", "/api/v1/whoami")}


def _job_principal(request: Request, secret: str) -> Principal:
    tokens: JobTokens | None = getattr(request.app.state, "job_tokens", None)
    found = tokens.verify(secret) if tokens is not None else None
    if found is None:
        raise ApiError(401, "unknown or revoked token", "Authorization")
    job_id, attempt = found
    v = request.app.state.store.get_job(job_id)
    if v is None or v.state.value != "running" or v.attempts != attempt:
        raise ApiError(401, "job token expired: its job attempt is not running any more", "Authorization")
    if (request.method, request.url.path.rstrip("/")) not in job_routes(job_id):
        raise ApiError(
            403, "a job token may only read its own job and report its own progress", "Authorization"
        )
    view = TokenView(
        id=f"job:{job_id}",
        name=f"job {job_id} attempt {attempt}",
        role="member",
        tenant=v.tenant,
        program=None,
        created=0.0,
        revoked=False,
    )
    return Principal(view, job=job_id)


async def principal(request: Request) -> Principal:
    """Runs on the event loop: a cached look-up costs a hash; a miss is one indexed read."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)", "Authorization")
    if secret.strip().startswith(JOB_TOKEN_PREFIX):
        return _job_principal(request, secret.strip())
    tok = request.app.state.tokens.lookup(secret.strip())
    if tok is None:
        raise ApiError(401, "unknown or revoked token", "Authorization")
    return Principal(tok)


def visible_tenants(store: SqlStore, p: Principal) -> list[str] | None:
    """Tenants whose objects ``p`` may see; None means all."""
    if p.sees_all:
        return None
    if p.role == "member":
        return [p.token.tenant] if p.token.tenant else []
    if p.token.program is None:
        return []
    return sorted({g.tenant for g in store.list_grants(programs=[p.token.program])})


def visible_programs(store: SqlStore, p: Principal) -> list[str] | None:
    if p.sees_all:
        return None
    if p.role == "program-manager":
        return [p.token.program] if p.token.program else []
    return sorted({g.program for g in store.list_grants(tenants=[p.token.tenant or ""])})


def one_visible(seen: list[str] | None, every: Callable[[], set[str]], name: str, what: str) -> list[str]:
    """``[name]`` when the caller sees it (``seen``: what ``visible_tenants``/``visible_programs`` gave,
    None for all, then checked against ``every()``); else 404 as for one that does not exist, so a report
    or a job list narrowed to a typo says so instead of showing an empty page."""
    if name not in (seen if seen is not None else every()):
        raise not_found(what, what)
    return [name]


def visible_grants(store: SqlStore, p: Principal) -> list[str] | None:
    """Grants whose jobs ``p`` may see; None means no restriction by grant. A program manager sees the
    jobs charged to its program's grants, not every job of the tenants holding them."""
    if p.role != "program-manager":
        return None
    if p.token.program is None:
        return []
    return sorted(g.id for g in store.list_grants(programs=[p.token.program]))
