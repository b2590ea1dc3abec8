"""Node states on the shared test Slurm: a test that sets a node DOWN or DRAIN always gives it back.

``node_state(conf, node, "DOWN")`` is a context manager: the node is set to the state on entry and resumed on
exit, whatever ends the block (a failed assertion, an error, Ctrl-C), and the exit waits until Slurm shows
the node usable again (idle, mixed or allocated), failing loudly if it does not come back. Every state set
here carries the reason ``TEST_REASON``; ``resume_test_nodes`` resumes any node still carrying it (a test
process killed with SIGKILL runs no ``finally``): the ``slurm_conf`` fixture calls it when the session
starts and when it ends."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

TEST_REASON = "accelpool-test"
USABLE = ("idle", "mix", "alloc", "comp")  # sinfo %t short states; drain/down carry a suffix or other word


def _run(conf: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLURM_CONF": conf}
    return subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=30, check=False)


def states(conf: str) -> dict[str, tuple[str, str]]:
    """node -> (short state as sinfo prints it, e.g. idle, down*, drain; reason)."""
    out = _run(conf, "sinfo", "-h", "-N", "-o", "%N|%t|%E").stdout
    rows = (line.split("|", 2) for line in out.splitlines() if line.count("|") == 2)
    return {n: (t, why) for n, t, why in rows}


def resume(conf: str, node: str, timeout: float = 60.0) -> None:
    """Resume ``node`` and wait until it is usable; AssertionError naming its state if it is not."""
    deadline = time.monotonic() + timeout
    state = ("?", "")
    while time.monotonic() < deadline:
        state = states(conf).get(node, state)
        if state[0] in USABLE:
            return
        _run(conf, "scontrol", "update", f"NodeName={node}", "State=RESUME")
        time.sleep(0.5)
    raise AssertionError(f"Slurm node {node} did not come back after the test: {state[0]} ({state[1]})")


@contextmanager
def node_state(conf: str, node: str, state: str) -> Iterator[None]:
    """Set ``node`` to ``state`` (DOWN, DRAIN) for the block; resumed, and waited for, when it ends."""
    try:
        p = _run(conf, "scontrol", "update", f"NodeName={node}", f"State={state}", f"Reason={TEST_REASON}")
        assert p.returncode == 0, f"scontrol could not set {node} {state}: {p.stderr.strip()}"
        yield
    finally:
        resume(conf, node)


def resume_test_nodes(conf: str) -> list[str]:
    """Resume every node a test left down or drained (reason ``TEST_REASON``); returns their names."""
    left = [n for n, (_, why) in states(conf).items() if why == TEST_REASON]
    for n in left:
        resume(conf, n)
    return left
