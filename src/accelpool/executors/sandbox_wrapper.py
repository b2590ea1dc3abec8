"""The sandbox wrapper: a small standard-library Python program between an executor and bubblewrap (or
podman), run as ``python -I -S -c WRAPPER plan.json`` with a plan from ``sandbox.plan``.

It applies the job's limits (cgroups where the host allows, rlimits otherwise) and its uid, starts the
sandbox, keeps the log bounded (head + marker + tail), forwards a graceful SIGTERM to every process of the
sandbox, enforces max_run_time, and records the exit code, the exit time and the reason. The RayExecutor
ships the string to its nodes (they need no accelpool).
"""

from __future__ import annotations

from accelpool.executors.sandbox_limits import CGROUPS
from accelpool.executors.sandbox_pidns import PIDNS

# The wrapper: python -I -S -c WRAPPER plan.json. Started in its own session by the executor; stays the
# parent of bwrap. Exit file: "<code> <epoch seconds> <reason>", written atomically.
_MAIN = r"""
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
state = {"reason": "", "child": None, "term_at": None, "scratch_full": False}
p = None  # the sandbox (bwrap or podman), once started
container = plan.get("container")

def podman(*args):
    # the job's container (image jobs): podman kill / inspect / rm; output and failures go to our stderr
    try:
        return subprocess.run([container["podman"], *container["global"], *args], capture_output=True,
                              timeout=60, env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        sys.stderr.write("accelpool wrapper: podman %s failed: %r\n" % (args[0], exc))
        return None
lock = threading.Lock()

def proc_start(pid):
    # a process's start time (clock ticks since boot): with its pid, names one process, never a later one
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None  # no such process (or not readable): its wrapper is gone

def sweep_containers():
    # containers whose wrapper was killed outright together with what would have removed them (the
    # LocalExecutor, a Ray actor): labelled with their wrapper's pid and start time and pid namespace; one
    # whose wrapper is gone is removed. Nothing is written to stderr (the tenant's log) about other jobs'
    r = podman("ps", "-a", "--filter", "label=accelpool.wrapper", "--format",
               '{{.ID}} {{index .Labels "accelpool.wrapper"}} {{index .Labels "accelpool.pidns"}}')
    if r is None or r.returncode != 0:
        return
    ns = os.readlink("/proc/self/ns/pid")
    for ln in r.stdout.decode("utf-8", "replace").splitlines():
        parts = ln.split()
        if len(parts) != 3 or parts[2] != ns:
            continue  # another pid namespace's wrapper: not ours to judge
        pid, _, start = parts[1].partition(":")
        if pid.isdigit() and proc_start(pid) != start:
            podman("rm", "-f", "-t", "0", parts[0])

def ns_pids():
    child = state["child"]
    return [] if child is None else pidns_members(child)  # PIDNS (sandbox_pidns.py)

def terminate(reason):
    with lock:
        if state["term_at"] is not None:
            return
        state["term_at"] = time.time()
        state["reason"] = state["reason"] or reason
    if container is not None:
        podman("kill", "--signal", "TERM", container["name"])
    elif plan["sandboxed"]:
        # a stop right after the start: wait (within the grace period) until the sandbox has a process
        until = time.time() + max(0.0, plan["grace"])
        while True:
            pids = ns_pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            if pids or time.time() >= until or p is None or p.poll() is not None:
                break
            time.sleep(0.01)
    else:
        try:
            os.killpg(0, signal.SIGTERM)  # unsandboxed: the command shares this process group
        except OSError:
            pass
    t = threading.Timer(max(0.0, plan["grace"]), kill)
    t.daemon = True
    t.start()

def kill():
    if container is not None:
        podman("kill", container["name"])  # SIGKILL to the container's init: its pid namespace dies
    try:
        if plan["sandboxed"]:
            if p is not None:
                p.kill()  # bwrap dies; its reaper (pid 1 of the sandbox) dies with it and takes every process
        else:
            os.killpg(0, signal.SIGKILL)
    except OSError:
        pass

signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=terminate, args=("stopped",)).start())

cg_dirs, cg_how = cg_setup(os.path.basename(plan["exit"]).replace("exit.", "") + "-" + str(os.getpid()),
                            plan.get("cgroup") or {})

libc = None
if plan["sandboxed"] and container is None:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
    except Exception as exc:
        sys.stderr.write("accelpool wrapper: no libc for PR_SET_PDEATHSIG: %r\n" % (exc,))

def pre():
    if libc is not None:  # bwrap dies with this wrapper (a wrapper killed by Ray's cleanup, say): never an
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # orphaned bwrap, stuck in its setup; its sandbox follows
    cg_join(cg_dirs)
    rl = dict(plan["limits"])
    for key, name in (("processes", "NPROC"), ("memory", "AS")):  # limits no cgroup could set
        if key not in cg_dirs and name in plan.get("fallback_limits", {}):
            rl[name] = plan["fallback_limits"][name]
    for name, value in rl.items():
        lim = getattr(resource, "RLIMIT_" + name)
        soft, hard = resource.getrlimit(lim)
        v = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(lim, (v, v))
    if plan.get("nice"):
        os.nice(plan["nice"])

argv = list(plan["argv"])
info_r = info_w = None
fds = []
if container is not None:
    with open(container["env_file"] + ".tmp", "w") as f:  # 0600: the plan's dir is the executor's own
        os.chmod(f.name, 0o600)
        f.write("".join("%s=%s\n" % kv for kv in plan["env"].items()))
    os.replace(container["env_file"] + ".tmp", container["env_file"])
    podman("rm", "-f", container["name"])  # a leftover of an earlier start of this rank
    sweep_containers()
    at = argv.index("run") + 1  # labels: which wrapper (pid and start time) owns the container, where
    argv[at:at] = ["--label", "accelpool.wrapper=%d:%s" % (os.getpid(), proc_start(os.getpid())),
                   "--label", "accelpool.pidns=" + os.readlink("/proc/self/ns/pid")]
elif plan["sandboxed"]:
    info_r, info_w = os.pipe()
    fds.append(info_w)
    argv = argv[:1] + ["--info-fd", str(info_w)] + argv[1:]
    if plan.get("env_script") is not None:  # the job's environment, for the job alone (sandbox_env.py)
        env_fd = os.memfd_create("accelpool-env")
        data = plan["env_script"].encode("utf-8", "surrogateescape")
        while data:
            data = data[os.write(env_fd, data):]
        os.lseek(env_fd, 0, 0)
        fds.append(env_fd)
        argv += ["--perms", "0444", "--ro-bind-data", str(env_fd), plan["env_file"]]
try:
    argv += plan["argv_tail"]
    penv = plan["env"] if container is None else {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=penv, cwd=plan["cwd"], preexec_fn=pre, pass_fds=tuple(fds))
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
if p is not None and info_r is not None and plan.get("scratch_path"):
    # the job's /tmp (a size-limited tmpfs inside the sandbox), seen through its pid 1: full at any sample?
    def watch_scratch():
        while p.poll() is None:
            child = state["child"]
            if child is not None:
                try:
                    st = os.statvfs("/proc/%d/root%s" % (child, plan["scratch_path"]))
                    if st.f_bavail == 0 and st.f_blocks > 0:
                        state["scratch_full"] = True
                except OSError:
                    pass
            time.sleep(0.1)
    threading.Thread(target=watch_scratch, daemon=True).start()
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
    try:
        with open(tmp, "wb") as f:
            f.write(marker() + bytes(tail))
        os.replace(tmp, tail_path)
    except OSError:  # a full disk: the tail is written again at the next flush
        pass

def write_log(data):
    # append to the job's log; on a full disk (or any write error) the bytes are lost, not the job: an
    # exception here ended the wrapper, whose death signal then killed the job's sandbox (a review)
    global dropped
    try:
        if out is None:
            raise OSError("no log")
        out.write(data)
    except OSError:
        dropped += len(data)

def marker():
    return ("\n[accelpool: %d bytes of output omitted; the first %d and the last %d bytes are kept]\n"
            % (dropped, half, len(tail))).encode()

if p is not None:
    try:
        out = open(plan["log"], "ab", buffering=0)
    except OSError:  # no room for the log (a full disk's inodes): the output is lost, not the job
        out = None
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
            write_log(head)
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
    ended = time.time()
    if tail:
        write_log((marker() if dropped else b"") + bytes(tail))
    try:
        if out is not None:
            out.close()
    except OSError:
        pass
    flush_tail(True)
    if plan["sandboxed"] and code > 128:
        code = -(code - 128)  # bwrap (and podman) report a command killed by signal N as 128+N
reason = state["reason"]
if reason.startswith("max_run_time") and code == 0:
    code = -signal.SIGTERM
if not reason and code != 0:  # why did it fail: a limit? (the reason names the spec field)
    eff = plan.get("effective") or {}
    reason = cg_exceeded(cg_dirs, cg_how, eff)
    if not reason and container is not None and "memory" in (plan.get("limits_asked") or {}):
        # podman's cgroup kills a process over the limit without saying so (OOMKilled covers only its
        # init): name the limit in effect
        reason = "exit code %d; limit in effect: limits.memory = %d MiB (podman --memory)" % (
            code, eff["memory"] // 1048576)
    if not reason and state["scratch_full"]:
        reason = "limit exceeded: limits.scratch = %d MiB (/tmp is a tmpfs of that size; it was full)" % (
            eff.get("scratch", 0) // 1048576)
    if not reason:  # limits only an rlimit enforced: the failure may be one; say which were in effect
        rl = [(k, n) for k, n in (("memory", "AS"), ("processes", "NPROC"))
              if k in (plan.get("limits_asked") or {}) and k not in cg_dirs and container is None]
        if rl:
            reason = "exit code %d; limit in effect: %s" % (code, ", ".join(
                "limits.%s = %d (RLIMIT_%s; no cgroup)" % (k, eff[k], n) for k, n in rl))
if container is not None:
    podman("rm", "-f", container["name"])
    try:
        os.unlink(container["env_file"])
    except OSError:
        pass
cg_remove(cg_dirs)
tmp = plan["exit"] + ".tmp"
record = "%d %.6f %s" % (code, ended if p is not None else time.time(), reason)
give_up = time.monotonic() + 60.0
while True:
    # the exit record is the job's outcome: on a full disk it is written again until it is there (the
    # executor sees the job running meanwhile), never lost (a job lost so was run again after a restart).
    # Another error (its dir removed: nobody will read it) is tried for a minute, then left
    try:
        with open(tmp, "w") as f:
            f.write(record)
        os.replace(tmp, plan["exit"])
        break
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO) and time.monotonic() > give_up:
            break
        if state["term_at"] is not None:
            break  # a stop: the executor reads the job's code from this process's exit status instead
        time.sleep(1.0)
sys.exit(code if code >= 0 else 128 - code)
"""

WRAPPER = (
    "import errno, json, os, resource, signal, subprocess, sys, threading, time\n" + CGROUPS + PIDNS + _MAIN
)
