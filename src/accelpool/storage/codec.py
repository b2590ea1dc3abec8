"""Domain values <-> JSON-able dicts for the JSON columns (pure functions)."""

from __future__ import annotations

from dataclasses import fields
from fractions import Fraction
from typing import Any

from accelpool.core.rounds import Placement
from accelpool.core.types import DEFAULT_SITE, Grant, Job, JobKind, Program, ProgramRules, Site, Tenant
from accelpool.ports import RunSpec

_JOB_FIELDS = tuple(f.name for f in fields(Job))  # all scalars but kind (an enum) and allowed (a set)


def job_to_dict(job: Job) -> dict[str, Any]:
    d = {name: getattr(job, name) for name in _JOB_FIELDS}  # dataclasses.asdict deep-copies: 10x slower
    d["kind"] = job.kind.value
    d["allowed"] = sorted(job.allowed)
    d["sites"] = sorted(job.sites)
    d["regions"] = sorted(job.regions)
    return d


def accepts_text(allowed: Any) -> str:
    """The ``jobs.accepts`` column: the accepted types between bars, "|a100|h100|" ("||": any type), so
    the dashboard's type filter is a LIKE on "|h100|" over a narrow index (``ix_jobs_search``)."""
    return "|" + "|".join(sorted(str(t) for t in allowed or ())) + "|"


_KINDS = {k.value: k for k in JobKind}  # a dict look-up: calling the enum costs ~3 us (10,000 jobs a burst)
_NONE: frozenset[str] = frozenset()


def job_from_dict(d: dict[str, Any], *, owned: bool = False) -> Job:
    """``owned``: ``d`` is the caller's to change (just parsed), so it is not copied first."""
    if not owned:
        d = dict(d)
    kind = d["kind"]
    d["kind"] = _KINDS.get(kind) or JobKind(kind)
    for name in ("allowed", "sites", "regions"):
        v = d.get(name)
        d[name] = frozenset(v) if v else _NONE
    return Job(**d)


def placement_to_dict(p: Placement | None) -> dict[str, Any] | None:
    if p is None:
        return None
    d: dict[str, Any] = {"accelerator": p.accelerator, "devices": [[n, list(d)] for n, d in p.devices]}
    if p.site != DEFAULT_SITE:
        d["site"] = p.site
    return d


def placement_from_dict(job: str, d: dict[str, Any] | None) -> Placement | None:
    if d is None:
        return None
    return Placement(
        job,
        d["accelerator"],
        tuple((n, tuple(int(i) for i in ds)) for n, ds in d["devices"]),
        d.get("site", DEFAULT_SITE),
    )


def run_to_dict(r: RunSpec) -> dict[str, Any]:
    return {
        "command": r.command,
        "env": dict(r.env),
        "workdir": r.workdir,
        "checkpoint_dir": r.checkpoint_dir,
        "grace_seconds": r.grace_seconds,
        "image": r.image,
        "limits": dict(r.limits),
    }


def run_from_dict(d: dict[str, Any]) -> RunSpec:
    return RunSpec(
        command=d.get("command", ""),
        env=dict(d.get("env") or {}),
        workdir=d.get("workdir"),
        checkpoint_dir=d.get("checkpoint_dir"),
        grace_seconds=float(d.get("grace_seconds", 30.0)),
        image=d.get("image"),
        limits={k: float(v) for k, v in (d.get("limits") or {}).items()},
    )


def rules_to_dict(r: ProgramRules) -> dict[str, Any]:
    return {
        "public_share": dict(r.public_share),
        "public_services_domestic_only": r.public_services_domestic_only,
        "tenant_caps": dict(r.tenant_caps),
        "max_contract_seconds": r.max_contract_seconds,
        "min_run_seconds": r.min_run_seconds,
        "weight": r.weight,
    }


def rules_from_dict(d: dict[str, Any]) -> ProgramRules:
    return ProgramRules(
        public_share={k: float(v) for k, v in (d.get("public_share") or {}).items()},
        public_services_domestic_only=bool(d.get("public_services_domestic_only", False)),
        tenant_caps={k: int(v) for k, v in (d.get("tenant_caps") or {}).items()},
        max_contract_seconds=d.get("max_contract_seconds"),
        min_run_seconds=d.get("min_run_seconds"),
        weight=float(d.get("weight", 1.0)),
    )


def carry_to_str(carry: Fraction) -> str | None:
    """A job's carry as stored: "numerator/denominator" (exact), None when it is 0."""
    return f"{carry.numerator}/{carry.denominator}" if carry else None


_NO_CARRY = Fraction(0)  # immutable: one object for every job without a carry


def carry_from_str(s: str | None) -> Fraction:
    return Fraction(s) if s else _NO_CARRY


def tenant_from_row(r: Any) -> Tenant:
    """A ``tenants`` table row -> Tenant."""
    return Tenant(r.id, r.name, float(r.weight), dict(r.quota or {}), bool(r.public))


def program_from_row(r: Any) -> Program:
    """A ``programs`` table row -> Program."""
    return Program(
        r.id, r.name, int(r.budget_krw), float(r.start), r.end, bool(r.public), rules_from_dict(r.rules or {})
    )


def grant_from_row(r: Any) -> Grant:
    """A ``grants`` table row -> Grant."""
    return Grant(r.id, r.program, r.tenant, int(r.amount_krw), int(r.spent_krw), float(r.start), r.end)


def site_from_row(r: Any) -> Site:
    """A ``sites`` table row -> Site."""
    return Site(
        r.id,
        r.operator,
        r.region,
        frozenset(r.data_classes or ()),
        r.executor,
        dict(r.connection or {}),
        {k: int(v) for k, v in (r.prices or {}).items()},
        bool(r.down),
        r.down_by or "",
        None if r.down_at is None else float(r.down_at),
        r.down_reason or "",
    )
