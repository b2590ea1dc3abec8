"""PROBLEM.json -> AllocationProblem: rules, tenants, prices and budgets land in the right arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelpool.spec.problem_json import parse_problem_text

ROOT = Path(__file__).resolve().parents[2]


def test_rules_example_builds_every_array():
    p = parse_problem_text((ROOT / "examples" / "problem-rules.json").read_text())
    assert p.types == ("atom-max", "h100", "rngd")
    i = p.job_ids.index("ocr")
    assert not p.allowed[i, p.types.index("h100")]  # domestic-only
    chat = p.job_ids.index("chatbot")
    assert not p.allowed[chat, p.types.index("h100")]  # public inference service: domestic NPUs only
    assert p.public_reserve.tolist() == [9.0, 0.0, 12.0]  # capped at what public jobs can use
    assert (p.cap_index >= 0).all()  # one program: every tenant's jobs are in its (tenant, program) group
    assert np.isfinite(p.cap_limit[:, p.types.index("h100")]).all()
    assert p.price_krw_per_hour.tolist() == [1500, 6500, 1800]
    g = p.tenant_ids.index("startup-a")
    assert p.quota[g, p.types.index("h100")] == 16
    assert p.budget_krw[p.job_ids.index("vision")] == 10000
    assert p.budget_krw[chat] == -1
    assert p.time_to_deadline[p.job_ids.index("finetune")] == 7200


def test_unknown_types_in_capacity_are_allowed_and_not_domestic():
    p = parse_problem_text(
        '{"capacity": {"my-asic": 4}, "jobs": [{"id": "x", "throughput": {"my-asic": 1}}]}'
    )
    assert p.types == ("my-asic",) and p.allowed.all()


def test_a_typo_in_rules_tenants_or_budgets_is_refused_naming_it():
    # an operator's test: these were dropped silently (the caps did not apply, a budget went to no one)
    import json

    import pytest

    from accelpool.core.errors import InputError

    base = {"capacity": {"h100": 8}, "jobs": [{"id": "a", "tenant": "lab", "throughput": {"h100": 1.0}}]}
    for extra, field in (
        ({"rules": {"tenant_cap": {"h100": 8}}}, "rules.tenant_cap"),
        ({"tenants": [{"id": "lab", "quotas": {"h100": 1}}]}, "tenants[0].quotas"),
        ({"budgets": {"labb": 100}}, "budgets.labb"),
    ):
        with pytest.raises(InputError) as exc:
            parse_problem_text(json.dumps({**base, **extra}))
        assert exc.value.field == field, (extra, exc.value)
    parse_problem_text(json.dumps({**base, "budgets": {"lab": 100}, "rules": {"tenant_caps": {"h100": 8}}}))
