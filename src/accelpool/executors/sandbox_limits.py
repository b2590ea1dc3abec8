"""Per-job cgroups, as part of the sandbox wrapper program (``CGROUPS`` is prepended to
``sandbox_wrapper.WRAPPER``; standard library only, shipped to Ray nodes as text).

``cg_setup(name, want)`` creates one cgroup per controller for the job rank, under the wrapper's own
cgroup, and writes the limits: ``memory`` (bytes), ``processes`` (pids), ``cpus`` (a CFS quota),
``cpu_weight`` (the rank's CPU weight under contention, in units of one nice-0 process: v1 ``cpu.shares`` =
1024 x weight, v2 ``cpu.weight`` = 100 x weight; it shares the ``cpu`` cgroup with ``cpus``). It uses
cgroup v1 controllers mounted at ``/sys/fs/cgroup/<controller>`` (hybrid hosts such as the development
machine), or cgroup v2 when the wrapper's cgroup already delegates the controllers to its children
(``cgroup.subtree_control``). Any step the host refuses (not root, read-only cgroupfs, no controller) leaves
that limit to the rlimit fallback (RLIMIT_AS for memory, RLIMIT_NPROC for processes; CPU: ``nice`` only),
and the mechanism used is recorded per limit; cgroups left by wrappers killed with SIGKILL are removed by
the next wrapper's set-up. ``cg_join(dirs)`` (in the child, before exec) moves the
process into them; ``cg_exceeded(dirs, effective)`` tells which limit was hit; ``cg_remove`` cleans up.
"""

from __future__ import annotations

CGROUPS = r"""
def _cg_mounts():
    v1, v2 = {}, None
    try:
        with open("/proc/self/mounts") as f:
            for ln in f:
                parts = ln.split()
                if len(parts) < 4:
                    continue
                if parts[2] == "cgroup":
                    for opt in parts[3].split(","):
                        v1.setdefault(opt, parts[1])
                elif parts[2] == "cgroup2" and v2 is None:
                    v2 = parts[1]
    except OSError:
        pass
    paths = {}
    try:
        with open("/proc/self/cgroup") as f:
            for ln in f:
                hid, ctrls, path = ln.rstrip("\n").split(":", 2)
                for c in (ctrls.split(",") if ctrls else ["" if hid == "0" else ctrls]):
                    paths[c] = path
    except (OSError, ValueError):
        pass
    return v1, v2, paths


def _cg_write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def cg_setup(name, want):
    # -> (dirs {controller: dir}, how {limit: mechanism})
    dirs, how = {}, {}
    if not want:
        return dirs, how
    v1, v2, paths = _cg_mounts()
    ctrl = {"memory": "memory", "processes": "pids", "cpus": "cpu", "cpu_weight": "cpu"}
    for key, value in sorted(want.items()):
        c = ctrl[key]
        base = None
        if c in v1 and c in paths:
            base = v1[c] + paths[c]
            kind = "cgroup v1 " + c
        elif v2 is not None and "" in paths:
            b = v2 + paths[""]
            try:
                with open(os.path.join(b, "cgroup.subtree_control")) as f:
                    if c in f.read().split():
                        base, kind = b, "cgroup v2 " + c
            except OSError:
                pass
        if base is None:
            continue
        _cg_sweep(base)
        d = os.path.join(base, "accelpool-" + name)
        try:
            if not os.path.isdir(d):
                os.mkdir(d)
            if kind.startswith("cgroup v1"):
                if key == "memory":
                    _cg_write(os.path.join(d, "memory.limit_in_bytes"), int(value))
                    try:
                        _cg_write(os.path.join(d, "memory.memsw.limit_in_bytes"), int(value))
                    except OSError:
                        pass  # no swap accounting on this host: the memory limit alone
                elif key == "processes":
                    _cg_write(os.path.join(d, "pids.max"), int(value))
                elif key == "cpu_weight":
                    _cg_write(os.path.join(d, "cpu.shares"), max(2, int(value * 1024)))
                else:
                    _cg_write(os.path.join(d, "cpu.cfs_period_us"), 100000)
                    _cg_write(os.path.join(d, "cpu.cfs_quota_us"), max(1000, int(value * 100000)))
            else:
                if key == "memory":
                    _cg_write(os.path.join(d, "memory.max"), int(value))
                    try:
                        _cg_write(os.path.join(d, "memory.swap.max"), 0)
                    except OSError:
                        pass
                elif key == "processes":
                    _cg_write(os.path.join(d, "pids.max"), int(value))
                elif key == "cpu_weight":
                    _cg_write(os.path.join(d, "cpu.weight"), min(10000, max(1, int(value * 100))))
                else:
                    _cg_write(os.path.join(d, "cpu.max"), "%d 100000" % max(1000, int(value * 100000)))
        except OSError as exc:
            sys.stderr.write("accelpool wrapper: %s limit not set by cgroup (%s): %r\n" % (key, kind, exc))
            if d not in dirs.values():  # cpus and cpu_weight share one cgroup: keep it for the other
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            continue
        dirs[key] = d
        how[key] = kind
    return dirs, how


def _cg_sweep(base):
    # cgroups left by wrappers that were killed (SIGKILL) before they could remove theirs: the last part
    # of the name is the wrapper's pid; a dead wrapper's cgroup is empty and removed (a live one is kept)
    try:
        names = [n for n in os.listdir(base) if n.startswith("accelpool-")]
    except OSError:
        return
    for n in names:
        try:
            os.kill(int(n.rsplit("-", 1)[1]), 0)
            continue  # its wrapper still runs
        except ProcessLookupError:
            pass
        except (ValueError, OSError):
            continue  # not one of ours, or not ours to judge
        try:
            os.rmdir(os.path.join(base, n))
        except OSError:
            # still busy (a process of it outlived its wrapper) or removed by another wrapper just now: the
            # next wrapper's sweep tries again. Not reported: this stderr is the tenant's job log, and the
            # cgroup is another job's
            pass


def cg_join(dirs):
    pid = str(os.getpid())
    for d in dirs.values():
        _cg_write(os.path.join(d, "cgroup.procs"), pid)


def _cg_read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _cg_count(text, key):
    for ln in text.splitlines():
        parts = ln.split()
        if len(parts) == 2 and parts[0] == key:
            try:
                return int(parts[1])
            except ValueError:
                return 0
    return 0


def cg_exceeded(dirs, how, effective):
    # the first limit the job hit, as a reason naming the spec field, or ""
    d = dirs.get("memory")
    if d:
        oom = _cg_count(_cg_read(os.path.join(d, "memory.oom_control")), "oom_kill")
        oom += _cg_count(_cg_read(os.path.join(d, "memory.events")), "oom_kill")
        if oom:
            return "limit exceeded: limits.memory = %d MiB (%s; %d process(es) killed)" % (
                effective["memory"] // 1048576, how["memory"], oom)
    d = dirs.get("processes")
    if d:
        hits = _cg_count(_cg_read(os.path.join(d, "pids.events")), "max")
        if hits:
            return "limit exceeded: limits.processes = %d (%s; %d fork(s) refused)" % (
                effective["processes"], how["processes"], hits)
    return ""


def cg_remove(dirs):
    for d in dirs.values():
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)  # the sandbox's last processes are still exiting
"""
