"""RayExecutor on a real multi-node Ray cluster on this machine (ray.cluster_utils.Cluster).

Nodes: a head with 4 RBLN devices of a type the catalogue does not know, two nodes of 8 emulated H100
(``GPU`` + ``accelerator_type:H100``) and one of 8 FuriosaAI RNGD (``FURIOSA`` +
``accelerator_type:FURIOSA_RNGD``). Memory is kept small (80 MB object stores, 1 CPU per node).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from accelpool.core.rounds import Placement  # noqa: E402
from accelpool.core.types import Job  # noqa: E402
from accelpool.executors.ray import RayExecutor  # noqa: E402
from accelpool.ports import EventKind, ExecutorEvent, Launch, NodeSource, RunSpec  # noqa: E402

pytestmark = pytest.mark.ray
MB = 1024 * 1024
NS = "accelpool-test"


def add_node(cluster: Cluster, name: str, **kw):
    return cluster.add_node(num_cpus=1, object_store_memory=80 * MB, labels={"accelpool.io/node": name}, **kw)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "object_store_memory": 80 * MB,
            "include_dashboard": False,
            "resources": {"RBLN": 4, "accelerator_type:RBLN-CA99": 4},
        },
    )
    for name in ("h100-0", "h100-1"):
        add_node(c, name, num_gpus=8, resources={"accelerator_type:H100": 8})
    add_node(c, "rngd-0", resources={"FURIOSA": 8, "accelerator_type:FURIOSA_RNGD": 8})
    ray.init(address=c.address, namespace=NS, log_to_driver=False)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture
def executor(cluster, tmp_path: Path) -> Iterator[RayExecutor]:
    ex = RayExecutor(
        namespace=NS,
        placement_timeout_seconds=15.0,  # generous: CI machines are small and shared
        log_dir=tmp_path / "logs",
        remote_dir=str(tmp_path / "remote"),
    )
    polled: list[ExecutorEvent] = []
    poll = ex.poll

    def recording_poll() -> list[ExecutorEvent]:
        events = poll()
        polled.extend(events)
        return events

    ex.poll = recording_poll  # type: ignore[method-assign]
    yield ex
    for j in list(ex.active()):
        ex.stop(j, "teardown")
    deadline = time.time() + 30
    while ex.active() and time.time() < deadline:
        ex.poll()
        time.sleep(0.1)
    ex.ack(polled)  # as the reconciler does once the store has them: the ended jobs' actors go
    ex.close()


def launch(job: str, acc: str, devices, command: str, grace: float = 2.0) -> Launch:
    p = Placement(job, acc, tuple(devices))
    return Launch(Job(job, scale=p.count), p, RunSpec(command=command, grace_seconds=grace), 1.0)


def wait_for(
    ex: RayExecutor, job: str, kinds, timeout: float = 60.0
) -> tuple[ExecutorEvent, list[ExecutorEvent]]:
    seen: list[ExecutorEvent] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen += ex.poll()
        for e in seen:
            if e.job == job and e.kind in kinds:
                return e, seen
        time.sleep(0.1)
    raise AssertionError(f"{job}: no {kinds} in {seen}")


def wait_log(ex: RayExecutor, job: str, text: str, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while text not in ex.logs(job):
        assert time.time() < deadline, ex.logs(job)
        time.sleep(0.1)


END = (EventKind.EXITED, EventKind.LOST)


def _procs(needle: str) -> list[int]:
    """Live processes on this machine (every Ray node of the test cluster) whose command line starts with
    ``needle``."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cl = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                st = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if cl.startswith(needle) and st[st.rfind(")") + 2] != "Z":
                out.append(int(d))
    return out


ENV = 'echo "node=$ACCELPOOL_NODE rank=$ACCELPOOL_NODE_RANK cuda=$CUDA_VISIBLE_DEVICES furiosa=$FURIOSA_DEVICES"'


def test_nodes_are_discovered_and_unknown_types_reported(executor: RayExecutor) -> None:
    assert isinstance(executor, NodeSource)
    nodes = {n.name: (n.accelerator, n.devices) for n in executor.nodes()}
    assert nodes == {"h100-0": ("h100", 8), "h100-1": ("h100", 8), "rngd-0": ("rngd", 8)}
    (why,) = executor.unrecognized().values()
    assert "RBLN-CA99" in why
    mapped = RayExecutor(namespace=NS, type_aliases={"RBLN-CA99": "atom"})
    assert ("atom", 4) in {(n.accelerator, n.devices) for n in mapped.nodes()}
    mapped.close()


def test_gang_of_4_plus_4_over_two_nodes(executor: RayExecutor) -> None:
    executor.start(launch("gang", "h100", [("h100-0", (0, 1, 2, 3)), ("h100-1", (4, 5, 6, 7))], ENV))
    end, seen = wait_for(executor, "gang", END)
    assert end.kind == EventKind.EXITED and end.exit_code == 0
    assert any(e.kind == EventKind.STARTED for e in seen)
    text = executor.logs("gang")
    for rank, node in ((0, "h100-0"), (1, "h100-1")):
        line = next(ln for ln in text.splitlines() if f"node={node} rank={rank}" in ln)
        assert len(line.split("cuda=")[1].split()[0].split(",")) == 4


def test_single_node_npu_job_sees_its_furiosa_devices(executor: RayExecutor) -> None:
    executor.start(launch("npu", "rngd", [("rngd-0", (0, 1))], ENV + "; exit 7"))
    end, _ = wait_for(executor, "npu", END)
    assert end.kind == EventKind.EXITED and end.exit_code == 7
    line = next(ln for ln in executor.logs("npu").splitlines() if "node=rngd-0" in ln)
    assert len(line.split("furiosa=")[1].split(",")) == 2


def test_never_placeable_job_is_given_back_with_a_reason(executor: RayExecutor) -> None:
    from ray.util import placement_group_table

    executor.start(launch("never", "rngd", [("h100-0", (0,))], "true"))  # no FURIOSA on h100-0
    end, seen = wait_for(executor, "never", END)
    assert end.kind == EventKind.LOST and end.reason.startswith("placement-timeout")
    assert not any(e.kind == EventKind.STARTED for e in seen)
    states = [
        pg["state"] for pg in placement_group_table().values() if pg["name"].startswith("accelpool/never/")
    ]
    assert states and all(s == "REMOVED" for s in states)
    assert executor.active() == set()


def test_cancel_during_run_stops_work_and_removes_the_placement_group(executor: RayExecutor) -> None:
    from ray.util import placement_group_table

    cmd = "trap 'echo checkpointing; exit 0' TERM; echo ready; while true; do sleep 0.1; done"
    executor.start(launch("c", "h100", [("h100-0", (0, 1))], cmd))
    wait_for(executor, "c", (EventKind.STARTED,))
    wait_log(executor, "c", "ready")
    executor.stop("c", "cancelled")
    end, _ = wait_for(executor, "c", END)
    assert (
        end.kind == EventKind.EXITED and end.exit_code == -15 and end.reason.startswith("stopped: cancelled")
    )
    assert "checkpointing" in executor.logs("c")
    assert all(
        pg["state"] == "REMOVED"
        for pg in placement_group_table().values()
        if pg["name"].startswith("accelpool/c/")
    )
    assert not [
        a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("accelpool/c/")
    ]


def test_stop_forces_after_grace(executor: RayExecutor) -> None:
    executor.start(
        launch(
            "k",
            "h100",
            [("h100-1", (0,))],
            "trap '' TERM; echo ready; while true; do sleep 0.1; done",
            grace=1.0,
        )
    )
    wait_for(executor, "k", (EventKind.STARTED,))
    wait_log(executor, "k", "ready")
    executor.stop("k", "preempted")
    end, _ = wait_for(executor, "k", END)
    assert end.exit_code == -9


def test_restart_of_accelpool_adopts_running_work(executor: RayExecutor, tmp_path: Path) -> None:
    executor.start(launch("r", "h100", [("h100-0", (0,)), ("h100-1", (0,))], "echo once; sleep 3; exit 5"))
    wait_for(executor, "r", (EventKind.STARTED,))
    executor.close()  # the control plane goes away; Ray keeps running the job
    again = RayExecutor(namespace=NS, log_dir=tmp_path / "logs2", remote_dir=str(tmp_path / "remote"))
    try:
        assert again.active() == {"r"}
        with pytest.raises(RuntimeError):
            again.start(launch("r", "h100", [("h100-0", (0,))], "true"))
        end, _ = wait_for(again, "r", END)
        assert end.kind == EventKind.EXITED and end.exit_code == 5
        assert again.logs("r").count("once") == 2  # one per rank, never started twice
        again.ack([end])  # recorded: its actors go (unacked, the next executor would adopt it again)
    finally:
        again.close()


def test_a_job_that_ended_while_the_control_plane_was_down_ends_at_its_recorded_exit_time(
    executor: RayExecutor, tmp_path: Path
) -> None:
    """Billing after a restart: the adopted job's end is when it exited, not when the new executor saw it."""
    executor.start(launch("x", "h100", [("h100-0", (1,))], "sleep 1; exit 0"))
    wait_for(executor, "x", (EventKind.STARTED,))
    executor.close()
    time.sleep(6.0)  # the job ends about 1 s in; the control plane comes back 6 s later
    again = RayExecutor(namespace=NS, log_dir=tmp_path / "logs2", remote_dir=str(tmp_path / "remote"))
    try:
        assert again.active() == {"x"}
        end, _ = wait_for(again, "x", END)
        assert end.kind == EventKind.EXITED and end.exit_code == 0
        assert time.time() - end.time > 3.0, "the end was dated when it was seen, not when it happened"
        again.ack([end])
    finally:
        again.close()


def test_node_killed_during_run_loses_its_jobs_and_leaves_the_pool(
    cluster: Cluster, executor: RayExecutor
) -> None:
    """A gang over the lost node and a surviving one: LOST node-lost, and 20 s after the loss is detected no
    process of that attempt is left on any node (the surviving rank too, and a setsid child)."""
    node = add_node(cluster, "h100-x", num_gpus=2, resources={"accelerator_type:H100": 2})
    assert "h100-x" in {n.name for n in executor.nodes()}
    cmd = "setsid -f sleep 600.71; sleep 600.72 & trap '' TERM; sleep 600.73; wait"
    executor.start(launch("lost", "h100", [("h100-x", (0, 1)), ("h100-0", (0, 1))], cmd))
    wait_for(executor, "lost", (EventKind.STARTED,))
    deadline = time.time() + 20
    while len(_procs("sleep 600.7")) < 6 and time.time() < deadline:  # 3 per rank
        time.sleep(0.2)
    assert len(_procs("sleep 600.7")) == 6, _procs("sleep 600.7")
    cluster.remove_node(node, allow_graceful=False)
    end, _ = wait_for(executor, "lost", END, timeout=60)
    assert end.kind == EventKind.LOST and end.reason == "node-lost"
    detected = time.time()
    while _procs("sleep 600.7") and time.time() < detected + 20:
        time.sleep(0.2)
    assert not _procs("sleep 600.7"), "processes of the lost attempt survived"
    assert "h100-x" not in {n.name for n in executor.nodes()}
    back = add_node(cluster, "h100-x", num_gpus=2, resources={"accelerator_type:H100": 2})
    assert "h100-x" in {n.name for n in executor.nodes()}
    cluster.remove_node(back)


def test_an_image_jobs_container_goes_when_its_wrapper_is_killed_on_ray(
    executor: RayExecutor, tmp_path: Path
) -> None:
    """podman runs an image job's container apart from its wrapper: when the wrapper is killed outright
    (SIGKILL, not the stop path) the rank's actor removes the container (``podman rm -f``) once it sees the
    wrapper gone without its exit record; no process of the container is left 20 s after the end."""
    import signal
    import subprocess

    from tests.security.hostile import _host_procs, build_test_image

    image = build_test_image(tmp_path / "img")
    if image is None:
        pytest.skip("podman, busybox-static and a root service are needed (scripts/setup.sh installs them)")
    p = Placement("imgk", "h100", (("h100-0", (0,)),))
    executor.start(
        Launch(Job("imgk", scale=1), p, RunSpec(command="echo started; sleep 313.71", image=image), 1.0)
    )
    wait_for(executor, "imgk", (EventKind.STARTED,))
    wait_log(executor, "imgk", "started", timeout=60)
    assert _host_procs("sleep 313.71")
    plan = str(tmp_path / "remote")
    wrappers = [pid for pid in _host_procs(" -I -S -c ") if plan in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(wrappers) == 1, wrappers
    os.kill(wrappers[0], signal.SIGKILL)  # the wrapper only: it cannot clean up
    end, _ = wait_for(executor, "imgk", END)
    assert end.exit_code == -9, end
    deadline = time.time() + 20
    while _host_procs("sleep 313.71") and time.time() < deadline:
        time.sleep(0.2)
    try:
        assert not _host_procs("sleep 313.71"), "the container outlived its wrapper"
    finally:  # a failure must not leave the container running on this machine
        subprocess.run(
            [
                "sh",
                "-c",
                "podman --runtime runc --cgroup-manager=cgroupfs ps -aq --filter name=accelpool-imgk-"
                " | xargs -r podman --runtime runc --cgroup-manager=cgroupfs rm -f -t 0",
            ],
            capture_output=True,
            check=False,
            timeout=60,
        )
