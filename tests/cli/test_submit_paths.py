"""`accelpool submit`: a relative ``workdir`` or ``checkpoint_dir`` in a job file is relative to the file;
the server is sent absolute paths (it may run elsewhere, in another directory)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_users import cli  # noqa: F401 - the fixture


def test_a_relative_workdir_and_checkpoint_dir_are_relative_to_the_job_file(cli, tmp_path):  # noqa: F811
    (tmp_path / "jobs").mkdir()
    spec = tmp_path / "jobs" / "job.yaml"
    spec.write_text(
        "name: demo\nresources: {type: h100}\ncommand: echo hi\nworkdir: ..\ncheckpoint_dir: ck\n"
    )
    code, out, err = cli("submit", str(spec), "--json")
    assert code == 0, err
    run = cli.store.run_spec(json.loads(out)["id"])
    assert run.workdir is not None and run.checkpoint_dir is not None
    assert Path(run.workdir).resolve() == tmp_path.resolve()
    assert Path(run.checkpoint_dir) == (tmp_path / "jobs" / "ck").resolve()
