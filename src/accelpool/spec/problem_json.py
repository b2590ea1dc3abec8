"""PROBLEM.json (the input of ``accelpool allocate``) -> a validated AllocationProblem.

Format (units: devices, steps/s, seconds, integer KRW)::

    {
      "capacity": {"h100": 64, "rngd": 128},             # devices per type (integers >= 0), required
      "jobs": [                                           # required, ids unique
        {"id": "a",
         "throughput": {"h100": 4.2, "rngd": 1.1},        # steps/s of the whole job per type, >= 0
         "scale": 8,                                      # devices at once (gang), default 1
         "weight": 1.0,                                   # default 1
         "allowed": ["h100"],                             # default: every type with a throughput
         "tenant": "lab-a", "priority": 0, "public": false, "domestic_only": false,
         "deadline": 7200,                                # seconds from now (optional)
         "remaining_steps": 50000, "submit_time": 0}
      ],
      "tenants": [{"id": "lab-a", "weight": 2.0, "quota": {"h100": 16}}],     # optional
      "rules": {"public_share": 0.3,                      # or {"rngd": 0.5, "*": 0.3}
                "tenant_caps": {"h100": 32},              # most devices of a type per tenant
                "public_services_domestic_only": true},   # public inference on Korean NPUs only
      "prices": {"h100": 6500, "rngd": 1800},             # KRW per device-hour (integers)
      "budgets": {"lab-a": 100000},                       # KRW left to each tenant's grant
      "horizon_seconds": 3600                             # how long the allocation holds (budget check)
    }

Types named in ``capacity`` that the accelerator catalogue does not know are allowed (treated as not
domestic, memory unknown); every other type name must appear in ``capacity``. Errors raise InputError
naming the field path (``jobs[2].throughput.h100``) and the value; malformed JSON names the line.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from accelpool.catalog import load_catalog
from accelpool.core.allocation import AllocationProblem
from accelpool.core.errors import InputError
from accelpool.core.problem import build_problem
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Grant, Job, JobKind, Program, ProgramRules, Tenant

_JOB_FIELDS = {
    "id",
    "throughput",
    "scale",
    "weight",
    "allowed",
    "tenant",
    "priority",
    "public",
    "domestic_only",
    "deadline",
    "remaining_steps",
    "submit_time",
    "kind",
}
_TOP_FIELDS = {"capacity", "jobs", "tenants", "rules", "prices", "budgets", "horizon_seconds"}


class _Reader:
    def __init__(self, file: str | None) -> None:
        self.file = file

    def fail(self, message: str, field: str, value: object = None) -> InputError:
        return InputError(message, file=self.file, field=field, value=value)

    def obj(self, value: object, field: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"must be an object, got {_kind(value)}", field, value)
        return value

    def number(self, value: object, field: str, *, minimum: float = 0.0, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"must be a number, got {_kind(value)} {value!r}", field, value)
        v = float(value)
        if not math.isfinite(v):
            raise self.fail(f"must be a finite number, got {value!r}", field, value)
        if v < minimum or (positive and v <= 0):
            rule = "> 0" if positive else f">= {minimum:g}"
            raise self.fail(f"must be {rule}, got {value!r}", field, value)
        return v

    def integer(self, value: object, field: str, *, minimum: int = 0) -> int:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            raise self.fail(f"must be a whole number, got {value!r}", field, value)
        if int(value) < minimum:
            raise self.fail(f"must be >= {minimum}, got {value!r}", field, value)
        return int(value)

    def boolean(self, value: object, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"must be true or false, got {value!r}", field, value)
        return value

    def type_name(self, name: object, field: str, types: list[str]) -> str:
        if not isinstance(name, str) or name not in types:
            close = difflib.get_close_matches(str(name), types, n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise self.fail(
                f"unknown accelerator type '{name}'{hint}; the problem's capacity has: {', '.join(types)}",
                field,
                name,
            )
        return name


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def parse_problem_text(text: str, file: str | None = None) -> AllocationProblem:
    """Parse and validate PROBLEM.json text; InputError (with file and line) on anything wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON: {exc.msg} (column {exc.colno})", file=file, line=exc.lineno
        ) from None
    return problem_from_dict(data, file)


def problem_from_dict(data: object, file: str | None = None) -> AllocationProblem:
    """Validate a decoded PROBLEM.json document and build the AllocationProblem."""
    rd = _Reader(file)
    doc = rd.obj(data, "(top level)")
    _known(rd, doc, _TOP_FIELDS, "")
    if "capacity" not in doc:
        raise rd.fail("is required (devices per accelerator type)", "capacity")
    capacity = {
        str(t): rd.integer(v, f"capacity.{t}") for t, v in rd.obj(doc["capacity"], "capacity").items()
    }
    types = sorted(capacity)
    if "jobs" not in doc or not isinstance(doc["jobs"], list):
        raise rd.fail(f"is required: a list of jobs, got {_kind(doc.get('jobs'))}", "jobs")
    rules = _rules(rd, doc.get("rules", {}), types)
    tenants = _tenants(rd, doc.get("tenants", []), types)
    jobs, rows = _jobs(rd, doc["jobs"], types, capacity)
    prices = {
        rd.type_name(t, f"prices.{t}", types): rd.integer(v, f"prices.{t}")
        for t, v in rd.obj(doc.get("prices", {}), "prices").items()
    }
    budgets = {
        str(g): rd.integer(v, f"budgets.{g}") for g, v in rd.obj(doc.get("budgets", {}), "budgets").items()
    }
    horizon = rd.number(doc.get("horizon_seconds", 3600.0), "horizon_seconds", positive=True)
    tenant_ids = sorted({j.tenant for j in jobs} | {t.id for t in tenants})
    for g in budgets:
        if g not in tenant_ids:
            raise rd.fail(
                f"no tenant '{g}' (a budget is a tenant's: one of {', '.join(tenant_ids) or 'none'})",
                f"budgets.{g}",
                g,
            )
    program = Program("problem", "PROBLEM.json rules", budget_krw=0, rules=rules)
    grants = [Grant(f"{g}@problem", "problem", g, budgets.get(g, 0)) for g in tenant_ids]
    jobs = [replace(j, grant=f"{j.tenant}@problem") for j in jobs]
    matrix = ThroughputMatrix.from_rows(rows, types)
    problem = build_problem(
        jobs,
        capacity,
        matrix,
        accelerators=dict(load_catalog().items()),
        tenants=tenants,
        programs=[program],
        grants=grants,
        prices_krw_per_hour=prices,
        horizon_seconds=horizon,
    )
    budget = np.array([budgets.get(j.tenant, -1) for j in jobs], dtype=np.int64)
    return replace(problem, budget_krw=budget)


_RULE_FIELDS = {"public_share", "tenant_caps", "public_services_domestic_only"}
_TENANT_FIELDS = {"id", "weight", "quota", "public"}


def _known(rd: _Reader, doc: Mapping[str, Any], known: Collection[str], where: str) -> None:
    """An unknown key of a section (``where``; "" for the top level) is refused naming it."""
    for key in doc:
        if key not in known:
            field = f"{where}.{key}" if where else key
            raise rd.fail(f"unknown field '{key}'; known: {', '.join(sorted(known))}", field, key)


def _rules(rd: _Reader, raw: object, types: list[str]) -> ProgramRules:
    doc = rd.obj(raw, "rules")
    _known(rd, doc, _RULE_FIELDS, "rules")
    share_raw = doc.get("public_share", {})
    if isinstance(share_raw, dict):
        share = {
            (k if k == "*" else rd.type_name(k, f"rules.public_share.{k}", types)): rd.number(
                v, f"rules.public_share.{k}"
            )
            for k, v in share_raw.items()
        }
    else:
        share = {"*": rd.number(share_raw, "rules.public_share")}
    for k, v in share.items():
        if v > 1:
            raise rd.fail(f"must be a fraction between 0 and 1, got {v}", f"rules.public_share.{k}", v)
    caps = {
        (k if k == "*" else rd.type_name(k, f"rules.tenant_caps.{k}", types)): rd.integer(
            v, f"rules.tenant_caps.{k}"
        )
        for k, v in rd.obj(doc.get("tenant_caps", {}), "rules.tenant_caps").items()
    }
    domestic = rd.boolean(
        doc.get("public_services_domestic_only", False), "rules.public_services_domestic_only"
    )
    return ProgramRules(public_share=share, tenant_caps=caps, public_services_domestic_only=domestic)


def _tenants(rd: _Reader, raw: object, types: list[str]) -> list[Tenant]:
    if not isinstance(raw, list):
        raise rd.fail(f"must be a list, got {_kind(raw)}", "tenants", raw)
    out: list[Tenant] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        t = rd.obj(item, f"tenants[{i}]")
        _known(rd, t, _TENANT_FIELDS, f"tenants[{i}]")
        tid = t.get("id")
        if not isinstance(tid, str) or not tid:
            raise rd.fail("must be a non-empty string", f"tenants[{i}].id", tid)
        if tid in seen:
            raise rd.fail(f"duplicate tenant id '{tid}'", f"tenants[{i}].id", tid)
        seen.add(tid)
        quota = {
            rd.type_name(k, f"tenants[{i}].quota.{k}", types): rd.integer(v, f"tenants[{i}].quota.{k}")
            for k, v in rd.obj(t.get("quota", {}), f"tenants[{i}].quota").items()
        }
        weight = rd.number(t.get("weight", 1.0), f"tenants[{i}].weight", positive=True)
        out.append(Tenant(tid, weight=weight, quota=quota, public=bool(t.get("public", False))))
    return out


def _jobs(
    rd: _Reader, raw: list[Any], types: list[str], capacity: Mapping[str, int]
) -> tuple[list[Job], dict[str, dict[str, float]]]:
    jobs: list[Job] = []
    rows: dict[str, dict[str, float]] = {}
    for i, item in enumerate(raw):
        where = f"jobs[{i}]"
        j = rd.obj(item, where)
        _known(rd, j, _JOB_FIELDS, where)
        jid = j.get("id")
        if not isinstance(jid, str) or not jid:
            raise rd.fail(f"must be a non-empty string, got {jid!r}", f"{where}.id", jid)
        if jid in rows:
            raise rd.fail(f"duplicate job id '{jid}'", f"{where}.id", jid)
        tput = {
            rd.type_name(t, f"{where}.throughput.{t}", types): rd.number(v, f"{where}.throughput.{t}")
            for t, v in rd.obj(j.get("throughput", {}), f"{where}.throughput").items()
        }
        scale = rd.integer(j.get("scale", 1), f"{where}.scale", minimum=1)
        allowed_raw = j.get("allowed")
        if allowed_raw is None:
            allowed = frozenset(t for t, v in tput.items() if v > 0)
        elif isinstance(allowed_raw, list):
            allowed = frozenset(rd.type_name(t, f"{where}.allowed", types) for t in allowed_raw)
        else:
            raise rd.fail(
                f"must be a list of types, got {_kind(allowed_raw)}", f"{where}.allowed", allowed_raw
            )
        fits = [t for t in allowed if tput.get(t, 0) > 0 and capacity[t] >= scale]
        if not fits:
            sizes = ", ".join(f"{t}: {capacity[t]}" for t in sorted(allowed) if tput.get(t, 0) > 0) or "none"
            raise rd.fail(
                f"job '{jid}' needs {scale} devices at once but no type it may use with a known throughput "
                f"holds that many (devices: {sizes})",
                f"{where}.scale",
                scale,
            )
        deadline = j.get("deadline")
        steps = j.get("remaining_steps")
        kind = j.get("kind", "training")
        if kind not in {k.value for k in JobKind}:
            raise rd.fail(f"must be one of {', '.join(k.value for k in JobKind)}", f"{where}.kind", kind)
        jobs.append(
            Job(
                id=jid,
                tenant=str(j.get("tenant", "default")),
                kind=JobKind(kind),
                scale=scale,
                allowed=allowed,
                domestic_only=rd.boolean(j.get("domestic_only", False), f"{where}.domestic_only"),
                priority=rd.integer(j.get("priority", 0), f"{where}.priority", minimum=-(10**9)),
                weight=rd.number(j.get("weight", 1.0), f"{where}.weight", positive=True),
                deadline=None if deadline is None else rd.number(deadline, f"{where}.deadline"),
                public=rd.boolean(j.get("public", False), f"{where}.public"),
                total_steps=None if steps is None else rd.number(steps, f"{where}.remaining_steps"),
                submit_time=rd.number(j.get("submit_time", 0.0), f"{where}.submit_time", minimum=-math.inf),
            )
        )
        rows[jid] = tput
    return jobs, rows
