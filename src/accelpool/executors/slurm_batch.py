"""What the Slurm executor submits: the batch script, the per-rank wrapper it runs on each node, and the
``sbatch`` arguments of a placement (executors/slurm.py submits them).

A placement becomes one Slurm job pinned to its nodes (``--nodelist``) with ``--gres=<name>:<type>:<n>`` per
node and one task per node (rank); a placement whose nodes hold different device counts becomes a
heterogeneous job (one component per node). The batch script runs ``srun --kill-on-bad-exit=1`` (one rank
failing ends the gang); each rank sets the same ACCELPOOL_* variables as the other executors
(executors/env.py) and the type's visible-devices variable (CUDA_VISIBLE_DEVICES, FURIOSA_DEVICES,
RBLN_DEVICES, ...) to the indices *Slurm* allocated on its node (from CUDA_VISIBLE_DEVICES for ``gpu``
GRES, else from ``scontrol -d show job``): Slurm, not accelpool, picks the indices on a node. The payload (each rank's environment, the command, the GRES
name, the visible-devices variable) travels base64-encoded in the script; each rank picks its own entry by
``SLURMD_NODENAME`` and sets the visible-devices variable to the indices Slurm allocated on its node.

A job's limits (``slurm_limits``): ``limits.memory`` -> ``--mem`` (per node: one rank per node),
``limits.cpus`` -> ``--cpus-per-task``, ``max_run_time`` -> ``--time`` (Slurm counts whole minutes: rounded
up), each at most the operator's sandbox maximum and defaulting to it, as on the other executors. Slurm
enforces them as the site's Slurm is configured to (memory and cores with its cgroup task plugin; time
always). In the sandbox each rank also gets the sandbox wrapper's rlimits (open files, core dumps, file
size, ``limits.processes`` as RLIMIT_NPROC, and ``limits.memory`` as RLIMIT_AS unless the site's Slurm
constrains memory itself) and a private ``/tmp`` of ``limits.scratch``. Jobs with an ``image`` are refused
at start (the job fails with the reason): the rank cannot hand podman the devices Slurm picks on the node.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from accelpool.core.types import AcceleratorType
from accelpool.executors import sandbox as sb
from accelpool.executors.env import ExtraEnv, job_env, visible_devices_env
from accelpool.executors.sandbox_pidns import PIDNS
from accelpool.ports import Launch

# The batch script's body (after the payload line): run one rank per node with srun and end as srun did
# (its exit code, or the signal that killed it), after recording both with the start and end times in the
# job's exit record on the shared state dir (``exit_record``), where the control plane reads the end of a job
# Slurm has purged meanwhile (MinJobAge: a control plane down longer than that used to call it lost and
# run it again). A batch script killed itself (a cancel) records nothing: the job is lost, as before.
_BATCH = r"""
import os, signal, subprocess, sys, time
started = time.time()
argv = ["srun", "--kill-on-bad-exit=1", "--unbuffered"]
if P["het"] > 1:
    argv.append("--het-group=0-%d" % (P["het"] - 1))
else:
    argv += ["--ntasks-per-node=1", "--ntasks=%d" % P["nodes"]]
os.environ["ACCELPOOL_SLURM_PAYLOAD"] = PAYLOAD
code = subprocess.call(argv + [P["python"], "-c", P["rank"]])
rec = P.get("exit_record")
if rec:
    try:
        with open(rec + ".tmp", "w") as f:
            f.write("%d %.3f %.3f\n" % (code, time.time(), started))
        os.replace(rec + ".tmp", rec)
    except OSError as exc:
        sys.stderr.write("accelpool: could not record the job's end: %r\n" % (exc,))
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""

# One rank: find this node's environment in the payload and the devices Slurm gave it, then run the command.
_RANK = r"""
import base64, json, os, re, subprocess, sys
P = json.loads(base64.b64decode(os.environ.pop("ACCELPOOL_SLURM_PAYLOAD")))
me = os.environ.get("SLURMD_NODENAME", "")
ranks = P["ranks"]
r = ranks.get(me)
if r is None:
    sys.stderr.write("accelpool: node %s is not in this job's placement %s\n" % (me, sorted(ranks)))
    sys.exit(97)
env = dict(os.environ)
env.update(r["env"])
def expand(s):
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += range(int(a), int(b) + 1)
        elif part:
            out.append(int(part))
    return out
idx = None
if P["gres"] == "gpu":
    v = os.environ.get("SLURM_STEP_GPUS") or os.environ.get("SLURM_JOB_GPUS") or os.environ.get("CUDA_VISIBLE_DEVICES")
    if v:
        idx = v
if idx is None:
    jid = os.environ.get("SLURM_JOB_ID", "")
    try:
        text = subprocess.run(["scontrol", "-d", "-o", "show", "job", jid], capture_output=True, text=True, timeout=30).stdout
        for m in re.finditer(r"Nodes=(\S+) CPU_IDs=\S+ Mem=\S+ GRES=(\S+)", text):
            hosts = subprocess.run(["scontrol", "show", "hostnames", m.group(1)], capture_output=True, text=True, timeout=30).stdout.split()
            if me in hosts:
                g = re.search(r"\(IDX:([0-9,\-]+)\)", m.group(2))
                if g:
                    idx = ",".join(str(i) for i in expand(g.group(1)))
    except Exception as exc:
        sys.stderr.write("accelpool: could not read the devices Slurm allocated: %r\n" % (exc,))
if idx is not None:
    env[P["visible"]] = idx
    env["ACCELPOOL_SLURM_DEVICES"] = idx
box = r.get("sandbox")
if box and box.get("rlimits"):  # the sandbox wrapper's limits, set before bwrap so the job inherits them
    import resource
    for name, value in box["rlimits"].items():
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), (int(value), int(value)))
if box:  # the job sandbox (executors/sandbox.py slurm_rank): bwrap with this node's device nodes
    import glob
    argv = list(box["argv"])
    benv = dict(box["env"])  # bwrap's own: PATH alone; the job's goes to the job alone (sandbox_env.py)
    jenv = {k: v for k, v in os.environ.items() if k.startswith("SLURM")}
    seen = []
    pats = [q.format(i=i) for i in (expand(idx) if idx else []) for q in box["per_device"]] + box["shared"]
    for pat in pats:
        for hit in sorted(glob.glob(os.path.join(box["dev_root"], pat))):
            rel = os.path.relpath(hit, box["dev_root"])
            if rel not in seen:
                seen.append(rel)
                argv += ["--dev-bind", hit, os.path.join("/dev", rel)]
    if idx is not None:
        jenv[P["visible"]] = idx
        jenv["ACCELPOOL_SLURM_DEVICES"] = idx
    fds = ()
    if box.get("env_script") is None:
        benv.update(jenv)
    else:
        text = box["env_script"] + "".join("export %s='%s'\n" % (k, v.replace("'", "'\\''"))
                                           for k, v in jenv.items() if re.match(r"[A-Za-z_][A-Za-z0-9_]*\Z", k))
        fd = os.memfd_create("accelpool-env", 0)
        data = text.encode("utf-8", "surrogateescape")
        while data:
            data = data[os.write(fd, data):]
        os.lseek(fd, 0, 0)
        fds = (fd,)
        argv += ["--perms", "0444", "--ro-bind-data", str(fd), box["env_file"]]
    if box.get("deadline"):
        run_until(argv + box["tail"], benv, float(box["deadline"]), float(box["grace"]), box["reason_file"], fds)
    os.execvpe(argv[0], argv + box["tail"], benv)
os.execvpe(P["shell"], [P["shell"], "-c", P["command"]], env)
"""

# max_run_time to the second (Slurm's --time counts whole minutes): the rank stays the parent of bwrap; at
# the deadline it sends SIGTERM to every process of the sandbox (not its reaper, pid 1), kills bwrap after
# the grace period (--die-with-parent: the sandbox's pid namespace dies with it), records the reason for
# the executor (a file next to the job's work dir, where the job cannot write) and ends as bwrap did.
_RUN_UNTIL = r"""
def run_until(argv, env, seconds, grace, reason_file, fds=()):
    import signal, threading, time
    signal.signal(signal.SIGTERM, lambda *_: None)  # scancel signals the job's processes itself
    p = subprocess.Popen(argv, env=env, pass_fds=fds)
    def sandbox_pids():
        try:
            kids = open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()
        except OSError:
            return []
        return pidns_members(kids[0]) if kids else []  # bwrap's child: the namespace's reaper (PIDNS)
    def expire():
        with open(reason_file + ".tmp." + me, "w") as f:
            f.write("max_run_time exceeded (%g s)" % seconds)
        os.replace(reason_file + ".tmp." + me, reason_file)
        sys.stderr.write("accelpool: max_run_time exceeded (%g s)\n" % seconds)
        for pid in sandbox_pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        time.sleep(grace)
        p.kill()
    t = threading.Timer(seconds, expire)
    t.daemon = True
    t.start()
    code = p.wait()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)
"""

Share = tuple[str, str, str, tuple[int, ...]]
"""One node's share of a placement: (Slurm node, GRES name, GRES type, device indices)."""


def launch_payload(
    launch: Launch,
    shares: Sequence[Share],
    *,
    catalog: Mapping[str, AcceleratorType],
    extra_env: ExtraEnv | None,
    progress_file: str,
    shell: str,
    python: str,
) -> dict[str, object]:
    """What the batch script carries: each rank's ACCELPOOL_* environment (as the other executors set it,
    executors/env.py) by Slurm node, the GRES name, the visible-devices variable of the type, the command."""
    ranks: dict[str, dict[str, object]] = {}
    for rank, (node, _g, _t, devices) in enumerate(shares):
        env = job_env(
            launch,
            node=launch.placement.devices[rank][0],
            rank=rank,
            num_nodes=len(shares),
            catalog=catalog,
            base={},
            devices=None,
            progress_file=progress_file,
            extra_env=extra_env,
        )
        env["ACCELPOOL_SLURM_NODE"] = node
        ranks[node] = {"env": env, "devices": list(devices)}
    return {
        "ranks": ranks,
        "gres": shares[0][1],
        "visible": visible_devices_env(catalog, launch.placement.accelerator),
        "shell": shell,
        "command": launch.run.command,
        "python": python,
        "nodes": len(shares),
        "het": len(shares) if is_heterogeneous(shares) else 1,
        "exit_record": exit_record(progress_file),
    }


def exit_record(progress_file: str) -> str:
    """Where the batch script records how the job ended (next to its progress file, on the shared state
    dir, out of every job's sandbox): ``<exit code> <end> <start>`` (epoch seconds)."""
    return progress_file + ".exit"


def batch_script(payload: Mapping[str, object], python: str) -> str:
    """The batch script: the payload (with the rank wrapper added) and the srun launcher."""
    blob = base64.b64encode(json.dumps({**payload, "rank": PIDNS + _RUN_UNTIL + _RANK}).encode()).decode()
    return (
        f"#!/usr/bin/env {python}\n"
        f"import base64, json\nPAYLOAD = {blob!r}\nP = json.loads(base64.b64decode(PAYLOAD))\n{_BATCH}"
    )


def is_heterogeneous(shares: Sequence[Share]) -> bool:
    """Whether the nodes hold different device counts (then: one heterogeneous component per node)."""
    return len({len(ds) for *_x, ds in shares}) > 1


def sbatch_args(shares: Sequence[Share], common: Sequence[str]) -> list[str]:
    """``sbatch`` arguments for a placement's ``shares`` with the options ``common`` to every component."""
    args = ["sbatch", "--parsable"]
    if not is_heterogeneous(shares):
        n = len(shares[0][3])
        args += [
            *common,
            f"--nodes={len(shares)}",
            f"--ntasks={len(shares)}",
            f"--nodelist={','.join(sh[0] for sh in shares)}",
        ]
        if n > 0:
            args.append(f"--gres={shares[0][1]}:{shares[0][2]}:{n}")
        return args
    for i, (node, g, t, ds) in enumerate(shares):
        if i:
            args.append(":")
        args += [*common, "--nodes=1", "--ntasks=1", f"--nodelist={node}", f"--gres={g}:{t}:{len(ds)}"]
    return args


def slurm_rank(
    config: sb.SandboxConfig,
    *,
    command: str,
    env: Mapping[str, str],
    tenant: str,
    grant: str | None,
    work_dir: str,
    checkpoint_dir: str | None,
    workdir: str | None,
    visible_env: str,
    shell: str = "/bin/sh",
    limits: Mapping[str, float] | None = None,
    ram_constrained: bool = False,
) -> dict[str, Any]:
    """For the SlurmExecutor: one rank's bwrap argv, split where its device binds go (the devices are known
    only on the node, from Slurm), its allow-listed environment and the device patterns of its family. The
    Slurm step execs it (executors/slurm_batch.py): Slurm keeps its own process tracking and cgroups; the
    sandbox adds the filesystem, pid namespace, environment, network and uid rules, ``rlimits`` (the
    wrapper's, with the job's ``limits``: RLIMIT_AS for memory only when Slurm does not constrain memory
    itself, ``ram_constrained``) and the private /tmp of ``limits.scratch``. Slurm's options carry memory,
    cores and time (slurm_limits); the wrapper's cgroups and log bound are not used here."""
    p = sb.plan(
        config,
        command=command,
        env=env,
        tenant=tenant,
        work_dir=work_dir,
        checkpoint_dir=checkpoint_dir,
        workdir=workdir,
        devices=[],
        shell=shell,
        log_path=os.devnull,
        exit_path=os.devnull,
        grant=grant,
        limits=limits,
    )
    if not p["sandboxed"]:
        return {}
    rlimits = {**p["limits"], **p["fallback_limits"]}
    if ram_constrained:
        rlimits.pop("AS", None)
    per, shared = sb.DEVICE_NODES.get(visible_env, ((), ()))
    return {
        "argv": [*p["argv"], "--die-with-parent"],
        "tail": p["argv_tail"],
        "env": p["env"],
        "env_script": p["env_script"],
        "env_file": p["env_file"],
        "dev_root": config.dev_root.rstrip("/") or "/",
        "per_device": list(per),
        "shared": list(shared),
        "uid": p["uid"],
        "gid": p["gid"],
        "rlimits": rlimits,
        "chown": p["chown"],
    }


def sandbox_ranks(
    config: sb.SandboxConfig,
    launch: Launch,
    payload: dict[str, Any],
    work: str,
    shell: str,
    ram_constrained: bool = False,
) -> None:
    """Each rank of the payload runs in the job sandbox (slurm_rank); SandboxError: the job cannot start."""
    shutil.rmtree(work, ignore_errors=True)
    rank_deadline(work, clear=True)  # an earlier attempt's record
    ranks: dict[str, dict[str, Any]] = payload["ranks"]
    for r in ranks.values():
        box = slurm_rank(
            config,
            command=launch.run.command,
            env=r["env"],
            tenant=launch.job.tenant,
            grant=launch.job.grant,
            work_dir=work,
            checkpoint_dir=launch.run.checkpoint_dir,
            workdir=launch.run.workdir,
            visible_env=str(payload["visible"]),
            shell=shell,
            limits=launch.run.limits,
            ram_constrained=ram_constrained,
        )
        # the work dir, and the checkpoint dir (owned by the job's uid when created here, as on the local
        # executor; on the shared path the nodes see)
        ckpt = [launch.run.checkpoint_dir] if launch.run.checkpoint_dir else []
        chown = box.pop("chown", None) or [work, *ckpt]
        sb.prepare_dirs({"chown": chown, "uid": box.get("uid"), "gid": box.get("gid")})
        if launch.job.max_run_seconds is not None:  # enforced by the rank to the second (_RUN_UNTIL)
            box.update(
                deadline=launch.job.max_run_seconds,
                grace=float(launch.run.grace_seconds),
                reason_file=reason_file(work),
            )
        r["sandbox"] = box


def reason_file(work: str) -> str:
    """Where a sandboxed rank records that it ended the job at its max_run_time: next to the job's work
    dir (``<progress>.d``), outside the sandbox."""
    return work.removesuffix(".d") + ".reason"


def rank_deadline(work: str, clear: bool = False) -> str | None:
    """The reason a sandboxed rank recorded when it ended the job at its max_run_time (None: it did not);
    ``clear``: remove the record (a new attempt, or the job is forgotten)."""
    path = reason_file(work)
    try:
        if clear:
            os.unlink(path)
            return None
        with open(path) as f:
            return f.read(200) or None
    except OSError:
        return None


def slurm_limits(launch: Launch, config: sb.SandboxConfig | None, site: str) -> list[str]:
    """``sbatch`` options for the job's limits (see the module docstring); each at most the operator's
    sandbox maximum (SandboxError naming the field otherwise). A job with an ``image`` is refused here
    (SandboxError): the job fails at start with the reason, never runs without its image."""
    if launch.run.image is not None:
        raise sb.SandboxError(
            f"image '{launch.run.image}': jobs with an image cannot run at Slurm site {site} (the rank cannot "
            "give podman the devices Slurm picks on the node); run it at a site driven by the local or "
            "Ray executor, or without an image"
        )
    if config is not None:
        lim = sb.effective_limits(config, launch.run.limits)
    else:
        lim = {k: float(v) for k, v in launch.run.limits.items() if v is not None}
    out: list[str] = []
    if "memory" in lim:
        out.append(f"--mem={max(1, math.ceil(lim['memory'] / 2**20))}M")
    if "cpus" in lim:
        out.append(f"--cpus-per-task={max(1, math.ceil(lim['cpus']))}")
    if launch.job.max_run_seconds is not None:
        out.append(f"--time={max(1, math.ceil(launch.job.max_run_seconds / 60))}")
    return out


_REFUSED = (
    "Requested node configuration is not available",
    "Memory specification can not be satisfied",
    "More processors requested than permitted",
    "Requested time limit is invalid",
    "CPU count per node can not be satisfied",
)


def refused(message: str) -> bool:
    """Whether ``sbatch`` refused the job for what it asks (its limits exceed the nodes or the partition):
    the job cannot run there as asked, so it fails with that reason instead of being requeued."""
    return any(r in message for r in _REFUSED)


def ram_constrained(config_text: str) -> bool:
    """From ``scontrol show config``: Slurm confines each job's memory (task/cgroup with ConstrainRAMSpace)."""
    flat = " ".join(config_text.split())
    return "task/cgroup" in flat and "ConstrainRAMSpace = yes" in flat
