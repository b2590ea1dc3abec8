"""Python SDK for the accelpool REST API (httpx). The CLI uses it; jobs can use it to report progress.

from accelpool.sdk import Client
c = Client.from_env()                      # ACCELPOOL_URL / ACCELPOOL_TOKEN, or the data dir
job = c.submit({"name": "x", "command": "python train.py", "resources": {"type": "h100", "count": 2}})
c.jobs(state=["running"])                  # one page; c.iter_jobs() walks every page
c.report_progress(job["id"], steps=100, steps_per_second=3.2)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from accelpool.core.errors import AccelpoolError, InputError, NotFound


class ApiError(AccelpoolError):
    """A 4xx/5xx answer: ``status``, the ``field`` it names (if any) and the ``reason``."""

    def __init__(self, status: int, reason: str, field: str | None = None) -> None:
        self.status, self.reason, self.field = status, reason, field
        where = f"field '{field}': " if field else ""
        super().__init__(f"{status}: {where}{reason}")


class Rejected(InputError):
    """The server refused the request as bad input (400, 409 or 422): the CLI exits 2 with its reason."""

    def __init__(self, status: int, reason: str, field: str | None = None) -> None:
        self.status, self.reason = status, reason
        super().__init__(reason, field=field)


def segment(value: object, field: str) -> str:
    """An id as one segment of a URL path: InputError (naming ``field`` and the value) for one that is not a
    non-empty string or would change the path (``/``, ``.``, ``..``, ``?``, ``#``, control characters);
    anything else percent-encoded. Without it ``c.job("../tokens")`` read another listing (the HTTP
    client resolves dot segments) and ``show j-1/events`` printed the events as if they were the job."""
    if not isinstance(value, str) or not value.strip():
        raise InputError("must be a non-empty id", field=field, value=repr(value))
    if (
        value in (".", "..")
        or any(c in value for c in "/?#\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        raise InputError("is not an id (it would change the request's path)", field=field, value=value)
    return quote(value, safe="")


def _data_dir(data_dir: str | Path | None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get("ACCELPOOL_HOME", Path.home() / ".accelpool"))


class Client:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        tenant: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.tenant = tenant
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_env(
        cls, url: str | None = None, token: str | None = None, data_dir: str | Path | None = None
    ) -> Client:
        """Options first, then ACCELPOOL_URL / ACCELPOOL_TOKEN, then <data dir>/client.json and admin-token."""
        d = _data_dir(data_dir)
        cfg: dict[str, Any] = {}
        if (d / "client.json").exists():
            cfg = json.loads((d / "client.json").read_text())
        url = url or os.environ.get("ACCELPOOL_URL") or cfg.get("url") or "http://127.0.0.1:8470"
        token = token or os.environ.get("ACCELPOOL_TOKEN")
        if token is None and cfg.get("token_file") and Path(cfg["token_file"]).exists():
            token = Path(cfg["token_file"]).read_text().strip()
        if token is None and (d / "admin-token").exists():
            token = (d / "admin-token").read_text().strip()
        return cls(url, token, tenant=cfg.get("tenant"))

    def close(self) -> None:
        self.http.close()

    # -- plumbing -------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, "/api/v1" + path, **kw)
        except httpx.HTTPError as exc:
            raise AccelpoolError(f"cannot reach the accelpool server at {self.url}: {exc}") from exc
        if r.status_code >= 400:
            try:
                err = r.json().get("error", {})
            except ValueError:
                err = {}
            reason, fld = err.get("reason") or r.text, err.get("field")
            if r.status_code == 404:
                raise NotFound(f"{fld or 'object'}: {reason}")
            if r.status_code in (400, 409, 422):
                raise Rejected(r.status_code, reason, fld)
            raise ApiError(r.status_code, reason, fld)
        if r.status_code >= 300:  # a redirect is never an answer of the API
            raise ApiError(r.status_code, f"unexpected redirect to {r.headers.get('location', '?')}")
        try:
            return r.json()
        except ValueError:
            raise ApiError(r.status_code, f"the server's answer is not JSON: {r.text[:200]!r}") from None

    # -- jobs -----------------------------------------------------------------------------------------

    def submit(
        self, spec: dict[str, Any], *, idempotency_key: str | None = None, tenant: str | None = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        params = {"tenant": tenant} if tenant else {}
        return self._call("POST", "/jobs", json=spec, headers=headers, params=params)  # type: ignore[no-any-return]

    def jobs(
        self,
        *,
        state: list[str] | None = None,
        tenant: str | None = None,
        limit: int = 50,
        cursor: int | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        if tenant:
            params["tenant"] = tenant
        if cursor is not None:
            params["cursor"] = cursor
        return self._call("GET", "/jobs", params=params)  # type: ignore[no-any-return]

    def iter_jobs(self, **kw: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.jobs(cursor=cursor, **kw)
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{segment(job_id, 'job')}")  # type: ignore[no-any-return]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{segment(job_id, 'job')}/cancel")  # type: ignore[no-any-return]

    def logs_page(self, job_id: str, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
        """One page of a job's output: ``logs``, ``offset``, ``next_offset`` (None at the end), ``size``."""
        params: dict[str, int] = {"offset": offset} | ({"limit": limit} if limit is not None else {})
        path = f"/jobs/{segment(job_id, 'job')}/logs"
        return self._call("GET", path, params=params)  # type: ignore[no-any-return]

    def logs(self, job_id: str) -> str:
        """A job's whole output (every page)."""
        parts, offset = [], 0
        while True:
            page = self.logs_page(job_id, offset)
            parts.append(str(page["logs"]))
            if page.get("next_offset") is None:
                return "".join(parts)
            offset = int(page["next_offset"])

    def report_progress(
        self, job_id: str, steps: float | None = None, steps_per_second: float | None = None
    ) -> None:
        body = {k: v for k, v in (("steps", steps), ("steps_per_second", steps_per_second)) if v is not None}
        self._call("POST", f"/jobs/{segment(job_id, 'job')}/progress", json=body)

    def usage(
        self,
        *,
        by: list[str] | None = None,
        period: str | None = None,
        since: float | None = None,
        until: float | None = None,
        tenant: str | None = None,
        program: str | None = None,
    ) -> dict[str, Any]:
        params = {
            k: v
            for k, v in (
                ("by", by),
                ("period", period),
                ("since", since),
                ("until", until),
                ("tenant", tenant),
                ("program", program),
            )
            if v is not None
        }
        return self._call("GET", "/usage", params=params)  # type: ignore[no-any-return]

    # -- operators ------------------------------------------------------------------------------------

    def get(self, what: str) -> Any:
        return self._call("GET", f"/{what}")

    def post(self, what: str, body: Any) -> Any:
        return self._call("POST", f"/{what}", json=body)

    def put(self, what: str, body: Any) -> Any:
        return self._call("PUT", f"/{what}", json=body)

    def patch(self, what: str, body: Any) -> Any:
        return self._call("PATCH", f"/{what}", json=body)

    def delete(self, what: str) -> Any:
        return self._call("DELETE", f"/{what}")
