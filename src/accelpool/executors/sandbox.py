"""The tenant boundary: every job's processes run inside a bubblewrap sandbox.

This module is standard-library only, so the RayExecutor can ship it by value to Ray nodes that have no
accelpool installed. It has three parts:

``SandboxConfig``   what the operator decides: tenant uid/gid mapping (when the service runs as root),
                    volumes per tenant, limits, protected paths, and whether running unsandboxed is allowed.
``plan(...)``       one job rank's launch plan (a JSON-able dict): the bwrap argv, the environment, the
                    uid/gid, the rlimits, the log bound and the run-time limit. Pure: no I/O except
                    ``os.path.realpath`` / ``glob`` on the paths it binds.
``WRAPPER``         a small Python program (run as ``python -I -S -c WRAPPER plan.json``) between the
                    executor and bwrap: it applies the rlimits and the uid, starts bwrap, keeps the log
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
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Variables a job may inherit from the service (nothing else is inherited: no tokens, no database URL,
# no VIRTUAL_ENV, no ACCELPOOL_* of the service).
INHERITED = ("LANG", "LC_ALL", "TZ")
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

_SYSTEM = (
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib64",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var",
)


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
    volumes             tenant id (or "*" for every tenant) -> volumes bound into its jobs.
    tenant_ids          tenant id -> (uid, gid) its jobs run as when the service runs as root (like Slurm:
                        each tenant its own account). Tenants not listed run as ``default_id``.
    default_id          (uid, gid) for unmapped tenants when the service runs as root (nobody:nogroup).
    max_processes       RLIMIT_NPROC, counted per job (each job has its own user namespace).
    max_open_files      RLIMIT_NOFILE.
    max_memory_bytes    RLIMIT_AS per process (None: unlimited).
    max_file_bytes      RLIMIT_FSIZE: the largest file a job may write (bounds scratch files).
    tmp_bytes           size of the job's private /tmp (tmpfs).
    log_max_bytes       per rank: the first half and the last half of the output are kept, with a marker.
    nice                CPU share: the job's processes run at this nice value.
    dev_root            where device nodes are looked up ("/dev"; tests use a directory of stand-ins).
    network             share the host network (True; jobs reach the API and their peers), or none.
    bwrap               the bubblewrap binary.
    """

    enabled: bool = True
    allow_unsandboxed: bool = False
    protect: tuple[str, ...] = ()
    volumes: Mapping[str, tuple[Volume, ...]] = field(default_factory=dict)
    tenant_ids: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    default_id: tuple[int, int] = (65534, 65534)
    max_processes: int = 2048
    max_open_files: int = 4096
    max_memory_bytes: int | None = None
    max_file_bytes: int | None = 64 * 1024**3
    tmp_bytes: int = 1024**3
    log_max_bytes: int = 8 * 1024**2
    nice: int = 5
    dev_root: str = "/dev"
    network: bool = True
    bwrap: str = "bwrap"

    def with_protect(self, *paths: str | os.PathLike[str]) -> SandboxConfig:
        from dataclasses import replace

        extra = tuple(os.path.realpath(p) for p in paths if p)
        return replace(self, protect=tuple(dict.fromkeys(self.protect + extra)))

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["volumes"] = {t: [[v.path, v.mode] for v in vs] for t, vs in self.volumes.items()}
        d["tenant_ids"] = {t: list(ids) for t, ids in self.tenant_ids.items()}
        d["protect"] = list(self.protect)
        d["default_id"] = list(self.default_id)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SandboxConfig:
        d = dict(d)
        d["volumes"] = {t: tuple(Volume(p, m) for p, m in vs) for t, vs in (d.get("volumes") or {}).items()}
        d["tenant_ids"] = {t: (int(u), int(g)) for t, (u, g) in (d.get("tenant_ids") or {}).items()}
        d["protect"] = tuple(d.get("protect") or ())
        d["default_id"] = tuple(d.get("default_id") or (65534, 65534))
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


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def check_writable(path: str, config: SandboxConfig, what: str) -> str:
    """The real path of a directory the job may write (work dir, checkpoint dir), or SandboxError.

    Symlinks are resolved first, so a link planted by an earlier job cannot point a later job's bind at
    the data dir or another job's files."""
    real = os.path.realpath(path)
    if real in _SYSTEM:
        raise SandboxError(f"{what} '{path}' resolves to the system directory '{real}'")
    for p in config.protect:
        if _inside(real, p) or _inside(p, real):
            raise SandboxError(f"{what} '{path}' resolves to '{real}', which jobs may not use")
    return real


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
) -> dict[str, Any]:
    """The wrapper's plan for one rank (see WRAPPER). ``work_dir`` is the job's private writable dir (HOME,
    progress file); ``devices`` are device node names relative to ``config.dev_root``."""
    use_bwrap = config.enabled and bwrap_path(config) is not None
    if not use_bwrap and not config.allow_unsandboxed:
        raise SandboxError(check(config) or "the job sandbox is not available")
    full_env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    full_env["PATH"] = os.environ.get("PATH", SAFE_PATH)
    full_env.update(env)
    uid, gid = run_ids(config, tenant)
    if "\0" in command or any("\0" in k or "\0" in v for k, v in full_env.items()):
        raise SandboxError("embedded null byte in the command or the environment")
    ckpt = check_writable(checkpoint_dir, config, "checkpoint_dir") if checkpoint_dir else None
    cwd = check_writable(workdir, config, "workdir") if workdir else None
    if cwd is not None and not os.path.isdir(cwd):
        raise SandboxError(f"workdir '{workdir}' does not exist or is not a directory")
    home = SANDBOX_WORK if use_bwrap else work_dir
    full_env["HOME"] = home
    full_env.setdefault("TMPDIR", "/tmp")
    if "ACCELPOOL_PROGRESS_FILE" in full_env:
        full_env["ACCELPOOL_PROGRESS_FILE"] = os.path.join(home, PROGRESS_FILE)
    binds: list[list[str]] = []
    tail: list[str] = []
    if not use_bwrap:
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
        if not config.network:
            head += ["--unshare-net"]
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
        for p in config.protect:
            if os.path.isdir(p):
                head += ["--tmpfs", p]
            elif os.path.exists(p):
                head += ["--ro-bind", "/dev/null", p]
        size = str(int(config.tmp_bytes))
        for t in ("/tmp", "/var/tmp", "/dev/shm"):  # private, size-limited, writable by the job (sticky)
            head += ["--perms", "1777", "--size", size, "--tmpfs", t]
        root = config.dev_root.rstrip("/") or "/"
        for rel in devices:
            head += ["--dev-bind", os.path.join(root, rel), os.path.join("/dev", rel)]
        for v in list(config.volumes.get("*", ())) + list(config.volumes.get(tenant, ())):
            real = os.path.realpath(v.path)
            if os.path.exists(real):
                binds.append([real, v.path, v.mode])
        binds.append([work_dir, SANDBOX_WORK, "rw"])
        if ckpt is not None:
            binds.append([ckpt, ckpt, "rw"])
            if checkpoint_dir and checkpoint_dir != ckpt:
                full_env["ACCELPOOL_CHECKPOINT_DIR"] = ckpt
        if cwd is not None and cwd != ckpt:
            binds.append([cwd, cwd, "rw" if os.access(cwd, os.W_OK) else "ro"])
        # bwrap would create the mount points' missing parents with the host dirs' modes (often 0700, so
        # the job's uid could not reach its own dirs): create the ones inside our tmpfs mounts as 0755
        tmpfs_roots = ["/tmp", "/var/tmp"] + [p for p in config.protect if os.path.isdir(p)]
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
        tail = ["--chdir", cwd or SANDBOX_WORK, "--", *run_as, shell, "-c", command]
    limits = {"NPROC": config.max_processes, "NOFILE": config.max_open_files, "CORE": 0}
    if config.max_memory_bytes:
        limits["AS"] = int(config.max_memory_bytes)
    if config.max_file_bytes:
        limits["FSIZE"] = int(config.max_file_bytes)
    return {
        "argv": head,
        "argv_tail": tail,
        "env": full_env,
        "cwd": "/" if use_bwrap else (cwd or work_dir),
        "uid": uid,
        "gid": gid,
        "limits": limits if use_bwrap else {"CORE": 0},
        "nice": config.nice,
        "sandboxed": use_bwrap,
        "log": log_path,
        "log_max": int(config.log_max_bytes),
        "exit": exit_path,
        "deadline_seconds": max_run_seconds,
        "grace": float(grace_seconds),
        "gate": gate,
        "die_with_parent": die_with_parent,
        "chown": [work_dir] + ([ckpt] if ckpt else []),
    }


def prepare_dirs(p: Mapping[str, Any]) -> None:
    """Create the writable dirs of a plan; owned by the job's uid when the service switches uids."""
    for d in p["chown"]:
        created = not os.path.isdir(d)
        os.makedirs(d, exist_ok=True)
        if p["uid"] is not None and (created or d == p["chown"][0]):
            try:
                os.chown(d, p["uid"], p["gid"])
            except OSError:
                pass


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
    except (IndexError, ValueError):
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
        except OSError:
            pass
    return text.decode(errors="replace")


# The wrapper: python -I -S -c WRAPPER plan.json. Started in its own session by the executor; stays the
# parent of bwrap. Exit file: "<code> <epoch seconds> <reason>", written atomically.
WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, threading, time
plan = json.load(open(sys.argv[1]))
parent = os.getppid()
if plan.get("die_with_parent"):
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception as exc:
        sys.stderr.write("accelpool wrapper: PR_SET_PDEATHSIG failed: %r\n" % (exc,))
    if os.getppid() != parent:
        sys.exit(0)
gate = plan.get("gate")
while gate and not os.path.exists(gate):
    if os.getppid() != parent:
        sys.exit(0)  # the executor died before it recorded the job: run nothing
    time.sleep(0.005)
state = {"reason": "", "child": None, "term_at": None}
lock = threading.Lock()

def ns_pids():
    child = state["child"]
    if child is None:
        return []
    try:
        ns = os.readlink("/proc/%d/ns/pid" % child)
    except OSError:
        return []
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != child:
            try:
                if os.readlink("/proc/%s/ns/pid" % d) == ns:
                    out.append(int(d))
            except OSError:
                pass
    return out

def terminate(reason):
    with lock:
        if state["term_at"] is not None:
            return
        state["term_at"] = time.time()
        state["reason"] = state["reason"] or reason
    if plan["sandboxed"]:
        for pid in ns_pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
    else:
        try:
            os.killpg(0, signal.SIGTERM)  # unsandboxed: the command shares this process group
        except OSError:
            pass
    t = threading.Timer(max(0.0, plan["grace"]), kill)
    t.daemon = True
    t.start()

def kill():
    try:
        if plan["sandboxed"]:
            p.kill()  # bwrap dies; its reaper (pid 1 of the sandbox) dies with it and takes every process
        else:
            os.killpg(0, signal.SIGKILL)
    except OSError:
        pass

signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=terminate, args=("stopped",)).start())

def pre():
    for name, value in plan["limits"].items():
        lim = getattr(resource, "RLIMIT_" + name)
        soft, hard = resource.getrlimit(lim)
        v = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(lim, (v, v))
    if plan.get("nice"):
        os.nice(plan["nice"])

argv = list(plan["argv"])
info_r = info_w = None
fds = []
if plan["sandboxed"]:
    info_r, info_w = os.pipe()
    fds.append(info_w)
    argv = argv[:1] + ["--info-fd", str(info_w)] + argv[1:]
try:
    argv += plan["argv_tail"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=plan["env"], cwd=plan["cwd"], preexec_fn=pre, pass_fds=tuple(fds))
except OSError as exc:
    with open(plan["log"], "ab") as f:
        f.write(("accelpool: could not start the job: %s\n" % exc).encode())
    code, p = 127, None
for fd in fds:
    os.close(fd)
if p is not None and info_r is not None:
    def read_info():
        data = b""
        while True:
            chunk = os.read(info_r, 4096)
            if not chunk:
                break
            data += chunk
            try:
                state["child"] = int(json.loads(data.decode())["child-pid"])
                break
            except ValueError:
                continue
        os.close(info_r)
    threading.Thread(target=read_info, daemon=True).start()
if p is not None and plan.get("parent_fd") is not None:
    # Ray: the actor holds the write end; EOF means the actor is gone (killed, node lost): kill the sandbox
    def watch_parent():
        try:
            while os.read(plan["parent_fd"], 1):
                pass
        except OSError:
            pass
        state["reason"] = state["reason"] or "lost: the job's actor died"
        kill()
    threading.Thread(target=watch_parent, daemon=True).start()
if p is not None and plan.get("deadline_seconds"):
    def deadline():
        terminate("max_run_time exceeded (%g s)" % plan["deadline_seconds"])
    dt = threading.Timer(float(plan["deadline_seconds"]), deadline)
    dt.daemon = True
    dt.start()

limit = max(1024, int(plan["log_max"]))
half = limit // 2
tail_path = plan["log"] + ".tail." + os.path.basename(plan["exit"]).split(".")[-1]
written = 0
dropped = 0
tail = bytearray()
last_flush = 0.0

def flush_tail(final):
    if final:
        try:
            os.unlink(tail_path)
        except OSError:
            pass
        return
    tmp = tail_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(marker() + bytes(tail))
    os.replace(tmp, tail_path)

def marker():
    return ("\n[accelpool: %d bytes of output omitted; the first %d and the last %d bytes are kept]\n"
            % (dropped, half, len(tail))).encode()

if p is not None:
    out = open(plan["log"], "ab", buffering=0)
    fd = p.stdout.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        if written < half:
            head = chunk[: half - written]
            out.write(head)
            written += len(head)
            chunk = chunk[len(head):]
        if chunk:
            tail += chunk
            if len(tail) > half:
                dropped += len(tail) - half
                del tail[: len(tail) - half]
            now = time.monotonic()
            if now - last_flush > 1.0:
                last_flush = now
                flush_tail(False)
    while True:
        try:
            code = p.wait()
            break
        except InterruptedError:
            continue
    if tail:
        out.write((marker() if dropped else b"") + bytes(tail))
    out.close()
    flush_tail(True)
    if plan["sandboxed"] and code > 128:
        code = -(code - 128)  # bwrap reports a command killed by signal N as 128+N
reason = state["reason"]
if reason.startswith("max_run_time") and code == 0:
    code = -signal.SIGTERM
tmp = plan["exit"] + ".tmp"
with open(tmp, "w") as f:
    f.write("%d %.6f %s" % (code, time.time(), reason))
os.replace(tmp, plan["exit"])
sys.exit(code if code >= 0 else 128 - code)
"""
