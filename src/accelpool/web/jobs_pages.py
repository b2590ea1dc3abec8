"""The job pages: the history (search, filters, sort, keyset pages), a job's page (summary, reason and
position in words, attempts with KRW, events timeline, logs paged and following) and cancel."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from accelpool.api.auth import Principal, visible_grants, visible_programs, visible_tenants
from accelpool.api.routers import jobs as jobs_api
from accelpool.storage import dashboard as read
from accelpool.storage.sql import SqlStore
from accelpool.web.frame import (
    LOG_LINES,
    PER_PAGE,
    STATES,
    act,
    error_page,
    form_action,
    locale,
    login_page,
    parse_date,
    placement_text,
    principal,
    render,
    wants_text,
)
from accelpool.web.i18n import Locale


def visible_job(store: SqlStore, who: Principal, job_id: str) -> Any:
    """The job if ``who`` may see it (the API's rules: its tenants, and a program manager only the jobs
    charged to its program's grants), else None."""
    v = store.get_job(job_id, visible_tenants(store, who))
    grants = visible_grants(store, who)
    if v is None or (grants is not None and v.spec.get("grant") not in grants):
        return None
    return v


def attempt_start(store: SqlStore, v: Any) -> float:
    """When the current attempt started: the last ``running`` event (the first start for a job never
    preempted). Only used for the few running jobs shown."""
    if not v.preemptions:
        return float(v.start_time)
    starts = [e.time for e in store.job_events(v.id) if e.state == "running"]
    return starts[-1] if starts else float(v.start_time)


def waiting_since(store: SqlStore, v: Any) -> float:
    """When the job last joined the queue: submission, or its last requeue after a preemption or a lost
    node (only looked up for the few jobs shown that were ever preempted)."""
    if not v.preemptions:
        return float(v.submit_time)
    times = [e.time for e in store.job_events(v.id) if e.state in ("queued", "preempted")]
    return times[-1] if times else float(v.submit_time)


def _mark(e: Any, prev: str | None) -> str:
    """What a timeline line is marked as: a lost node or site, a run lost, a preemption, a requeue."""
    why = (e.reason or "").lower()
    if e.state in ("preempted", "failed"):
        if why.startswith("node-lost") or ("node" in why and ("lost" in why or "down" in why)):
            return "node lost"
        if why.startswith("site-lost"):
            return "site lost"
        if why == "lost" or why.startswith("lost:"):
            return "run lost"
    if e.state == "preempted":
        return "preemption"
    if e.state == "queued" and prev in ("running", "preempted"):
        return "requeued"
    return ""


MAX_PAGE = 1_000_000
"""The highest page number a job list reads (50 jobs a page): a larger one overflowed SQLite's 64-bit
OFFSET (a 500, a review's probe); it shows the last page's emptiness like any page past the end."""
LOG_LINE_CHARS = 2000  # a page is at most LOG_LINES lines of this many characters (one-line floods)


def _cut(line: str, job_id: str, loc: Locale) -> str:
    if len(line) <= LOG_LINE_CHARS:
        return line
    more = loc(
        "{n} more characters in this line (GET /api/v1/jobs/{id}/logs)",
        n=len(line) - LOG_LINE_CHARS,
        id=job_id,
    )
    return f"{line[:LOG_LINE_CHARS]} [... {more}]"


def job_data(
    store: SqlStore, v: Any, logs: str, log_from: int | None, now: float, loc: Locale
) -> dict[str, Any]:
    events = store.job_events(v.id)
    charges = read.job_charges(store, v.id)
    tries = read.attempts(events, charges)
    timeline = []
    prev = None
    for e in events:
        timeline.append({"time": e.time, "state": e.state, "reason": e.reason, "kind": _mark(e, prev)})
        prev = e.state
    lines = logs.splitlines()
    n = len(lines)
    follow = log_from is None
    start = max(0, n - LOG_LINES) if log_from is None else max(0, min(log_from, max(n - 1, 0)))
    shown = [_cut(ln, v.id, loc) for ln in lines[start : start + LOG_LINES]]
    return {
        "job": v,
        "placement": placement_text(v.placement),
        "wants": wants_text(v.spec, loc),
        "timeline": timeline,
        "tries": tries,
        "total": sum(t.krw for t in tries) if tries else (v.charged_krw or 0),
        "logs": "\n".join(shown),
        "log_start": start + 1 if shown else 0,
        "log_end": start + len(shown),
        "log_n": n,
        "follow": follow and v.state.value == "running",
        "log_prev": max(0, start - LOG_LINES),
        "log_next": start + LOG_LINES if start + LOG_LINES < n else None,
        "has_earlier": start > 0,
    }


def install(app: FastAPI) -> None:
    @app.get("/ui/jobs", include_in_schema=False)
    async def jobs(request: Request) -> Response:
        who = principal(request)
        if who is None:
            return login_page(request, 401)
        loc = locale(request)
        qp = request.query_params
        f = read.JobFilter(
            q=qp.get("q", "").strip()[:100],
            state=qp.get("state", "") if qp.get("state") in STATES else "",
            tenant=qp.get("tenant", "").strip()[:64],
            program=qp.get("program", "").strip()[:64],
            type=qp.get("type", "").strip()[:64],
            since=parse_date(qp.get("since", ""), loc),
            until=parse_date(qp.get("until", ""), loc, end_of_day=True),
            sort=qp.get("sort", "new") if qp.get("sort") in read.SORTS else "new",
        )

        def number(name: str) -> int | None:
            v = qp.get(name, "")
            return int(v) if v.isascii() and v.isdigit() and len(v) < 19 else None

        page = min(max(1, number("page") or 1), MAX_PAGE)
        after, before = number("after"), number("before")
        store: SqlStore = request.app.state.store

        def load() -> tuple[read.JobPage, list[str] | None, list[str] | None]:
            tenants = visible_tenants(store, who)
            found = read.search_jobs(
                store,
                tenants,
                f,
                page=page,
                per_page=PER_PAGE,
                grants=visible_grants(store, who),
                after=after,
                before=None if after is not None else before,
            )
            return found, tenants, visible_programs(store, who)

        found, tenants, programs = await run_in_threadpool(load)
        pages = max(1, math.ceil(found.total / PER_PAGE))
        base = {k: v for k, v in qp.items() if k not in ("page", "after", "before") and v}

        def link(p: int, **cursor: int) -> str:
            return "/ui/jobs?" + urlencode({**base, **({"page": p} if p > 1 else {}), **cursor})

        return render(
            request,
            "jobs.html",
            more=found.capped,
            who=who,
            title=loc("Jobs"),
            rows=found.rows,
            total=found.total,
            page=page,
            pages=max(pages, page),
            f=f,
            qp=qp,
            states=STATES,
            sorts=list(read.SORTS),
            prev_link=None
            if found.prev_before is None
            else link(page - 1)
            if page == 2
            else link(page - 1, before=found.prev_before),
            next_link=None if found.next_after is None else link(page + 1, after=found.next_after),
            tenant_choices=tenants if tenants is not None else [t.id for t in store.list_tenants()],
            program_choices=programs if programs is not None else [p.id for p in store.list_programs()],
            type_choices=sorted({n.accelerator for n in store.list_nodes()}),
            wants=lambda s: wants_text(s, loc),
            now=request.app.state.hooks.now(),
        )

    @app.get("/ui/jobs/{job_id}", include_in_schema=False)
    async def job_route(request: Request, job_id: str) -> Response:
        # message, error and status are the page's own (a refused form shows the page again), never the
        # query string's: a link could otherwise put any text in the page's alert or any status on it
        done = locale(request)("Done.") if request.query_params.get("done") else ""
        return await job(request, job_id, message=done)

    async def job(
        request: Request, job_id: str, message: str = "", error: str = "", status: int = 200
    ) -> Response:
        who = principal(request)
        if who is None:
            return login_page(request, 401)
        loc = locale(request)
        store: SqlStore = request.app.state.store
        v = await run_in_threadpool(visible_job, store, who, job_id)
        if v is None:
            return error_page(request, 404, loc("Not found"), loc("No such job, or you may not see it."), who)
        contents = who.sees_contents
        started = v.attempts or v.start_time is not None  # a job never started has no output to ask for
        logs = await run_in_threadpool(request.app.state.hooks.logs, v.id) if contents and started else ""
        lf = request.query_params.get("log")
        log_from = int(lf) if lf and lf.isascii() and lf.isdigit() and len(lf) < 19 else None
        data = await run_in_threadpool(
            job_data, store, v, logs or "", log_from, request.app.state.hooks.now(), loc
        )
        can_cancel = who.role in ("member", "admin") and not v.state.terminal
        return render(
            request,
            "job.html",
            status,
            who=who,
            title=f"{loc('Job')} {v.id}",
            can_cancel=can_cancel,
            contents=contents,
            message=message,
            error=error,
            **data,
        )

    @app.post("/ui/jobs/{job_id}/cancel", include_in_schema=False)
    async def cancel(request: Request, job_id: str) -> Response:
        async def run(who: Principal, _form: dict[str, str]) -> tuple[int, str]:
            return await act(request, who, jobs_api.cancel_job, job_id)

        return await form_action(
            request,
            run,
            done=f"/ui/jobs/{job_id}?done=1",
            refused=lambda status, error: job(request, job_id, error=error, status=status),
        )
