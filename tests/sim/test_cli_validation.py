"""`accelpool simulate` refuses nonsense input with exit 2 (never a hang, a traceback or invalid JSON)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from accelpool.cli.main import main
from accelpool.core.errors import InputError
from accelpool.sim.alibaba import read_alibaba
from accelpool.sim.gavel import read_gavel_trace, read_throughputs
from accelpool.sim.metrics import dumps_metrics, json_safe
from accelpool.sim.workload import parse_cluster, parse_devices_per_node

FIXTURES = Path(__file__).parent.parent / "fixtures" / "traces"
GAVEL = str(FIXTURES / "gavel_b436b2_head60.trace")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["simulate", *args])
    out = capsys.readouterr()
    return code, out.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--round", "nan"], "--round must be a finite"),
        (["--round", "inf"], "--round must be a finite"),
        (["--round", "0"], "--round"),
        (["--round", "-5"], "--round"),
        (["--round", "1e-9"], "--round"),
        (["--restart-overhead", "nan"], "--restart-overhead must be a finite"),
        (["--restart-overhead", "inf"], "--restart-overhead"),
        (["--restart-overhead", "-1"], "--restart-overhead"),
        (["--seed", "-1"], "--seed"),
        (["--cluster", "v100=4,v100=8"], "given twice"),
        (["--cluster", "V100=4,v100=8"], "given twice"),
        (["--cluster", "v100=4,,"], "empty entry"),
        (["--cluster", "v100=0,p100=0,k80=0"], "no devices"),
        (["--cluster", "v100=1e3"], "not an integer"),
        (["--devices-per-node", "0"], "--devices-per-node must be"),
        (["--devices-per-node", "-4"], "--devices-per-node must be"),
        (["--devices-per-node", "v100=0"], "devices-per-node"),
        (["--devices-per-node", "v100=4,v100=2"], "given twice"),
    ],
)
def test_gavel_options_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    base = ["--trace", GAVEL, "--policy", "fifo"]
    if "--cluster" not in args:
        base += ["--cluster", "v100=4"]
    code, err = run(capsys, *base, *args)
    assert code == 2, err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("jobs", ["-3", "0", "10000000"])
def test_synthetic_job_count_is_bounded(capsys: pytest.CaptureFixture[str], jobs: str) -> None:
    code, err = run(capsys, "--format", "synthetic", "--jobs", jobs)
    assert code == 2 and "--jobs must be" in err


def test_alibaba_missing_node_list_names_the_option_not_a_made_up_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pods = tmp_path / "pods.csv"
    pods.write_text((FIXTURES / "alibaba_pods_head120.csv").read_text())
    code, err = run(capsys, "--format", "alibaba", "--trace", str(pods))
    assert code == 2 and "pass --nodes FILE" in err
    assert "openb_node_list_gpu_node.csv:" not in err  # no "file: message" naming a file that is not there
    code, err = run(capsys, "--format", "alibaba", "--trace", str(pods), "--nodes", str(tmp_path / "no.csv"))
    assert code == 2 and f"--nodes {tmp_path / 'no.csv'}: no such file" in err


def test_json_and_report_are_strict_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "t.trace"
    trace.write_text("".join(Path(GAVEL).read_text().splitlines(True)[:8]))
    out = tmp_path / "m.json"
    code = main(
        ["simulate", "--trace", str(trace), "--cluster", "v100=8", "--policy", "fifo", "--json", str(out)]
    )
    assert code == 0

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    data = json.loads(out.read_text(), parse_constant=refuse)
    assert data["fifo"]["jobs_total"] == 8


def test_pool_where_no_job_fits_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = [x for x in Path(GAVEL).read_text().splitlines(True) if x.split("\t")[6] == "4"][:3]
    trace = tmp_path / "big.trace"
    trace.write_text("".join(lines))
    code, err = run(capsys, "--trace", str(trace), "--cluster", "v100=2", "--policy", "fifo")
    assert code == 2 and "no job of the trace can run on this pool (v100=2)" in err


def test_metrics_json_turns_undefined_values_into_null() -> None:
    metrics = [
        {
            "policy": "p",
            "rho_max": float("inf"),
            "avg_jct_seconds": float("nan"),
            "utilization": {"v100": np.float64("nan"), "k80": np.float64(0.5)},
            "series": (1.0, float("-inf")),
        }
    ]
    text = dumps_metrics(metrics)
    data = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert data["p"]["rho_max"] is None and data["p"]["avg_jct_seconds"] is None
    assert data["p"]["utilization"] == {"v100": None, "k80": 0.5}
    assert data["p"]["series"] == [1.0, None]
    assert json_safe(math.pi) == math.pi


def test_parsers_refuse_duplicates_and_empty_entries() -> None:
    for bad in ("v100=1,v100=2", "v100=1,,p100=1", "v100=0", " "):
        with pytest.raises(InputError):
            parse_cluster(bad)
    assert parse_cluster("v100=4,p100=0") == {"v100": 4, "p100": 0}
    for bad in ("0", "-1", "2000", "v100=0"):
        with pytest.raises(InputError):
            parse_devices_per_node(bad)


def test_readers_refuse_non_finite_numbers(tmp_path: Path) -> None:
    line = Path(GAVEL).read_text().splitlines()[0].split("\t")
    for col, value in ((5, "nan"), (9, "inf"), (7, "nan")):
        bad = list(line)
        bad[col] = value
        p = tmp_path / "bad.trace"
        p.write_text("\t".join(bad) + "\n")
        with pytest.raises(InputError, match="finite") as exc:
            read_gavel_trace(p, {"v100": 8})
        assert exc.value.line == 1
    tp = tmp_path / "tp.json"
    tp.write_text('{"v100": {"(\'ResNet-18 (batch size 16)\', 1)": {"null": NaN}}}')
    with pytest.raises(InputError, match="finite"):
        read_throughputs(tp)
    pods = (FIXTURES / "alibaba_pods_head120.csv").read_text().splitlines()
    header = pods[0].split(",")
    row = pods[1].split(",")
    row[header.index("creation_time")] = "nan"
    p = tmp_path / "pods.csv"
    p.write_text("\n".join([pods[0], ",".join(row)]) + "\n")
    with pytest.raises(InputError, match="finite") as exc2:
        read_alibaba(p, FIXTURES / "alibaba_nodes_head40.csv")
    assert exc2.value.line == 2


def test_unwritable_outputs_exit_2_before_running(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    afile = tmp_path / "f"
    afile.write_text("x")
    base = ["--trace", GAVEL, "--cluster", "v100=4", "--policy", "fifo"]
    code, err = run(capsys, *base, "--report", str(afile / "r"))
    assert code == 2 and "--report" in err and "Traceback" not in err
    code, err = run(capsys, *base, "--json", str(tmp_path))
    assert code == 2 and "is a folder" in err
    code, err = run(capsys, *base, "--cluster", "v100=100001")
    assert code == 2 and "0..100,000" in err


def test_synthetic_jobs_the_pool_cannot_run_are_counted_and_unfinished_jobs_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # an operator's test: --jobs 10 on h100=8,rngd=8 reported "8 jobs" with no word on the other two, and
    # the table did not show the 3 jobs left unfinished
    from accelpool.sim.synthetic import generate

    w = generate({"h100": 8, "rngd": 8}, n_jobs=10, seed=0)
    left = 10 - len(w.jobs)
    assert left > 0 and any(f"{left} of the 10 generated jobs" in n for n in w.notes)
    assert main(["simulate", "--format", "synthetic", "--jobs", "10", "--cluster", "h100=8,rngd=8"]) == 0
    out = capsys.readouterr().out
    assert f"warning: {left} of the 10 generated jobs fit no type of this pool" in out
    assert "jobs_unfinished" in out
