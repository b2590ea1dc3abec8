"""`accelpool allocate`: output formats and one clear exit-2 message per kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelpool.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "capacity": {"h100": 64, "rngd": 128},
    "jobs": [
        {"id": "a", "scale": 8, "weight": 1.0, "throughput": {"h100": 4.2, "rngd": 1.1}, "allowed": ["h100"]}
    ],
}


def write(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "problem.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def test_json_output_has_the_documented_keys(tmp_path, capsys):
    assert main(["allocate", write(tmp_path, GOOD), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"] == "max-min-fairness"
    assert out["allocation"] == {"a": {"h100": 1.0}}
    assert out["effective_throughput"] == {"a": 4.2}
    assert {"objective", "solve_seconds", "held"} <= set(out)


@pytest.mark.parametrize(
    "policy", ["fifo", "fair-share", "max-min-fairness", "finish-time-fairness", "max-throughput", "min-cost"]
)
def test_bundled_examples_run_with_every_policy(policy, capsys):
    for name in ("problem.json", "problem-rules.json"):
        assert main(["allocate", str(ROOT / "examples" / name), "--policy", policy]) == 0
    assert policy in capsys.readouterr().out


BAD = [
    ({**GOOD, "capacity": {"h100": -1, "rngd": 128}}, "capacity.h100"),
    ({**GOOD, "jobs": [{"id": "a", "throughput": {"h10": 1.0}}]}, "unknown accelerator type 'h10'"),
    ({**GOOD, "jobs": [{"id": "a", "throughput": {"h100": -2.0}}]}, "jobs[0].throughput.h100"),
    ('{"capacity": {"h100": 1}, "jobs": [{"id": "a", "throughput": {"h100": NaN}}]}', "finite"),
    ({**GOOD, "jobs": [{"id": "a", "scale": 100, "throughput": {"h100": 1.0}}]}, "jobs[0].scale"),
    (
        {
            **GOOD,
            "jobs": [{"id": "a", "throughput": {"h100": 1.0}}, {"id": "a", "throughput": {"h100": 1.0}}],
        },
        "duplicate job id 'a'",
    ),
    ('{"capacity": {"h100": 1},\n "jobs": [,]}', ":2"),
    ({**GOOD, "jobs": [{"id": "a", "throughput": {"h100": 1.0}, "allowed": ["mi400"]}]}, "jobs[0].allowed"),
    ({"jobs": []}, "capacity"),
    ({**GOOD, "jobs": [{"id": "a", "throughput": {"h100": 1.0}, "weight": 0}]}, "jobs[0].weight"),
]


@pytest.mark.parametrize(("doc", "needle"), BAD)
def test_bad_input_exits_2_with_one_clear_message(tmp_path, capsys, doc, needle):
    assert main(["allocate", write(tmp_path, doc)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_unknown_policy_and_missing_file(tmp_path, capsys):
    assert main(["allocate", write(tmp_path, GOOD), "--policy", "maxmin"]) == 2
    assert "unknown policy 'maxmin'" in capsys.readouterr().err
    assert main(["allocate", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
