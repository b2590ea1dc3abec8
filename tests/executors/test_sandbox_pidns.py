"""``sandbox_pidns.PIDNS``: the program text the sandbox wrapper and the Slurm rank share to find a
sandbox's processes (its pid namespace's members). Run here as they run it: the text executed alone with
``os`` imported (no accelpool on the path it needs)."""

from __future__ import annotations

import ast
import base64
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from accelpool.executors import sandbox_wrapper, slurm_batch
from accelpool.executors.sandbox_pidns import PIDNS


def _members():
    ns: dict[str, object] = {}
    exec("import os\n" + PIDNS, ns)
    return ns["pidns_members"]


def test_members_of_this_namespace_leave_the_leader_out_and_a_gone_leader_has_none() -> None:
    members = _members()
    child = subprocess.Popen(["sleep", "30"])
    try:
        got = members(os.getpid())
        assert child.pid in got and os.getpid() not in got
        assert members(str(child.pid)) and child.pid not in members(child.pid)  # a str (the rank's) or an int
    finally:
        child.kill()
        child.wait()
    assert members(child.pid) == []  # gone: no namespace to read


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_members_of_a_sandbox_are_its_processes_only() -> None:
    """A pid namespace of its own (bubblewrap, as the sandbox starts it): its members are the processes
    under the namespace's first process, none of the host's."""
    members = _members()
    box = subprocess.Popen(
        ["bwrap", "--unshare-pid", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev"]
        + ["--proc", "/proc", "sh", "-c", "sleep 31.5 & sleep 32.5 & wait"]
    )
    try:
        deadline = time.monotonic() + 20
        kids: list[str] = []
        got: list[int] = []
        while time.monotonic() < deadline:
            try:
                kids = open(f"/proc/{box.pid}/task/{box.pid}/children").read().split()
            except OSError:
                kids = []
            got = members(kids[0]) if kids else []
            if len(got) >= 3:
                break
            time.sleep(0.05)
        cmds = sorted(open(f"/proc/{p}/cmdline").read().replace("\0", " ").strip() for p in got)
        assert [c for c in cmds if c.startswith("sleep")] == ["sleep 31.5", "sleep 32.5"], cmds
        assert int(kids[0]) not in got and os.getpid() not in got and box.pid not in got
    finally:
        box.kill()
        box.wait()


def test_both_programs_carry_the_one_text() -> None:
    assert PIDNS in sandbox_wrapper.WRAPPER and sandbox_wrapper.WRAPPER.count("def pidns_members") == 1
    script = slurm_batch.batch_script({}, sys.executable)
    blob = ast.literal_eval(script.split("PAYLOAD = ", 1)[1].split("\n", 1)[0])
    rank = json.loads(base64.b64decode(blob))["rank"]
    assert rank.startswith(PIDNS) and rank.count("def pidns_members") == 1
