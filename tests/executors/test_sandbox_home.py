"""A service not run as root runs every job as its own uid (in a user namespace), so a job could read
whatever the service's uid reads: a review's job read the service user's ``~/.ssh`` keys. Now the service
user's home (and ``/run/user/<uid>``) is an empty tmpfs in every sandbox, with what the job needs bound back
on top (its work dir, ``workdir``, checkpoint dir, the operator's volumes). The service here really runs as
an unprivileged uid: the test, run as root (CI), starts it under ``setpriv`` as nobody; run as another
user, it is that user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from accelpool.executors import sandbox_paths

SERVICE = r"""
import json, sys, time
from accelpool.core.round_types import Placement
from accelpool.core.types import Job
from accelpool.executors.local import LocalExecutor
from accelpool.executors.sandbox import SandboxConfig
from accelpool.ports import EventKind, Launch, RunSpec

home, command, workdir = sys.argv[1:4]
ex = LocalExecutor(home + "/.accelpool/state", sandbox=SandboxConfig())
run = RunSpec(command=command, workdir=workdir)
ex.start(Launch(Job("peek", scale=1), Placement("peek", "h100", (("n0", (0,)),)), run, 1.0))
deadline = time.time() + 60
while time.time() < deadline:
    ends = [e for e in ex.poll() if e.kind in (EventKind.EXITED, EventKind.LOST)]
    if ends:
        print(json.dumps({"exit": ends[0].exit_code, "reason": ends[0].reason, "logs": ex.logs("peek")}))
        break
    time.sleep(0.1)
ex.close()
"""


@pytest.fixture
def service_home() -> Iterator[Path]:
    """A home of the unprivileged service's uid, with a key in ``.ssh`` and a project dir."""
    # not under /tmp, /var/tmp or /dev/shm: those are a private tmpfs in every sandbox, so a home there
    # would be hidden without the veil (the test would pass on the code it guards against)
    base = next(b for b in ("/home", "/srv", "/opt") if os.path.isdir(b)) if os.geteuid() == 0 else None
    home = Path(tempfile.mkdtemp(prefix="accelpool-svc-home-", dir=base or str(Path.home())))
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY-OF-THE-SERVICE\n")
    (home / ".ssh" / "id_ed25519").chmod(0o600)
    (home / "project").mkdir()
    (home / "project" / "train.txt").write_text("the job's own input\n")
    home.chmod(0o700)
    if os.geteuid() == 0:
        for d, _dirs, files in os.walk(home):
            for name in [d, *(os.path.join(d, f) for f in files)]:
                os.chown(name, 65534, 65534)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def _service_python() -> tuple[str, list[str]]:
    """An interpreter the unprivileged uid may run, and the import path it needs. The venv's python may
    link into a dir only root can search (``/root/.pyenv``): nobody may exec it, so the test runs the
    system's python of the same version on the venv's packages."""
    if os.geteuid() != 0:
        return sys.executable, []
    system = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    probe = subprocess.run(
        [system, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=True
    )
    assert probe.stdout.strip() == str(sys.version_info[:2]), f"{system} is not python {sys.version_info[:2]}"
    return system, [p for p in sys.path if p.endswith("site-packages")]


def test_a_job_of_an_unprivileged_service_does_not_see_the_services_home(service_home: Path) -> None:
    home = str(service_home)
    as_service = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    command = (
        f"cat {home}/.ssh/id_ed25519; ls -a {home}; echo listed; cat train.txt; "
        f"echo mine > {home}/planted 2>/dev/null; echo planted-or-not"
    )
    src = str(Path(sandbox_paths.__file__).resolve().parents[2])
    python, path = _service_python()
    out = subprocess.run(
        [*as_service, python, "-c", SERVICE, home, command, f"{home}/project"],
        env={
            "HOME": home,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": ":".join([src, *path]),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    end = json.loads(out.stdout.strip().splitlines()[-1])
    logs = end["logs"]
    assert "PRIVATE-KEY-OF-THE-SERVICE" not in logs, logs
    assert "No such file or directory" in logs, logs
    listing = logs.split("id_ed25519: No such file or directory")[1].split("listed")[0].split()
    assert listing == [".", "..", "project"], logs  # no .ssh, no .accelpool (the service's state, tokens)
    assert "the job's own input" in logs, logs  # its workdir is bound back (read-only)
    # a write to the veiled home lands in the sandbox's tmpfs, gone with it: never in the service's home
    assert "planted-or-not" in logs and not (service_home / "planted").exists(), logs


def test_only_an_unprivileged_service_veils_its_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    data = str(tmp_path / ".accelpool")
    os.makedirs(data)
    veil = sandbox_paths.veiled([data, "/srv/other"], None)
    assert str(tmp_path.resolve()) in veil and "/srv/other" in veil
    assert data not in veil  # inside the home: covered already
    assert sandbox_paths.veiled([data], 41001) == (data,)  # a root service: each job its uid
