"""Trace readers: what they read from real (trimmed) traces, and file:line errors on malformed input."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelpool.core.errors import InputError
from accelpool.sim.alibaba import read_alibaba
from accelpool.sim.gavel import read_gavel_trace, read_throughputs
from accelpool.sim.philly import read_philly_csv
from accelpool.sim.synthetic import generate
from accelpool.sim.workload import parse_cluster, parse_devices_per_node

FIXTURES = Path(__file__).parent.parent / "fixtures" / "traces"
CAP = {"v100": 36, "p100": 36, "k80": 36}


def test_bundled_gavel_throughputs():
    t = read_throughputs()
    assert set(t) == {"v100", "p100", "k80"}
    assert t["v100"][("ResNet-50 (batch size 64)", 1)] > t["k80"][("ResNet-50 (batch size 64)", 1)] > 0


def test_gavel_trace_first_job_hand_checked():
    w = read_gavel_trace(FIXTURES / "gavel_b436b2_head60.trace", CAP)
    assert len(w.jobs) == 60
    j = w.jobs[0]
    assert (j.job_type, j.scale, j.total_steps, j.submit_time) == (
        "Transformer (batch size 128)",
        4,
        6720840.0,
        0.0,
    )
    table = read_throughputs()
    assert w.throughputs[j.id]["v100"] == table["v100"][("Transformer (batch size 128)", 4)]
    assert w.cluster.capacity() == CAP and w.cluster.largest_node() == {"v100": 4, "p100": 4, "k80": 4}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


GOOD = "ResNet-18 (batch size 16)\tcmd\tdir\t-s\t1\t1000\t1\t1\t-1\t0\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("only\tthree\tfields\n", "expected 10 tab-separated fields"),
        ("ResNet-18 (batch size 16)\tc\td\t-s\t1\tmany\t1\t1\t-1\t0\n", "not a number"),
        ("ResNet-18 (batch size 16)\tc\td\t-s\t1\t1000\t0\t1\t-1\t0\n", "must be > 0"),
        ("Unknown model\tc\td\t-s\t1\t1000\t1\t1\t-1\t0\n", "no throughput for job type"),
    ],
)
def test_gavel_bad_lines_name_file_and_line(tmp_path, line, message):
    p = _write(tmp_path, "bad.trace", GOOD + line)
    with pytest.raises(InputError) as exc:
        read_gavel_trace(p, CAP)
    assert exc.value.line == 2 and str(p) in str(exc.value) and message in str(exc.value)


def test_gavel_throughputs_bad_json_names_line(tmp_path):
    p = _write(tmp_path, "t.json", '{"v100": {\n  "x": ,\n}}')
    with pytest.raises(InputError) as exc:
        read_throughputs(p)
    assert exc.value.line == 2


def test_gavel_unknown_cluster_type():
    with pytest.raises(InputError, match="no throughputs for type"):
        read_gavel_trace(FIXTURES / "gavel_b436b2_head60.trace", {"h100": 8})


def test_philly_seeded_and_documented_assignment():
    a = read_philly_csv(FIXTURES / "philly_head200.csv", CAP, seed=1)
    b = read_philly_csv(FIXTURES / "philly_head200.csv", CAP, seed=1)
    c = read_philly_csv(FIXTURES / "philly_head200.csv", CAP, seed=2)
    assert len(a.jobs) == 200
    assert [j.job_type for j in a.jobs] == [j.job_type for j in b.jobs] != [j.job_type for j in c.jobs]
    assert min(j.submit_time for j in a.jobs) == 0.0
    j = a.jobs[0]
    assert a.throughputs[j.id]["v100"] == 1.0 and 0 < a.throughputs[j.id]["k80"] < 1.0
    assert {t.id for t in a.tenants} == {j.tenant for j in a.jobs}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("yesterday,66.0,1,66.0,11cb48", "timestamp"),
        ("2017-10-09 07:01:55,abc,1,66.0,11cb48", "not a number"),
        ("2017-10-09 07:01:55,0,1,66.0,11cb48", "duration must be > 0"),
    ],
)
def test_philly_bad_rows(tmp_path, row, message):
    p = _write(
        tmp_path,
        "p.csv",
        "timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 07:01:55,66.0,1,66.0,11cb48\n" + row + "\n",
    )
    with pytest.raises(InputError) as exc:
        read_philly_csv(p, CAP)
    assert exc.value.line == 3 and message in str(exc.value)


def test_philly_missing_column(tmp_path):
    p = _write(tmp_path, "p.csv", "timestamp,duration\n")
    with pytest.raises(InputError, match="missing column"):
        read_philly_csv(p, CAP)


def test_alibaba_nodes_pods_and_fractional_policy():
    w = read_alibaba(FIXTURES / "alibaba_pods_head120.csv", FIXTURES / "alibaba_nodes_head40.csv")
    assert sum(w.cluster.capacity().values()) > 0
    assert all(j.allowed <= set(w.cluster.capacity()) for j in w.jobs)
    assert w.skipped > 0 and "fractional" in w.notes[0]
    with pytest.raises(InputError) as exc:
        read_alibaba(
            FIXTURES / "alibaba_pods_head120.csv", FIXTURES / "alibaba_nodes_head40.csv", fractional="reject"
        )
    assert exc.value.line is not None and "whole" in str(exc.value)


def test_alibaba_bad_pod_line(tmp_path):
    nodes = _write(tmp_path, "n.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,2,T4\n")
    pods = _write(
        tmp_path,
        "p.csv",
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
        "creation_time,deletion_time,scheduled_time\npod0,1,1,1,1000,,LS,Running,0,10,0\n"
        "pod1,1,1,x,1000,,LS,Running,0,10,0\n",
    )
    with pytest.raises(InputError) as exc:
        read_alibaba(pods, nodes)
    assert exc.value.line == 3 and str(pods) in str(exc.value)
    pods2 = _write(
        tmp_path,
        "p2.csv",
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
        "creation_time,deletion_time,scheduled_time\npod0,1,1,1,1000,A100,LS,Running,0,10,0\n",
    )
    with pytest.raises(InputError, match="names no model"):
        read_alibaba(pods2, nodes)


def test_synthetic_is_seeded_and_uses_catalogue_ratios():
    a = generate({"h100": 16, "a100": 16, "rngd": 16}, n_jobs=50, seed=4)
    b = generate({"h100": 16, "a100": 16, "rngd": 16}, n_jobs=50, seed=4)
    assert a.jobs == b.jobs
    train = next(j for j in a.jobs if j.kind.value == "training")
    row = a.throughputs[train.id]
    assert "rngd" not in row  # not training-capable
    assert row["h100"] / row["a100"] == pytest.approx(989.4 / 312)
    assert a.grants and all(j.grant for j in a.jobs)


def test_cluster_spec_errors():
    assert parse_cluster("v100=36, p100=36,k80=36") == CAP
    assert parse_devices_per_node("v100=4") == {"v100": 4}
    for bad in ("v100", "v100=x", "v100=-1", ""):
        with pytest.raises(InputError):
            parse_cluster(bad)
