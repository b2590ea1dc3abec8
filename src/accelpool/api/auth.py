"""Bearer tokens (stored hashed) and roles: admin, program-manager (one program), member (one tenant).

Visibility: an admin sees everything; a member sees its tenant's objects; a program manager sees its
program, the grants from it and the tenants holding them (and their jobs and usage). Anything else is
answered 404, as if it did not exist.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fastapi import Request

from accelpool.api.errors import ApiError
from accelpool.storage.queries import hash_token
from accelpool.storage.sql import SqlStore
from accelpool.storage.views import TokenView

ROLES = ("admin", "program-manager", "member")
_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    token: TokenView

    @property
    def role(self) -> str:
        return self.token.role

    @property
    def is_admin(self) -> bool:
        return self.token.role == "admin"

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise ApiError(403, f"role '{self.role}' may not do this (needs {' or '.join(roles)})", "token")


class TokenCache:
    """Token look-ups by hash, cached a few seconds. A revocation through this store (the API, the CLI
    through the API) ends every cached look-up at once: entries remember the store's write version and
    any invalidating write makes them stale. A revocation written by another process takes effect within
    _CACHE_SECONDS. Unknown tokens are cached too, briefly, so a flood of bad tokens costs no queries."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, int, TokenView | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, secret: str) -> TokenView | None:
        key = hash_token(secret)
        now = time.monotonic()
        version = self.store.write_version
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < _CACHE_SECONDS and hit[1] == version:
            return hit[2]
        tok = self.store.token_by_secret(secret)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, version, tok)
        return tok

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


async def principal(request: Request) -> Principal:
    """Runs on the event loop: a cached look-up costs a hash; a miss is one indexed read."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)", "Authorization")
    tok = request.app.state.tokens.lookup(secret.strip())
    if tok is None:
        raise ApiError(401, "unknown or revoked token", "Authorization")
    return Principal(tok)


def visible_tenants(store: SqlStore, p: Principal) -> list[str] | None:
    """Tenants whose objects ``p`` may see; None means all."""
    if p.is_admin:
        return None
    if p.role == "member":
        return [p.token.tenant] if p.token.tenant else []
    if p.token.program is None:
        return []
    return sorted({g.tenant for g in store.list_grants(programs=[p.token.program])})


def visible_programs(store: SqlStore, p: Principal) -> list[str] | None:
    if p.is_admin:
        return None
    if p.role == "program-manager":
        return [p.token.program] if p.token.program else []
    return sorted({g.program for g in store.list_grants(tenants=[p.token.tenant or ""])})
