"""The job's environment reaches the job's processes only, never bwrap or setpriv (executors/sandbox_env.py).

A review found that a job's ``env`` was bwrap's environment: with ``LD_PRELOAD`` naming a library the job
had written into its checkpoint directory, the library ran inside bwrap, as root on the host, before any
namespace existed. ld.so reads ``LD_DEBUG`` as it reads ``LD_PRELOAD``, so a job's ``LD_DEBUG=files``
shows which processes received the job's environment: only the job's own may.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.executors.test_local_executor import launch, wait_end
from tests.executors.test_sandbox_paths import _plan

from accelpool.executors import sandbox as sb
from accelpool.executors.local import LocalExecutor
from accelpool.executors.sandbox_env import env_script

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def test_a_jobs_loader_variables_reach_the_job_and_not_the_sandbox_setup(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    ex.start(launch("t", 'echo "own env $LD_DEBUG"; sh -c true', env={"LD_DEBUG": "files"}))
    end, _ = wait_end(ex, "t", timeout=30.0)
    log = ex.logs("t")
    ex.close()
    assert end.exit_code == 0, log
    assert "own env files" in log  # the job has its variable
    assert "needed by" in log  # and ld.so read it in the job's own processes (its `sh -c true`)
    assert "bwrap" not in log and "setpriv" not in log, log  # but not in the processes that set it up


def test_the_plan_gives_bwrap_path_alone_and_the_job_its_environment(tmp_path: Path) -> None:
    plan = _plan(tmp_path, env={"LD_PRELOAD": "/x.so", "SECRET": "it's\nmine"})
    assert plan["env"] == {"PATH": sb.SAFE_PATH}
    assert "export LD_PRELOAD='/x.so'" in plan["env_script"]
    assert plan["argv_tail"][-1] == plan["env_file"]
    assert "LD_PRELOAD" not in " ".join(plan["argv"] + plan["argv_tail"])  # nothing of it on a command line


def test_a_variable_that_is_no_shell_name_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(sb.SandboxError, match="'A-B' is not a valid environment variable name"):
        _plan(tmp_path, env={"A-B": "x"})


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
            lambda k: k not in ("PWD", "OLDPWD", "SHLVL", "_", "IFS", "PATH", "PS1", "PS2", "PS4", "OPTIND")
        ),
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12),
        max_size=5,
    )
)
def test_every_value_comes_through_as_it_was(env: dict[str, str]) -> None:
    script = env_script(env) + "env -0\n"
    out = subprocess.run(["sh", "-c", script], capture_output=True, env={"PATH": sb.SAFE_PATH}, check=True)
    got = dict(kv.split("=", 1) for kv in out.stdout.decode("utf-8", "surrogateescape").split("\0") if kv)
    assert {k: got.get(k) for k in env} == env
