"""Jobs with an ``image:``: the command runs in an OCI container started by podman, under the same rules as
the bubblewrap sandbox (executors/sandbox.py builds the plan; this module builds podman's argv).

Standard library only (the RayExecutor ships it by value, like sandbox.py). What the container gets:

- the image's filesystem read-only (``--read-only``), a private size-limited ``/tmp`` (``--tmpfs``,
  ``limits.scratch`` or the operator's ``tmp_bytes``), the job's work dir at ``/tmp/job`` (its ``HOME``,
  the progress file), its ``checkpoint_dir`` and the tenant's volumes; nothing else of the host;
- only the job's own device nodes (``--device``);
- the allow-listed environment (from a 0600 ``--env-file``, so the job token is not in any argv);
- the tenant's uid/gid (``--user``), no capabilities, ``no-new-privileges``;
- no network unless the operator grants it (``--network=none``; granted: ``--network=host``);
- limits: ``--memory``, ``--pids-limit``, ``--cpus`` (podman's cgroup), ``--ulimit nofile/nproc``;
- its own pid namespace with an init (``--init``): when the command exits every process of it dies.

Measured on a host like the development machine (cgroup v1 hybrid, Debian 12): crun refuses the hybrid
cgroups and podman's default ulimits, so podman runs with ``--runtime runc --cgroup-manager=cgroupfs`` and
explicit ``--ulimit``s. Images are never pulled (``--pull=never``): an image must be on the node already.
Rootless podman is not supported: the service must run as root to run image jobs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence

PODMAN_GLOBAL = ("--runtime", "runc", "--cgroup-manager=cgroupfs")
log = logging.getLogger("accelpool.executors.sandbox_image")


class ImageError(RuntimeError):
    """The image job cannot run here (no podman, image not on the node, rootless)."""


def podman_path(podman: str) -> str | None:
    return shutil.which(podman)


def check_image(podman: str, image: str) -> str:
    """The podman binary to use, or ImageError naming the field ``image``."""
    exe = podman_path(podman)
    if exe is None:
        raise ImageError(
            f"image '{image}': podman is not installed on this node, so jobs with an 'image' cannot run "
            "(Debian/Ubuntu: apt-get install podman runc; scripts/setup.sh does this when run as root)"
        )
    if os.geteuid() != 0:
        raise ImageError(f"image '{image}': jobs with an 'image' need the service to run as root here")
    try:
        r = subprocess.run(
            [exe, *PODMAN_GLOBAL, "image", "exists", image], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"image '{image}': podman could not be asked about it: {exc}") from None
    if r.returncode != 0:
        raise ImageError(
            f"image '{image}' is not on this node (field 'image'; accelpool never pulls images: the "
            "operator loads them with podman load, import or pull)"
        )
    return exe


def podman_argv(
    exe: str,
    *,
    image: str,
    name: str,
    env_file: str,
    uid: int,
    gid: int,
    work_dir: str,
    work_dest: str,
    binds: Sequence[Sequence[str]],
    devices: Sequence[tuple[str, str]],
    network: bool,
    limits: Mapping[str, float],
    max_open_files: int,
    scratch_bytes: int,
    cwd: str,
    shell: str,
    command: str,
    args: Sequence[str] = (),
) -> list[str]:
    """podman's argv for one rank (see the module docstring). ``binds``: (host path, dest, ro|rw);
    ``devices``: (host node, node inside); ``limits``: memory (bytes), processes, cpus; the container
    runs ``shell -c command *args`` (sandbox.plan passes its JOB_INIT, the job's command in ``args``)."""
    procs = int(limits.get("processes") or 4096)
    argv = [
        exe,
        *PODMAN_GLOBAL,
        "run",
        "--name",
        name,
        "--pull=never",
        "--init",
        "--log-driver=none",
        "--read-only",
        "--network=host" if network else "--network=none",
        "--user",
        f"{uid}:{gid}",
        "--cap-drop=all",
        "--security-opt",
        "no-new-privileges",
        "--ulimit",
        f"nofile={max_open_files}:{max_open_files}",
        "--ulimit",
        f"nproc={procs}:{procs}",
        "--ulimit",
        "core=0:0",
        "--pids-limit",
        str(procs),
        "--tmpfs",
        f"/tmp:size={int(scratch_bytes)},mode=1777",
        "--env-file",
        env_file,
        "-v",
        f"{work_dir}:{work_dest}:rw",
        "--workdir",
        cwd,
    ]
    if limits.get("memory"):
        m = int(limits["memory"])
        argv += ["--memory", str(m), "--memory-swap", str(m)]
    if limits.get("cpus"):
        argv += ["--cpus", f"{float(limits['cpus']):g}"]
    for src, dest, mode in binds:
        argv += ["-v", f"{src}:{dest}:{'rw' if mode == 'rw' else 'ro'}"]
    for host, inside in devices:
        if _is_device(host):
            argv += ["--device", f"{host}:{inside}"]
        else:  # a stand-in regular file (tests): bound like a volume, writable
            argv += ["-v", f"{host}:{inside}:rw"]
    return argv + [image, shell, "-c", command, *args]


def _is_device(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def write_env_file(path: str, env: Mapping[str, str]) -> None:
    """podman's --env-file (one KEY=value a line, 0600). A value with a newline cannot be passed this way."""
    for k, v in env.items():
        if "\n" in v or "\n" in k:
            raise ImageError(f"env '{k}': a value with a newline cannot be passed to an image job")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in env.items()))


def remove_container(plan_path: str) -> None:
    """An image job's wrapper died without its record (SIGKILL, not the normal stop): remove its container
    (podman runs it apart from the wrapper) with every process in it. Nothing for bwrap jobs."""
    try:
        with open(plan_path) as f:
            container = json.load(f).get("container")
    except (OSError, ValueError):
        return  # no plan (a job that never started) or not ours
    if container:
        argv = [container["podman"], *container["global"], "rm", "-f", "-t", "0", container["name"]]
        try:
            subprocess.run(argv, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("could not remove the container %s: %s", container["name"], exc)
