"""Per-job limits (memory, processes, scratch, CPU), network isolation and image jobs (podman) on the
LocalExecutor, through the real sandbox. docs/security.md says which mechanism enforces each limit."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.executors.test_local_executor import launch, wait_end

from accelpool.executors import sandbox as sb
from accelpool.executors import sandbox_paths as sb_paths
from accelpool.executors.local import LocalExecutor

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def _ex(tmp_path: Path, **cfg: object) -> LocalExecutor:
    return LocalExecutor(tmp_path / "state", sandbox=sb.SandboxConfig(**cfg))  # type: ignore[arg-type]


def test_a_job_over_its_memory_limit_fails_naming_the_limit(tmp_path: Path) -> None:
    ex = _ex(tmp_path)
    cmd = "python3 -c 'b = bytearray(300 * 1024 * 1024); print(len(b))'"
    ex.start(launch("mem", cmd, limits={"memory": 64 * 1024**2}))
    end, _ = wait_end(ex, "mem", 60)
    assert end.exit_code != 0
    assert "limits.memory = 64 MiB" in end.reason, end.reason
    ex.start(launch("mem-ok", cmd, limits={"memory": 512 * 1024**2}))  # positive control
    end, _ = wait_end(ex, "mem-ok", 60)
    assert end.exit_code == 0, (end.reason, ex.logs("mem-ok"))


def test_a_job_over_its_process_limit_fails_naming_the_limit(tmp_path: Path) -> None:
    ex = _ex(tmp_path)
    cmd = "i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done; wait"
    ex.start(launch("procs", cmd, limits={"processes": 10}))
    end, _ = wait_end(ex, "procs", 60)
    assert end.exit_code != 0, ex.logs("procs")
    assert "limits.processes = 10" in end.reason, (end.reason, ex.logs("procs")[-500:])
    ex.start(launch("procs-ok", cmd, limits={"processes": 100}))
    end, _ = wait_end(ex, "procs-ok", 60)
    assert end.exit_code == 0, (end.reason, ex.logs("procs-ok"))


def test_a_job_over_its_scratch_limit_fails_naming_the_limit(tmp_path: Path) -> None:
    ex = _ex(tmp_path)
    cmd = "head -c 20000000 /dev/zero > /tmp/fill && echo fits || {{ sleep 0.5; exit 1; }}"
    ex.start(launch("scratch", cmd.replace("{{", "{").replace("}}", "}"), limits={"scratch": 8 * 1024**2}))
    end, _ = wait_end(ex, "scratch", 60)
    assert end.exit_code == 1
    assert "limits.scratch = 8 MiB" in end.reason, (end.reason, ex.logs("scratch"))
    assert "No space left on device" in ex.logs("scratch")


def test_limits_above_the_operators_maximum_are_refused_naming_the_field(tmp_path: Path) -> None:
    ex = _ex(tmp_path, max_memory_bytes=128 * 1024**2, max_cpus=1.0)
    with pytest.raises(sb.SandboxError, match=r"limits\.memory"):
        ex.start(launch("big", "true", limits={"memory": 256 * 1024**2}))
    with pytest.raises(sb.SandboxError, match=r"limits\.cpus"):
        ex.start(launch("cpu", "true", limits={"cpus": 2.0}))


def test_cpu_limit_is_a_cfs_quota_where_the_host_allows(tmp_path: Path) -> None:
    """A 2 s busy loop under limits.cpus 0.25 uses at most 0.25 * 2 s (+0.4 s) of CPU where the host gives
    jobs a CPU cgroup (this development machine: cgroup v1 cpu); elsewhere it only runs (nice)."""
    from tests.security.hostile import CPU_HOG, cpu_cgroup

    ex = _ex(tmp_path)
    ex.start(launch("cpu", CPU_HOG, limits={"cpus": 0.25}))
    end, _ = wait_end(ex, "cpu", 30)
    logs = ex.logs("cpu")
    assert end.exit_code == 0, logs
    used = float(next(ln.split()[1] for ln in logs.splitlines() if ln.startswith("cpu ")))
    if cpu_cgroup():
        assert used <= 0.25 * 2 + 0.4, f"a 0.25 CPU limit let a 2 s busy loop use {used} s of CPU"


def _cpu_cgroup_of(pid: int) -> Path | None:
    """The host's cpu cgroup dir of a process (cgroup v1 ``cpu`` or, on a v2-only host, the unified one)."""
    for ln in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _hid, ctrls, path = ln.split(":", 2)
        if "cpu" in ctrls.split(","):
            return Path("/sys/fs/cgroup/cpu") / path.lstrip("/")
    v2 = [
        ln.split(":", 2)[2] for ln in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if ln[:3] == "0::"
    ]
    return Path("/sys/fs/cgroup") / v2[0].lstrip("/") if v2 else None


@pytest.mark.parametrize("weight", [0.25, None])
def test_a_jobs_processes_share_one_cpu_weight(tmp_path: Path, weight: float | None) -> None:
    """Every process of a job rank sits in one cpu cgroup with the operator's ``cpu_weight`` (0.25 of a
    nice-0 process: v1 cpu.shares 256, v2 cpu.weight 25), so a tenant's fork storm weighs as one process
    against the service and other tenants' job starts (the fork-bomb attack in tests/security); with
    ``cpu_weight: None`` the job stays in the service's cpu cgroup. Where the host gives no CPU cgroup, the
    job only runs."""
    from tests.security.hostile import cpu_cgroup

    ex = _ex(tmp_path, cpu_weight=weight)
    marker = f"{3.0 + tmp_path.stat().st_ino % 997 / 1000:.3f}"  # a sleep this test can tell apart
    ex.start(launch("w", f"sleep {marker} & sleep {marker} & wait"))
    pids: list[int] = []
    deadline = time.time() + 10
    while len(pids) < 2 and time.time() < deadline:
        pids = [
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _cmd(p) == f"sleep {marker}"
        ]
        time.sleep(0.05)
    assert len(pids) == 2, "the job's two sleeps were not seen on the host"
    groups = {_cpu_cgroup_of(p) for p in pids}
    mine = _cpu_cgroup_of(os.getpid())
    shares = {
        f.name: f.read_text().strip()
        for g in groups
        if g is not None
        for f in (g / "cpu.shares", g / "cpu.weight")
        if f.exists()
    }
    end, _ = wait_end(ex, "w", 30)
    assert end.exit_code == 0, ex.logs("w")
    if not cpu_cgroup():
        return
    assert len(groups) == 1, groups
    (group,) = groups
    assert group is not None
    if weight is None:
        assert group == mine, f"without cpu_weight the job left the service's cpu cgroup: {group}"
        return
    assert group != mine and group.name.startswith("accelpool-"), group
    assert shares.get("cpu.shares") == "256" or shares.get("cpu.weight") == "25", (group, shares)
    assert not group.exists(), "the job's cpu cgroup outlived it"


def _cmd(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_cpu_weight_out_of_range_is_refused_naming_the_field() -> None:
    for bad in (0, -1, 101):
        with pytest.raises(ValueError, match="cpu_weight"):
            sb.SandboxConfig(cpu_weight=bad)


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's 127.0.0.1 (stands in for the API and PostgreSQL ports)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    stop = threading.Event()

    def serve() -> None:
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = s.accept()
                c.sendall(b"HELLO\n")
                c.close()
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield s.getsockname()[1]
    stop.set()
    t.join()
    s.close()


CONNECT = (
    "python3 -c \"import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1])), 3); "
    "print('CONNECTED', s.recv(10))\" {port}"
)


def test_jobs_have_no_network_unless_the_operator_grants_it(tmp_path: Path, listener: int) -> None:
    ex = _ex(tmp_path, network_for=("lab",))
    ex.start(launch("nonet", CONNECT.format(port=listener)))
    end, _ = wait_end(ex, "nonet", 30)
    assert end.exit_code != 0 and "CONNECTED" not in ex.logs("nonet"), ex.logs("nonet")
    from accelpool.core.rounds import Placement
    from accelpool.core.types import Job
    from accelpool.ports import Launch, RunSpec

    granted = Launch(
        Job("net", tenant="lab"),
        Placement("net", "h100", (("n0", (0,)),)),
        RunSpec(CONNECT.format(port=listener)),
        1.0,
    )
    ex.start(granted)
    end, _ = wait_end(ex, "net", 30)
    assert end.exit_code == 0 and "CONNECTED" in ex.logs("net"), ex.logs("net")


# -- image jobs (podman) ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny image built here: a static busybox with its applets (no registry)."""
    from tests.security.hostile import build_test_image

    built = build_test_image(tmp_path_factory.mktemp("img"))
    if built is None:
        pytest.skip("podman, busybox-static and a root service are needed (scripts/setup.sh installs them)")
    return built


def test_an_image_job_runs_in_the_image_with_the_sandbox_rules(tmp_path: Path, image: str) -> None:
    ex = _ex(tmp_path, tenant_ids={"default": (60001, 60001)})
    cmd = (
        "id -u; echo HOME=$HOME; ls /usr/bin/python3 2>&1; ls {state} 2>&1; echo 5 > $ACCELPOOL_PROGRESS_FILE; "
        "env | sort; ls /dev; echo done"
    ).format(state=tmp_path / "state")
    ex.start(launch("img", cmd, image=image, env={"MINE": "x y"}))
    end, events = wait_end(ex, "img", 90)
    logs = ex.logs("img")
    assert end.exit_code == 0, (end.reason, logs)
    assert "\n60001\n" in logs and "HOME=/tmp/job" in logs and "MINE=x y" in logs, logs
    assert "/usr/bin/python3: No such file" in logs, "the host filesystem is not in an image job"
    assert f"{tmp_path / 'state'}: No such file" in logs
    assert "VIRTUAL_ENV" not in logs and "PYTHONPATH" not in logs, logs
    assert any(e.kind.value == "progress" and e.steps == 5 for e in events), events


def test_an_image_job_over_its_memory_limit_fails_naming_the_limit(tmp_path: Path, image: str) -> None:
    ex = _ex(tmp_path)
    cmd = "head -c 300000000 /dev/zero | tail -c 200000000 > /dev/null"  # tail keeps its input in memory
    ex.start(launch("imgmem", cmd, image=image, limits={"memory": 64 * 1024**2}))
    end, _ = wait_end(ex, "imgmem", 90)
    assert end.exit_code != 0
    assert "limits.memory = 64 MiB" in end.reason, (end.reason, ex.logs("imgmem"))


def test_an_unknown_image_or_no_podman_is_refused_naming_the_field(tmp_path: Path, image: str) -> None:
    ex = _ex(tmp_path)
    with pytest.raises(sb.SandboxError, match="image 'localhost/no-such-image:0' is not on this node"):
        ex.start(launch("nope", "true", image="localhost/no-such-image:0"))
    ex2 = _ex(tmp_path / "b", podman="no-podman-here")
    with pytest.raises(sb.SandboxError, match="podman is not installed"):
        ex2.start(launch("nope", "true", image=image))


def test_an_image_job_has_no_network_unless_granted(tmp_path: Path, image: str, listener: int) -> None:
    from accelpool.core.rounds import Placement
    from accelpool.core.types import Job
    from accelpool.ports import Launch, RunSpec

    ex = _ex(tmp_path, network_for=("lab",))
    cmd = f"nc -w 3 127.0.0.1 {listener} </dev/null"
    for job, tenant, ok in (("img-nonet", "default", False), ("img-net", "lab", True)):
        run = RunSpec(cmd, image=image)
        ex.start(Launch(Job(job, tenant=tenant), Placement(job, "h100", (("n0", (0,)),)), run, 1.0))
        end, _ = wait_end(ex, job, 60)
        assert ("HELLO" in ex.logs(job)) is ok, (job, ex.logs(job))


def test_without_cgroups_the_rlimit_fallback_enforces_memory_and_names_it(tmp_path: Path) -> None:
    ex = _ex(tmp_path, cgroups=False)
    cmd = "python3 -c 'b = bytearray(300 * 1024 * 1024); print(len(b))'"
    ex.start(launch("mem", cmd, limits={"memory": 64 * 1024**2}))
    end, _ = wait_end(ex, "mem", 60)
    assert end.exit_code == 1 and "MemoryError" in ex.logs("mem"), ex.logs("mem")
    assert "limits.memory = 67108864 (RLIMIT_AS; no cgroup)" in end.reason, end.reason


def test_an_image_jobs_container_goes_when_its_wrapper_is_killed(tmp_path: Path, image: str) -> None:
    import os
    import signal
    import time

    from tests.security.hostile import _host_procs

    ex = _ex(tmp_path)
    ex.start(launch("imgkill", "echo started; sleep 311.59", image=image))
    deadline = time.time() + 60
    while "started" not in ex.logs("imgkill"):
        assert time.time() < deadline, ex.logs("imgkill")
        time.sleep(0.2)
    assert _host_procs("sleep 311.59")
    for pid in ex.pids("imgkill"):
        os.kill(pid, signal.SIGKILL)  # not the stop path: the wrapper cannot clean up
    end, _ = wait_end(ex, "imgkill", 60)
    assert end.exit_code == -9
    deadline = time.time() + 20
    while _host_procs("sleep 311.59") and time.time() < deadline:
        time.sleep(0.2)
    assert not _host_procs("sleep 311.59"), "the container outlived its wrapper"


def test_the_next_image_job_removes_containers_whose_wrapper_is_gone(tmp_path: Path, image: str) -> None:
    """A container whose wrapper was killed together with what would have removed it (the executor, a Ray
    actor) is removed by the next image job's wrapper on that host: containers carry their wrapper's pid,
    start time and pid namespace as labels. A container whose wrapper still runs is kept."""
    import os
    import subprocess
    import time

    from tests.security.hostile import _host_procs

    from accelpool.executors.sandbox_image import PODMAN_GLOBAL

    podman = ["podman", *PODMAN_GLOBAL]
    gone = subprocess.Popen(["true"])
    gone.wait()
    with open(f"/proc/{os.getpid()}/stat") as f:
        me = f"{os.getpid()}:{f.read().rsplit(')', 1)[1].split()[19]}"
    ns = os.readlink("/proc/self/ns/pid")
    names = {"h11b-gone": (f"{gone.pid}:1", "sleep 314.81"), "h11b-live": (me, "sleep 314.82")}
    try:
        for name, (owner, cmd) in names.items():
            subprocess.run([*podman, "rm", "-f", "-t", "0", name], capture_output=True, check=False)
            r = subprocess.run(
                [
                    *podman,
                    "run",
                    "-d",
                    "--name",
                    name,
                    "--pull=never",
                    "--label",
                    f"accelpool.wrapper={owner}",
                    "--label",
                    f"accelpool.pidns={ns}",
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=4096:4096",
                    image,
                    "/bin/sh",
                    "-c",
                    cmd,
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert r.returncode == 0, r.stderr
        deadline = time.time() + 20
        while not (_host_procs("sleep 314.81") and _host_procs("sleep 314.82")) and time.time() < deadline:
            time.sleep(0.2)
        assert _host_procs("sleep 314.81") and _host_procs("sleep 314.82")
        ex = _ex(tmp_path)
        ex.start(launch("sweep", "echo ran", image=image))
        end, _ = wait_end(ex, "sweep", 60)
        assert end.exit_code == 0, ex.logs("sweep")
        assert "h11b-" not in ex.logs("sweep"), "the tenant's log shows another job's container"
        assert not _host_procs("sleep 314.81"), "a container whose wrapper is gone was kept"
        assert _host_procs("sleep 314.82"), "a container whose wrapper runs was removed"
    finally:
        for name in names:
            subprocess.run(
                [*podman, "rm", "-f", "-t", "0", name], capture_output=True, check=False, timeout=60
            )


def test_a_sandbox_goes_when_its_wrapper_is_killed(tmp_path: Path) -> None:
    """A wrapper killed outright (Ray kills an actor's child processes, say) takes the sandbox and every
    process in it along. (bwrap's own --die-with-parent covers this once its setup is done; the wrapper
    also sets PR_SET_PDEATHSIG before it execs bwrap, for a kill during bwrap's setup, which left a bwrap
    stuck on its setup eventfd in a loaded Ray run: that race is not reproduced here.)"""
    import os
    import signal
    import time

    from tests.security.hostile import _host_procs

    ex = _ex(tmp_path)
    ex.start(launch("wkill", "sleep 312.61 & echo started; sleep 312.62"))
    deadline = time.time() + 60
    while "started" not in ex.logs("wkill"):
        assert time.time() < deadline, ex.logs("wkill")
        time.sleep(0.2)
    assert _host_procs("sleep 312.6")
    for pid in ex.pids("wkill"):
        os.kill(pid, signal.SIGKILL)  # the wrapper only: not the stop path
    deadline = time.time() + 20
    while _host_procs("sleep 312.6") and time.time() < deadline:
        time.sleep(0.2)
    assert not _host_procs("sleep 312.6"), "the sandbox (or bwrap) outlived its wrapper"
    ex.close()


def test_a_job_path_has_only_entries_the_job_can_use(tmp_path: Path) -> None:
    # /root is 0700 on Debian: a root service's ~/.pyenv shims are there, a job's uid may not search it
    assert os.stat("/root").st_mode & 0o001 == 0
    hidden = ("/tmp", "/var/tmp", "/dev/shm")  # the sandbox's private tmpfs
    mess = "/root:/root/.pyenv/shims:bin:/usr/bin:/usr/bin:/no/such:/tmp:/bin"
    assert sb_paths.job_path(mess, 60001, 60001, hidden, sb.SAFE_PATH) == "/usr/bin:/bin"
    assert (
        sb_paths.job_path("/srv/data/bin:/usr/bin", 60001, 60001, ("/srv/data",), sb.SAFE_PATH) == "/usr/bin"
    )
    assert sb_paths.job_path("/root:relative", 60001, 60001, hidden, sb.SAFE_PATH) == sb.SAFE_PATH
    assert sb_paths.job_path("/root:/usr/bin", 0, 0, hidden, sb.SAFE_PATH) == "/root:/usr/bin"  # root: all


def test_a_job_does_not_see_path_entries_it_cannot_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/root:" + os.environ.get("PATH", sb.SAFE_PATH))
    ex = _ex(tmp_path, tenant_ids={"default": (60001, 60001)})
    ex.start(launch("path", 'echo "PATH=$PATH"; no-such-tool-xyz; echo "rc=$?"'))
    end, _ = wait_end(ex, "path", 60)
    logs = ex.logs("path")
    assert end.exit_code == 0, (end.reason, logs)
    path = next(line for line in logs.splitlines() if line.startswith("PATH="))[5:].split(":")
    assert "/root" not in path and "/usr/bin" in path, path
    assert not any(p.startswith("/root/") for p in path), path
    assert "rc=127" in logs and "Permission denied" not in logs, logs
    ex.close()


def test_a_stopped_image_job_gives_its_grace_period_to_what_the_shell_started(
    tmp_path: Path, image: str
) -> None:
    # podman signals only the container's init: JOB_INIT passes SIGTERM on and keeps the container until
    # the job's processes end (before, the command line's shell died and took the saving program with it)
    ex = _ex(tmp_path)
    saver = (
        "trap 'sleep 1; echo saved after the stop; exit 0' TERM; echo ready; while true; do sleep 0.05; done"
    )
    ex.start(launch("imgstop", f'sh -c "{saver}"; echo the shell went on', image=image, grace_seconds=20.0))
    deadline = time.time() + 90
    while "ready" not in ex.logs("imgstop"):
        assert time.time() < deadline, ex.logs("imgstop")
        time.sleep(0.1)
    t0 = time.time()
    ex.stop("imgstop", "preempted")
    end, _ = wait_end(ex, "imgstop", 60)
    assert "saved after the stop" in ex.logs("imgstop"), ex.logs("imgstop")
    assert end.reason.startswith("stopped: preempted")
    assert time.time() - t0 < 15.0  # ended when the job did, not at the end of the grace period
