"""Dashboard sessions: a random secret for the browser's cookie, stored here only as its hash, naming the
API token the user signed in with. A session ends at its expiry, on sign-out, or when its token is
revoked or expires (every look-up joins the token and checks it)."""

from __future__ import annotations

import secrets

from sqlalchemy import and_, delete, insert, or_, select

from accelpool.storage import tables as T
from accelpool.storage.queries import _token_view, hash_token
from accelpool.storage.sql import SqlStore
from accelpool.storage.views import TokenView


def open_session(store: SqlStore, token_id: str, now: float, seconds: float) -> str:
    """A new session for ``token_id`` lasting ``seconds``; answers its secret (shown once, to the cookie)."""
    secret = "ui_" + secrets.token_urlsafe(32)
    with store.write() as c:
        c.execute(delete(T.ui_sessions).where(T.ui_sessions.c.expires <= now))  # sweep the expired
        c.execute(
            insert(T.ui_sessions).values(
                hash=hash_token(secret), token=token_id, created=now, expires=now + seconds
            )
        )
    return secret


def session_token(store: SqlStore, secret: str, now: float) -> TokenView | None:
    """The live, unrevoked token behind a session secret, or None."""
    s, t = T.ui_sessions.c, T.tokens.c
    with store.read() as c:
        r = c.execute(
            select(T.tokens)
            .select_from(T.ui_sessions.join(T.tokens, t.id == s.token))
            .where(
                and_(
                    s.hash == hash_token(secret),
                    s.expires > now,
                    t.revoked.is_(False),
                    or_(t.expires.is_(None), t.expires > now),
                )
            )
        ).first()
    return None if r is None else _token_view(r)


def close_session(store: SqlStore, secret: str) -> None:
    with store.write() as c:
        c.execute(delete(T.ui_sessions).where(T.ui_sessions.c.hash == hash_token(secret)))
