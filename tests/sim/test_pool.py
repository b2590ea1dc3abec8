"""Multi-site pool files in the simulator: sites, prices and data classes; per-site results."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelpool.core.errors import InputError
from accelpool.core.policies import POLICIES
from accelpool.sim import synthetic
from accelpool.sim.engine import simulate
from accelpool.sim.metrics import compute, dumps_metrics
from accelpool.sim.pool import apply_pool, load_pool

POOL = """\
prices: {v100: 3000}
data_classes: {financial: 1.0}
sites:
  - id: cheap
    region: seoul
    data_classes: [public]
    prices: {v100: 1000}
    devices: {v100: 16}
    devices_per_node: 4
  - id: bank
    region: busan
    data_classes: [public, financial]
    prices: {v100: 5000}
    devices: {v100: 16}
    devices_per_node: 4
"""


def test_financial_jobs_run_only_at_the_certified_site_at_its_price(tmp_path: Path) -> None:
    f = tmp_path / "pool.yaml"
    f.write_text(POOL)
    pool = load_pool(f)
    assert [s.id for s in pool.sites] == ["cheap", "bank"] and len(pool.nodes) == 8
    wl = apply_pool(synthetic.generate({"v100": 32}, n_jobs=30, seed=1, devices_per_node=4), pool, seed=1)
    assert {j.data_class for j in wl.jobs} == {"financial"}
    r = simulate(wl, POLICIES["fifo"], policy_name="fifo", round_seconds=360.0, max_rounds=400)
    assert set(r.site_krw) == {"bank"} and r.site_device_hours["bank"] > 0
    # every KRW at bank is at bank's price (5000/h), within whole-won rounding per run
    assert abs(r.site_krw["bank"] - r.site_device_hours["bank"] * 5000) <= len(wl.jobs) * 10
    # the report (metrics.json) has them per site, every site of the pool listed
    m = compute(r)
    assert m["cost_krw_by_site"] == {"cheap": 0, "bank": r.site_krw["bank"]}
    assert m["device_hours_by_site"]["cheap"] == 0.0 and m["device_hours_by_site"]["bank"] > 0
    assert '"cost_krw_by_site"' in dumps_metrics([m])


def test_public_jobs_prefer_the_cheaper_site(tmp_path: Path) -> None:
    f = tmp_path / "pool.yaml"
    f.write_text(POOL.replace("{financial: 1.0}", "{public: 1.0}"))
    wl = apply_pool(
        synthetic.generate({"v100": 32}, n_jobs=10, seed=2, devices_per_node=4), load_pool(f), seed=2
    )
    r = simulate(wl, POLICIES["fifo"], policy_name="fifo", round_seconds=360.0, max_rounds=400)
    assert r.site_device_hours.get("cheap", 0) > r.site_device_hours.get("bank", 0)


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ("sites: []\n", "sites", None),
        (
            "sites:\n  - id: a\n    devices: {v100: 4}\n    data_classes: [medical]\n",
            "sites[0].data_classes",
            4,
        ),
        ("sites:\n  - id: a\n    devices: {v100: -1}\n", "sites[0].devices.v100", 3),
        ("sites:\n  - id: a\n    devices: {v100: 4}\n    colour: red\n", "sites[0].colour", None),
        ("sites:\n  - id: a\n    devices: {v100: 4}\ndata_classes: {x: 1}\n", "data_classes", 4),
    ],
)
def test_bad_pool_files_name_the_field_and_line(
    tmp_path: Path, text: str, field: str, line: int | None
) -> None:
    f = tmp_path / "pool.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as e:
        load_pool(f)
    assert e.value.field == field
    if line is not None:
        assert e.value.line == line
