"""The tenant boundary: every job's processes run inside a bubblewrap sandbox.

This module is standard-library only, so the RayExecutor can ship it by value to Ray nodes that have no
accelpool installed. It has three parts:

``SandboxConfig``   what the operator decides: tenant uid/gid mapping (when the service runs as root),
                    volumes per tenant, limits, protected paths, and whether running unsandboxed is allowed.
``plan(...)``       one job rank's launch plan (a JSON-able dict): the bwrap argv, the environment, the
                    uid/gid, the rlimits, the log bound and the run-time limit. Pure: no I/O except
                    ``os.path.realpath`` / ``glob`` on the paths it binds.
``WRAPPER``         (module ``sandbox_wrapper``) a small Python program (``python -I -S -c WRAPPER plan.json``)
                    between the executor and bwrap: it applies the rlimits and the uid, starts bwrap, keeps the log
                    bounded (head + marker + tail), forwards a graceful SIGTERM to every process of the
                    sandbox, enforces max_run_time, and records the exit code and the exit time.

Inside the sandbox (``bwrap``): new user, pid, ipc, uts and cgroup namespaces; the host filesystem
read-only; protected paths (data dir, database, tokens, executor state, logs, stand-in device roots) covered
by empty tmpfs; a fresh /proc (only the job's processes), a minimal /dev plus the job's own device nodes; a
private /tmp (size-limited tmpfs); the job's work dir, checkpoint dir and the tenant's volumes bound
read-write (or read-only as granted); an environment built from an allow-list only. The sandbox's pid 1
is bwrap's reaper: when the job's command exits, or bwrap is killed, the kernel kills every process left in
the pid namespace (background children, ``setsid`` children, fork bombs).
"""

from __future__ import annotations

import glob
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Variables a job may inherit from the service (nothing else is inherited: no tokens, no database URL,
# no VIRTUAL_ENV, no ACCELPOOL_* of the service).
INHERITED = ("LANG", "LC_ALL", "TZ")
SANDBOX_TMPFS = ("/tmp", "/var/tmp", "/dev/shm")  # each a private tmpfs inside the sandbox
SANDBOX_WORK = "/tmp/job"  # the job's private writable dir inside the sandbox (HOME)
PROGRESS_FILE = ".progress"  # in the work dir: the job writes its cumulative step count here

# Device nodes per device family, keyed by the type's visible-devices variable (catalogue).
#   per_device: node names for device index {i}, globbed under the device root;
#   shared:     control nodes every job of that family needs.
# Sources (see docs/security.md): NVIDIA driver README "Device node files" (/dev/nvidia<N>, nvidiactl,
# nvidia-uvm, nvidia-uvm-tools, nvidia-modeset); FuriosaAI libfuriosa-kubernetes device manifests
# (RNGD: /dev/rngd/npu<N>mgmt, /dev/rngd/npu<N>pe<a>[-<b>], channel nodes, all prefixed /dev/rngd/npu<N>;
# Warboy: /dev/npu<N>, /dev/npu<N>pe<a>[-<b>], /dev/npu<N>_mgmt); Rebellions docs.rbln.ai container guide and
# the RBLN container toolkit's discovery patterns (/dev/rbln<N> per NPU, /dev/rsd<N> the RSD system node).
DEVICE_NODES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "CUDA_VISIBLE_DEVICES": (
        ("nvidia{i}",),
        ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"),
    ),
    "FURIOSA_DEVICES": (
        (
            "npu{i}",
            "npu{i}pe*",
            "npu{i}_mgmt",
            "rngd/npu{i}mgmt",
            "rngd/npu{i}pe*",
            "rngd/npu{i}ch*",
            "rngd/npu{i}rch*",
            "rngd/npu{i}dmar*",
            "rngd/npu{i}bar*",
        ),
        (),
    ),
    "RBLN_DEVICES": (("rbln{i}",), ("rsd*",)),
}


def _shipped(name: str) -> Any:
    """executors/<name>.py (sandbox_image, sandbox_paths): shipped by value to Ray nodes (registered there
    as ``accelpool_job_<name>`` by the actor), else imported from accelpool."""
    mod = sys.modules.get(f"accelpool_job_{name}")
    return mod if mod is not None else importlib.import_module(f"accelpool.executors.{name}")


class SandboxError(RuntimeError):
    """The sandbox cannot be set up (missing tool, refused path). The message says why and what to do."""


@dataclass(frozen=True)
class Volume:
    """A host path the operator grants to a tenant's jobs (``mode``: ``ro`` or ``rw``)."""

    path: str
    mode: str = "ro"

    def __post_init__(self) -> None:
        if self.mode not in ("ro", "rw"):
            raise ValueError(f"volume {self.path}: mode must be 'ro' or 'rw', got {self.mode!r}")
        if not os.path.isabs(self.path):
            raise ValueError(f"volume {self.path}: must be an absolute path")


@dataclass(frozen=True)
class SandboxConfig:
    """Operator settings for the job sandbox. Defaults are the safe ones.

    enabled             False runs jobs without a sandbox; only honoured with ``allow_unsandboxed``
                        (single-user machines). bwrap missing and not allowed: the executor refuses to start.
    allow_unsandboxed   run tenant jobs unsandboxed when bwrap is missing or disabled (the operator's
                        explicit choice; ``accelpool up --allow-unsandboxed``).
    protect             host paths the job must not see at all (the service adds its data dir; the
                        executor adds its state and log dirs); each is covered by an empty tmpfs.
    job_roots           the operator's dirs of job dirs (the service adds its checkpoint root): job dirs
                        inside are not refused for lying in a system tree (sandbox_paths.writable).
    volumes             tenant id (or "*" for every tenant) -> volumes bound into its jobs.
    tenant_ids          tenant id -> (uid, gid) its jobs run as when the service runs as root (like Slurm:
                        each tenant its own account). Tenants not listed run as ``default_id``.
    default_id          (uid, gid) for unmapped tenants when the service runs as root (nobody:nogroup).
    max_processes       processes per job rank (default and maximum of the spec's limits.processes):
                        a pids cgroup where the host allows, else RLIMIT_NPROC.
    max_open_files      RLIMIT_NOFILE.
    max_memory_bytes    memory per job rank (default and maximum of limits.memory; None: unlimited): a
                        memory cgroup where the host allows, else RLIMIT_AS per process.
    max_cpus            CPU cores per job rank (default and maximum of limits.cpus; None: unlimited): a
                        CFS quota (cpu cgroup) where the host allows; else only ``nice``.
    max_file_bytes      RLIMIT_FSIZE: the largest file a job may write (bounds scratch files).
    tmp_bytes           size of the job's private /tmp (tmpfs; default and maximum of limits.scratch).
    log_max_bytes       per rank: the first half and the last half of the output are kept, with a marker.
    nice                CPU share: the job's processes run at this nice value.
    cpu_weight          a job rank's CPU weight, all its processes together (cpu cgroup where allowed), in
                        nice-0 processes: 0.25 = a quarter of one service process. Not a cap. None: nice only.
    cgroups             use cgroups for the limits where the host allows (root service, writable cgroupfs).
    dev_root            where device nodes are looked up ("/dev"; tests use a directory of stand-ins).
    network             True: every job shares the host network; False (default): jobs get none (their
                        own empty network namespace), except those listed in ``network_for``.
    network_for         tenant ids (and ``grant:<id>`` for one grant of a program) whose jobs share the
                        host network (reach the API with their job token, and their gang peers).
    bwrap               the bubblewrap binary.
    podman              the podman binary (jobs with an ``image``: executors/sandbox_image.py).
    """

    enabled: bool = True
    allow_unsandboxed: bool = False
    protect: tuple[str, ...] = ()
    job_roots: tuple[str, ...] = ()
    volumes: Mapping[str, tuple[Volume, ...]] = field(default_factory=dict)
    tenant_ids: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    default_id: tuple[int, int] = (65534, 65534)
    max_processes: int = 2048
    max_open_files: int = 4096
    max_memory_bytes: int | None = None
    max_cpus: float | None = None
    max_file_bytes: int | None = 64 * 1024**3
    tmp_bytes: int = 1024**3
    log_max_bytes: int = 8 * 1024**2
    nice: int = 5
    cpu_weight: float | None = 0.25
    cgroups: bool = True
    dev_root: str = "/dev"
    network: bool = False
    network_for: tuple[str, ...] = ()
    bwrap: str = "bwrap"
    podman: str = "podman"

    def __post_init__(self) -> None:
        if self.cpu_weight is not None and not 0 < float(self.cpu_weight) <= 100:
            raise ValueError(f"cpu_weight must be above 0 and at most 100, not {self.cpu_weight!r}")

    def networked(self, tenant: str, grant: str | None = None) -> bool:
        """Does this job share the host network (operator grant), or get none?"""
        return (
            self.network
            or tenant in self.network_for
            or (grant is not None and f"grant:{grant}" in self.network_for)
        )

    def with_protect(self, *paths: str | os.PathLike[str]) -> SandboxConfig:
        from dataclasses import replace

        extra = tuple(os.path.realpath(p) for p in paths if p)
        return replace(self, protect=tuple(dict.fromkeys(self.protect + extra)))

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["volumes"] = {t: [[v.path, v.mode] for v in vs] for t, vs in self.volumes.items()}
        d["tenant_ids"] = {t: list(ids) for t, ids in self.tenant_ids.items()}
        d["protect"], d["job_roots"] = list(self.protect), list(self.job_roots)
        d["default_id"] = list(self.default_id)
        d["network_for"] = list(self.network_for)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SandboxConfig:
        d = dict(d)
        d["volumes"] = {t: tuple(Volume(p, m) for p, m in vs) for t, vs in (d.get("volumes") or {}).items()}
        d["tenant_ids"] = {t: (int(u), int(g)) for t, (u, g) in (d.get("tenant_ids") or {}).items()}
        d["protect"], d["job_roots"] = tuple(d.get("protect") or ()), tuple(d.get("job_roots") or ())
        d["default_id"] = tuple(d.get("default_id") or (65534, 65534))
        d["network_for"] = tuple(d.get("network_for") or ())
        return cls(**d)


def bwrap_path(config: SandboxConfig) -> str | None:
    return shutil.which(config.bwrap)


def check(config: SandboxConfig) -> str | None:
    """None when jobs can run as configured; else the reason the executor must refuse to run tenant jobs.

    With the sandbox enabled this runs a tiny sandbox once (as the uid jobs would run as), so a kernel that
    forbids user namespaces is found at start-up, not at the first job."""
    if not config.enabled:
        if config.allow_unsandboxed:
            return None
        return (
            "the job sandbox is disabled; pass allow_unsandboxed (--allow-unsandboxed) to run jobs without it"
        )
    exe = bwrap_path(config)
    if exe is None:
        if config.allow_unsandboxed:
            return None
        return (
            f"bubblewrap ('{config.bwrap}') is not installed, so tenant jobs cannot be sandboxed. Install it "
            "(Debian/Ubuntu: apt-get install bubblewrap; scripts/setup.sh does this when run as root), or "
            "start with --allow-unsandboxed on a single-user machine where every job is trusted"
        )
    uid, gid = run_ids(config, "")
    argv = [
        exe,
        "--unshare-pid",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
    if uid is None:
        argv += ["--unshare-user", "--disable-userns", "--", "/bin/true"]
    else:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return "setpriv (util-linux) is missing: a root service needs it to run jobs as tenant uids"
        argv += [
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--",
            setpriv,
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
            "/bin/true",
        ]
    try:
        r = subprocess.run(argv, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not run a test sandbox: {exc}"
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip()
        return (
            f"bubblewrap could not run a test sandbox as uid {uid if uid is not None else os.getuid()}: {err} "
            "(unprivileged user namespaces may be disabled: sysctl kernel.unprivileged_userns_clone=1)"
        )
    return None


def sandboxed(config: SandboxConfig) -> bool:
    return config.enabled and bwrap_path(config) is not None


def run_ids(config: SandboxConfig, tenant: str) -> tuple[int | None, int | None]:
    """(uid, gid) to switch to before bwrap: the tenant's mapping when the service is root; else None."""
    if os.geteuid() != 0:
        return None, None
    uid, gid = config.tenant_ids.get(tenant, config.default_id)
    return int(uid), int(gid)


def device_nodes(config: SandboxConfig, visible_env: str, indices: Sequence[int]) -> list[str]:
    """Existing device nodes (relative to the device root) of these device indices, plus the family's
    shared control nodes. Unknown families get none."""
    per, shared = DEVICE_NODES.get(visible_env, ((), ()))
    root = config.dev_root.rstrip("/") or "/"
    out: list[str] = []
    pats = [p.format(i=i) for i in indices for p in per] + list(shared)
    for pat in pats:
        for hit in sorted(glob.glob(os.path.join(root, pat))):
            rel = os.path.relpath(hit, root)
            if rel not in out:
                out.append(rel)
    return out


def check_writable(path: str, config: SandboxConfig, what: str) -> str:
    """The real path of a directory the job may write (work dir, checkpoint dir), or SandboxError
    (``sandbox_paths.writable``)."""
    try:
        return str(_shipped("sandbox_paths").writable(path, config.protect, what, config.job_roots))
    except ValueError as exc:
        raise SandboxError(str(exc)) from None


def effective_limits(config: SandboxConfig, asked: Mapping[str, float] | None) -> dict[str, float]:
    """The job's limits: the spec's ``limits`` (memory, processes, cpus, scratch), each at most the
    operator's maximum (SandboxError naming the field otherwise), else the operator's default."""
    asked = dict(asked or {})
    ceilings = {"memory": config.max_memory_bytes, "processes": config.max_processes, "cpus": config.max_cpus}
    ceilings["scratch"] = config.tmp_bytes
    out: dict[str, float] = {}
    for key, ceiling in ceilings.items():
        v = asked.get(key)
        if v is not None and ceiling is not None and float(v) > float(ceiling):
            num = [f"{int(x):,}" if float(x).is_integer() else f"{x:g}" for x in (v, ceiling)]  # not 1e+06
            raise SandboxError(f"limits.{key} = {num[0]} is above the operator's maximum ({num[1]})")
        value = v if v is not None else ceiling
        if value is not None:
            out[key] = float(value)
    return out


def plan(
    config: SandboxConfig,
    *,
    command: str,
    env: Mapping[str, str],
    tenant: str,
    work_dir: str,
    checkpoint_dir: str | None,
    workdir: str | None,
    devices: Sequence[str],
    shell: str = "/bin/sh",
    log_path: str,
    exit_path: str,
    max_run_seconds: float | None = None,
    grace_seconds: float = 30.0,
    gate: str | None = None,
    die_with_parent: bool = False,
    image: str | None = None,
    limits: Mapping[str, float] | None = None,
    grant: str | None = None,
    name: str = "job",
) -> dict[str, Any]:
    """The wrapper's plan for one rank (see sandbox_wrapper.WRAPPER). ``work_dir`` is the job's private
    writable dir (HOME, progress file); ``devices`` are device node names relative to ``config.dev_root``;
    ``image``: run in that OCI image with podman (executors/sandbox_image.py; asks podman whether the
    image is on this node); ``limits``: the spec's (see effective_limits); ``name``: unique per rank (the
    container's name)."""
    use_bwrap = config.enabled and bwrap_path(config) is not None
    if image is not None and not config.enabled:
        raise SandboxError(f"image '{image}': jobs with an 'image' need the sandbox, which is disabled")
    if not use_bwrap and image is None and not config.allow_unsandboxed:
        raise SandboxError(check(config) or "the job sandbox is not available")
    lim = effective_limits(config, limits)
    uid, gid = run_ids(config, tenant)
    veil = _shipped("sandbox_paths").veiled(config.protect, uid)  # each an empty tmpfs in the sandbox
    full_env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    if image is not None:
        full_env["PATH"] = SAFE_PATH
    elif use_bwrap:
        hidden = (*veil, *SANDBOX_TMPFS)  # empty inside the sandbox
        full_env["PATH"] = _shipped("sandbox_paths").job_path(
            os.environ.get("PATH"), uid, gid, hidden, SAFE_PATH
        )
    else:
        full_env["PATH"] = os.environ.get("PATH", SAFE_PATH)
    full_env.update(env)
    senv = _shipped("sandbox_env")
    if "\0" in command or any("\0" in k or "\0" in v for k, v in full_env.items()):
        raise SandboxError("embedded null byte in the command or the environment")
    ckpt = check_writable(checkpoint_dir, config, "checkpoint_dir") if checkpoint_dir else None
    cwd = check_writable(workdir, config, "workdir") if workdir else None
    if cwd is not None and not os.path.isdir(cwd):
        raise SandboxError(f"workdir '{workdir}' does not exist or is not a directory")
    paths = _shipped("sandbox_paths")
    why = (
        paths.owner_error(ckpt, uid, "checkpoint_dir", checkpoint_dir, config.job_roots)
        if ckpt is not None
        else None
    )
    if why is not None:
        raise SandboxError(why)
    confined = use_bwrap or image is not None
    home = SANDBOX_WORK if confined else work_dir
    full_env["HOME"] = home
    full_env.setdefault("TMPDIR", "/tmp")
    if "ACCELPOOL_PROGRESS_FILE" in full_env:
        full_env["ACCELPOOL_PROGRESS_FILE"] = os.path.join(home, PROGRESS_FILE)
    root = config.dev_root.rstrip("/") or "/"
    volumes: list[list[str]] = []
    for v in list(config.volumes.get("*", ())) + list(config.volumes.get(tenant, ())):
        real = os.path.realpath(v.path)
        if os.path.exists(real):
            volumes.append([real, v.path, v.mode])
    binds: list[list[str]] = []  # the job's own dirs (the work dir is bound separately)
    if ckpt is not None:
        binds.append([ckpt, ckpt, "rw"])
        if checkpoint_dir and checkpoint_dir != ckpt:
            full_env["ACCELPOOL_CHECKPOINT_DIR"] = ckpt
    if cwd is not None and cwd != ckpt:
        own = paths.may_bind_writable(cwd, uid, gid, config.job_roots)
        binds.append([cwd, cwd, "rw" if own else "ro"])  # read-only where the job's uid may not write
    networked = config.networked(tenant, grant)
    tail: list[str] = []
    env_text: str | None = None
    container: dict[str, Any] | None = None
    if image is not None:
        broken = [k for k, v in full_env.items() if "\n" in v or "\r" in v]
        if broken:  # podman's env file holds one variable a line
            raise SandboxError(f"image '{image}': {broken[0]} has a line break, which podman cannot pass")
        im = _shipped("sandbox_image")
        try:
            exe = im.check_image(config.podman, image)
        except im.ImageError as exc:
            raise SandboxError(str(exc)) from None
        cid = "accelpool-" + "".join(c if c.isalnum() or c in "_.-" else "_" for c in name)
        env_file = exit_path + ".env"
        head = im.podman_argv(
            exe,
            image=image,
            name=cid,
            env_file=env_file,
            uid=uid if uid is not None else 65534,
            gid=gid if gid is not None else 65534,
            work_dir=work_dir,
            work_dest=SANDBOX_WORK,
            binds=volumes + binds,
            devices=[(os.path.join(root, rel), os.path.join("/dev", rel)) for rel in devices],
            network=networked,
            limits=lim,
            max_open_files=config.max_open_files,
            scratch_bytes=int(lim.get("scratch", config.tmp_bytes)),
            cwd=cwd or SANDBOX_WORK,
            shell=shell,
            command=senv.JOB_INIT,
            args=("accelpool-job", command, shell, "/bin/sleep", "forward"),
        )
        container = {"name": cid, "podman": exe, "global": list(im.PODMAN_GLOBAL), "env_file": env_file}
    elif not use_bwrap:
        head = [shell, "-c", command]
    else:
        head = [
            bwrap_path(config) or config.bwrap,
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "job",
            "--ro-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ]
        if not networked:
            head += ["--unshare-net"]  # its own network namespace: loopback only, nothing of the host's
        if uid is None:
            # an unprivileged service: an unprivileged uid inside a user namespace of the job's own
            head += ["--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534"]
            run_as: list[str] = []
        else:
            # a root service: bwrap sets up the mounts as root (so it can bind the job's dirs wherever they
            # are), then setpriv drops to the tenant's uid/gid for good (no capabilities, no_new_privs)
            head += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            run_as = [
                shutil.which("setpriv") or "/usr/bin/setpriv",
                f"--reuid={uid}",
                f"--regid={gid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--no-new-privs",
                "--",
            ]
        for p in veil:
            if os.path.isdir(p):
                head += ["--tmpfs", p]
            elif os.path.exists(p):
                head += ["--ro-bind", "/dev/null", p]
        size = str(int(lim.get("scratch", config.tmp_bytes)))
        for t in SANDBOX_TMPFS:  # private, size-limited, writable by the job (sticky)
            head += ["--perms", "1777", "--size", size, "--tmpfs", t]
        for rel in devices:
            head += ["--dev-bind", os.path.join(root, rel), os.path.join("/dev", rel)]
        binds = volumes + [[work_dir, SANDBOX_WORK, "rw"]] + binds
        # bwrap would create the mount points' missing parents with the host dirs' modes (often 0700, so
        # the job's uid could not reach its own dirs): create the ones inside our tmpfs mounts as 0755
        tmpfs_roots = ["/tmp", "/var/tmp"] + [p for p in veil if os.path.isdir(p)]
        made: list[str] = []
        for _src, dest, _mode in binds:
            parent = os.path.dirname(dest)
            chain = []
            while parent not in ("/", "") and not any(parent == r for r in tmpfs_roots):
                chain.append(parent)
                parent = os.path.dirname(parent)
            if parent in tmpfs_roots:
                for d in reversed(chain):
                    if d not in made:
                        made.append(d)
                        head += ["--perms", "0755", "--dir", d]
        for src, dest, mode in binds:
            head += ["--bind" if mode == "rw" else "--ro-bind", src, dest]
        sleep = shutil.which("sleep") or "/bin/sleep"
        # the job's environment reaches only the tenant's processes: bwrap and setpriv start with PATH alone
        # (sandbox_env), the launcher binds the script at ENV_FILE and JOB_INIT exports it
        try:
            env_text = senv.env_script(full_env)
        except ValueError as exc:
            raise SandboxError(str(exc)) from None
        job = [shell, "-c", senv.JOB_INIT, "accelpool-job", command, shell, sleep, "", senv.ENV_FILE]
        tail = ["--chdir", cwd or SANDBOX_WORK, "--", *run_as, *job]
    limits_rl: dict[str, int] = {"NOFILE": config.max_open_files, "CORE": 0}
    if config.max_file_bytes:
        limits_rl["FSIZE"] = int(config.max_file_bytes)
    # used where the wrapper cannot set up the cgroup of the same limit
    fallback: dict[str, int] = {"NPROC": int(lim["processes"])} if "processes" in lim else {}
    if "memory" in lim:
        fallback["AS"] = int(lim["memory"])
    cgroup = {str(k): lim[k] for k in ("memory", "processes", "cpus") if k in lim} if config.cgroups else {}
    if config.cgroups and config.cpu_weight is not None:  # a tenant's process storm weighs as one
        cgroup["cpu_weight"] = float(config.cpu_weight)
    return {
        "argv": head,
        "argv_tail": tail,
        "env": {"PATH": SAFE_PATH} if env_text is not None else full_env,  # the first process's
        "env_script": env_text,  # bwrap: the job's environment, for the launcher to bind at ENV_FILE
        "env_file": senv.ENV_FILE,
        "cwd": "/" if confined else (cwd or work_dir),
        "uid": uid,
        "gid": gid,
        "limits": limits_rl if use_bwrap and image is None else {"CORE": 0},
        "fallback_limits": fallback if use_bwrap and image is None else {},
        "cgroup": cgroup if use_bwrap and image is None else {},
        "limits_asked": {k: v for k, v in (limits or {}).items() if v is not None},
        "effective": lim,
        "container": container,
        "scratch_path": "/tmp" if confined else None,
        "network": networked,
        "nice": config.nice,
        "sandboxed": confined,
        "log": log_path,
        "log_max": int(config.log_max_bytes),
        "exit": exit_path,
        "deadline_seconds": max_run_seconds,
        "grace": float(grace_seconds),
        "gate": gate,
        "die_with_parent": die_with_parent,
        "chown": [os.path.realpath(work_dir)] + ([ckpt] if ckpt else []),  # real paths (make_dirs)
    }


def prepare_dirs(p: Mapping[str, Any]) -> None:
    """Create the writable dirs of a plan (sandbox_paths.make_dirs: the job's uid's, 0700, never via a link)."""
    _shipped("sandbox_paths").make_dirs(p["chown"], p["uid"], p["gid"])


def is_limit_reason(reason: str) -> bool:
    """A wrapper's reason that says the job hit a limit (max_run_time, limits.*): the job's reason."""
    return reason.startswith(("max_run_time", "limit exceeded", "exit code"))


def read_exit(path: str) -> tuple[int, float | None, str] | None:
    """(exit code, exit time (epoch seconds), reason) recorded by the wrapper, or None."""
    try:
        with open(path) as f:
            parts = f.read().split(None, 2)
        code = int(parts[0])
    except (OSError, ValueError, IndexError):
        return None
    t: float | None = None
    try:
        t = float(parts[1])
    except (IndexError, ValueError):  # an older wrapper wrote no exit time: the caller uses its own clock
        pass
    return code, t, parts[2].strip() if len(parts) > 2 else ""


def read_log(path: str, tail_suffix: str = ".tail") -> str:
    """The log plus the bounded tails of ranks still running (``<log>.tail.<rank>``)."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        text = b""
    for tail in sorted(glob.glob(glob.escape(path) + tail_suffix + ".*")):
        try:
            with open(tail, "rb") as f:
                text += f.read()
        except OSError:  # the rank ended and its tail was merged into the log meanwhile
            pass
    return text.decode(errors="replace")
