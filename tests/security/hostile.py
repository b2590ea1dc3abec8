"""The hostile-job suite's attacks and the harness that runs them through the real service.

Every attack is a real job of a member tenant (``demo-startup``), submitted over HTTP to `accelpool up`
(API + scheduler + executor, sandbox as configured by ``--sandbox-config``). A victim job of another tenant
(``demo-lab``) runs beside them. An attack's command prints ``ATTACK-SUCCEEDED`` if what it tried worked;
each attack also has host-side checks (files unchanged, processes gone, service alive, victim alive) and no
attack's log may contain a secret (admin token, the other tenant's token, the victim's secret, the
service's canary environment variable). docs/security.md lists each attack with the mechanism that stops it.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from accelpool.service.process import ServerProcess

WIN = "ATTACK-SUCCEEDED"
VICTIM_SLEEP = "sleep 900.77"  # outlasts a slow run; stop_victim ends it
CANARY = "ACCELPOOL_TEST_SERVICE_CANARY"


@dataclass
class Ctx:
    data: Path
    url: str
    admin: str
    member: str  # the attacker's tenant (demo-startup)
    other: str  # the victim's tenant (demo-lab)
    canary: str
    victim: str = ""
    victim_secret: str = ""
    devroot: Path = Path("/dev")
    vars: dict[str, Any] = field(default_factory=dict)

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=15)


@dataclass
class Attack:
    name: str
    command: str  # str.format(**ctx.vars)
    type: str = "rngd"
    wave: int = 1  # wave 2 runs alone after wave 1 (resource exhaustion)
    max_run_time: float | None = 60.0
    extra: dict[str, Any] = field(default_factory=dict)  # more spec fields
    cancel_after: float | None = None  # cancel the job this long after it runs
    expect_state: tuple[str, ...] = ("succeeded", "failed", "cancelled")
    check: Callable[[Ctx, dict[str, Any], str], None] | None = None
    local_only: bool = False
    tenant: str = "member"  # "other": submitted by the victim's tenant (demo-lab: no network granted)
    # a job of the other tenant submitted ``beside_after`` s after the attack started, while it runs: it
    # must succeed (the attack does not starve other tenants); its job and logs reach ``check`` in
    # job["beside"] and job["beside_logs"]
    beside: str | None = None
    beside_after: float = 1.5
    # host processes whose command line holds this are timed from their first sighting to their end (a
    # watcher thread, every 0.05 s): job["watched"] = (first seen, gone), the real run time on any executor
    # (the API's start and end on Ray are when the executor's poll saw them)
    watch: str | None = None


def _host_procs(needle: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cl = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                st = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if needle in cl and st[st.rfind(")") + 2] != "Z":
                out.append(int(d))
    return out


def _no_proc(needle: str) -> Callable[[Ctx, dict[str, Any], str], None]:
    def check(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
        deadline = time.time() + 20
        while _host_procs(needle) and time.time() < deadline:
            time.sleep(0.2)
        assert not _host_procs(needle), f"a process of the job survived it: {needle}"

    return check


def _service_and_victim_alive(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
    with ctx.client(ctx.admin) as c:
        assert c.get("/healthz").status_code == 200
        v = c.get(f"/api/v1/jobs/{ctx.victim}").json()
    assert v["state"] == "running", f"the victim job was hurt: {v['state']} {v['reason']}"
    assert _host_procs(VICTIM_SLEEP), "the victim's process is gone"
    for pid in ctx.vars["service_pids"].split():
        assert Path(f"/proc/{pid}").exists(), f"service process {pid} was killed"


def _data_dir_unchanged(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
    assert not (ctx.data / "pwned").exists()
    assert (ctx.data / "admin-token").read_text().strip() == ctx.admin


def _db_unchanged(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
    assert (ctx.data / "accelpool.sqlite").read_bytes()[:16] == b"SQLite format 3\x00"
    assert b"PWNED" not in (ctx.data / "accelpool.sqlite").read_bytes()[-4096:]


def _only_own_devices(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
    own = {int(ln.split()[1]) for ln in logs.splitlines() if ln.startswith("own ")}
    opened = {int(ln.split()[1]) for ln in logs.splitlines() if ln.startswith("opened ")}
    seen = {ln.split()[1] for ln in logs.splitlines() if ln.startswith("dev ")}
    assert opened, f"positive control: the job could not open its own device ({logs[-500:]})"
    assert len(opened) == 1, f"the job opened devices {sorted(opened)}, not only its own"
    assert opened == own, f"opened {sorted(opened)}, its own: {sorted(own)}"
    assert not any(s.startswith("nvidia") and s[6:].isdigit() and int(s[6:]) not in opened for s in seen), (
        seen
    )


def _assert(cond: bool, msg: str) -> None:
    assert cond, msg[-1500:]


def _log_bounded(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
    assert len(logs) < 3 * 1024 * 1024, f"log kept whole: {len(logs)} bytes"
    assert "bytes of output omitted" in logs, "no head/tail marker"
    assert logs.rstrip().endswith("flood-end"), "the tail was not kept"


def _token_dead_after_job(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
    tok = next(ln.split("=", 1)[1] for ln in logs.splitlines() if ln.startswith("TOKEN="))
    assert tok.startswith("apj_")
    with httpx.Client(base_url=ctx.url, headers={"Authorization": f"Bearer {tok}"}, timeout=10) as c:
        r = c.get(f"/api/v1/jobs/{job['id']}")
    assert r.status_code == 401, r.text


def _ran_for(limit: float, slack: float = 1.0) -> Callable[[Ctx, dict[str, Any], str], None]:
    """The job failed at its max_run_time, and its watched processes (``Attack.watch``) ran at most
    ``slack`` s longer than ``limit`` s (first seen on the host -> gone)."""

    def check(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
        assert job["reason"].startswith("max_run_time exceeded"), job["reason"]
        first, gone = job["watched"]
        assert first is not None and gone is not None, ("the job's processes were not seen", first, gone)
        ran = gone - first
        assert ran <= limit + slack, f"a {limit:g} s limit let the job run {ran:.2f} s"

    return check


def _both(*checks: Callable[[Ctx, dict[str, Any], str], None]) -> Callable[[Ctx, dict[str, Any], str], None]:
    def check(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
        for c in checks:
            c(ctx, job, logs)

    return check


def _beside_not_starved(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
    """The other tenant's job, started while the attack ran, forked its 40 processes and succeeded."""
    b, blogs = job["beside"], job["beside_logs"]
    assert b is not None, (
        "the other tenant's job was not submitted while the attack ran",
        {k: job.get(k) for k in ("start_time", "end_time", "seen_running", "slowest_poll")},
    )
    assert b["start_time"] is not None and b["start_time"] < job["end_time"], (
        "the other tenant's job did not start while the attack ran",
        b,
    )
    assert b["state"] == "succeeded" and "beside-ok 40" in blogs, (b["state"], b["reason"], blogs[-800:])


def cpu_cgroup() -> bool:
    """Whether this host gives a job's wrapper a CPU cgroup (a CFS quota for ``limits.cpus``): the
    wrapper's own set-up, tried here (same host, same cgroup as the service's children)."""
    from accelpool.executors.sandbox_limits import CGROUPS

    ns: dict[str, Any] = {}
    exec("import os, sys, time\n" + CGROUPS, ns)
    dirs, _how = ns["cg_setup"](f"probe-{os.getpid()}", {"cpus": 0.5})
    ns["cg_remove"](dirs)
    return "cpus" in dirs


CPU_HOG = (
    'python3 -c "import os, time\nt = time.time()\nwhile time.time() - t < 2: pass\n'
    "c = os.times(); print('cpu %.2f' % (c.user + c.system))\""
)


def _cpu_capped(cpus: float) -> Callable[[Ctx, dict[str, Any], str], None]:
    """A 2 s busy loop under ``limits.cpus`` got at most that share of a core (+0.4 s), where the host
    gives jobs a CPU cgroup; elsewhere ``cpus`` is only ``nice`` (docs/security.md) and is not asserted."""

    def check(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
        used = next((float(ln.split()[1]) for ln in logs.splitlines() if ln.startswith("cpu ")), None)
        assert used is not None, f"positive control: the busy loop did not report: {logs[-500:]}"
        if cpu_cgroup():
            assert used <= cpus * 2 + 0.4, f"a {cpus} CPU limit let a 2 s busy loop use {used} s of CPU"

    return check


def _reason_refused(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
    assert job["state"] == "failed" and "may not use" in job["reason"], job["reason"]


_PY_HTTP = (
    'python3 -c "import os,sys,urllib.request as u; '
    "r=u.Request(os.environ['ACCELPOOL_URL']+sys.argv[1], method=sys.argv[2], data=b'{{}}' if sys.argv[2]=='POST' else None, "
    "headers={{'Authorization':'Bearer '+os.environ.get('ACCELPOOL_TOKEN',''),'Content-Type':'application/json'}});"
    "print('HTTP', u.urlopen(r).status)\""
)

_PY_CONNECT = (
    "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3); print('connected')\" && echo "
    + WIN
)
TEST_IMAGE = "localhost/accelpool-test-busybox:1"


def build_test_image(work: Path) -> str | None:
    """A tiny image (a static busybox and its applets), built here with podman import: no registry. None
    when podman or busybox is missing (scripts/setup.sh installs them)."""
    import shutil
    import subprocess
    import tarfile

    from accelpool.executors.sandbox_image import PODMAN_GLOBAL

    busybox = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
    if shutil.which("podman") is None or busybox is None or os.geteuid() != 0:
        return None
    podman = ["podman", *PODMAN_GLOBAL]
    if subprocess.run([*podman, "image", "exists", TEST_IMAGE], check=False).returncode == 0:
        return TEST_IMAGE
    root = work / "image-root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            (root / "bin" / a).symlink_to("busybox")
    tar = work / "image.tar"
    with tarfile.open(tar, "w") as t:
        t.add(root / "bin", arcname="bin")
    subprocess.run([*podman, "import", str(tar), TEST_IMAGE], check=True, capture_output=True)
    return TEST_IMAGE


IN_IMAGE = "accelpool-in-image"


def _image_attack(
    name: str,
    command: str,
    check: Callable[[Ctx, dict[str, Any], str], None] | None = None,
    tenant: str = "member",
) -> Attack:
    """An attack from inside a job with an image; its log must show it ran there (busybox, not the host)."""

    def ran(ctx: Ctx, job: dict[str, Any], logs: str) -> None:
        assert IN_IMAGE + " busybox" in logs, (
            f"positive control: the job did not run in its image: {logs[-500:]}"
        )
        if check is not None:
            check(ctx, job, logs)

    probe = f"echo {IN_IMAGE} $(readlink /bin/sh); "
    return Attack(name, probe + command, extra={"image": TEST_IMAGE}, check=ran, tenant=tenant)


ATTACKS: list[Attack] = [
    Attack("read-admin-token", "cat {data}/admin-token && echo " + WIN, check=_data_dir_unchanged),
    Attack("read-other-tenant-token", "cat {data}/token-demo-lab && echo " + WIN),
    Attack("read-database", "head -c 16 {data}/accelpool.sqlite | grep -q SQLite && echo " + WIN),
    Attack("list-data-dir", '[ -n "$(ls -A {data} 2>/dev/null)" ] && echo ' + WIN),
    Attack("write-data-dir", "echo x > {data}/pwned && echo " + WIN, check=_data_dir_unchanged),
    Attack("write-database", "echo PWNED >> {data}/accelpool.sqlite && echo " + WIN, check=_db_unchanged),
    Attack("read-other-job-state", "cat {victim_state}/plan.0.json && echo " + WIN),
    Attack("read-other-job-scratch", "cat {victim_state}/work/secret && echo " + WIN),
    Attack("read-other-job-logs", "cat {data}/executor/logs/{victim}.log {data}/ray-logs/* && echo " + WIN),
    Attack("read-other-job-environ", "cat /proc/{victim_pid}/environ && echo " + WIN),
    Attack(
        "scan-proc-environ",
        "for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null | tr '\\0' '\\n'; done | grep -q VICTIM_SECRET "
        "&& echo " + WIN,
    ),
    Attack("read-service-environ", "cat /proc/{service_pid}/environ && echo " + WIN),
    Attack(
        "inherit-service-env",
        "env; env | grep -q -E 'VIRTUAL_ENV|{canary}|ACCELPOOL_SUPERVISOR' && echo " + WIN,
    ),
    Attack(
        "signal-scheduler",
        "for p in {service_pids}; do kill -9 $p && echo " + WIN + "; done",
        check=_service_and_victim_alive,
    ),
    Attack("signal-other-job", "kill -9 {victim_pid} && echo " + WIN, check=_service_and_victim_alive),
    Attack("kill-everything", "kill -9 -1; sleep 1; echo done", check=_service_and_victim_alive),
    Attack(
        "ptrace-scheduler",
        'python3 -c "import ctypes,sys; l=ctypes.CDLL(None); pid=int(sys.argv[1]); '
        "print('" + WIN + "' if l.ptrace(16, pid, 0, 0) == 0 else 'ptrace refused')\" {service_pid}",
        check=_service_and_victim_alive,
    ),
    Attack(
        "ptrace-other-job",
        'python3 -c "import ctypes,sys; l=ctypes.CDLL(None); pid=int(sys.argv[1]); '
        "print('" + WIN + "' if l.ptrace(16, pid, 0, 0) == 0 else 'ptrace refused')\" {victim_pid}",
        check=_service_and_victim_alive,
    ),
    Attack(
        "open-other-job-device",
        "echo own $CUDA_VISIBLE_DEVICES; ls /dev | sed 's/^/dev /'; for i in 0 1 2 3 4 5 6 7; do cat /dev/nvidia$i >/dev/null 2>&1 "
        "&& echo opened $i; done; cat {devroot}/nvidia{victim_dev} 2>/dev/null && echo " + WIN,
        type="h100",
        check=_only_own_devices,
    ),
    Attack(
        # ld.so reads LD_DEBUG as it reads LD_PRELOAD: where the job's environment reached bwrap or setpriv
        # (root, before any namespace), ld.so reports their libraries; a library of the job's would have
        # run there as root (a review's escape: tests/executors/test_sandbox_env.py)
        "environment-reaches-the-sandbox-setup",
        'echo "own env $LD_DEBUG"',
        extra={"env": {"LD_DEBUG": "files"}},
        check=lambda ctx, job, logs: _assert(
            "own env files" in logs and "bwrap" not in logs and "setpriv" not in logs,
            "the job's LD_DEBUG reached bwrap or setpriv, or not the job:\n" + logs[-3000:],
        ),
    ),
    Attack("run-as-root", '[ "$(id -u)" = 0 ] && echo ' + WIN + "; cat /etc/shadow && echo " + WIN),
    Attack("write-host-fs", "touch /usr/pwned-by-job && echo " + WIN + "; touch /etc/pwned && echo " + WIN),
    Attack("child-after-exit", "sleep 311.51 & echo started-child; exit 0", check=_no_proc("sleep 311.51")),
    Attack(
        "setsid-child-after-exit",
        "setsid sleep 312.52 & setsid -f sleep 312.52; echo started; exit 0",
        check=_no_proc("sleep 312.52"),
    ),
    Attack(
        "child-after-cancel",
        "sleep 313.53 & echo started; sleep 600",
        cancel_after=2.0,
        check=_no_proc("sleep 313.53"),
    ),
    Attack(
        "setsid-child-after-cancel",
        "setsid -f sleep 314.54; trap '' TERM; echo started; sleep 600",
        cancel_after=2.0,
        extra={"grace_seconds": 1},
        check=_no_proc("sleep 314.54"),
    ),
    Attack(
        "outlive-max-run-time",
        "trap '' TERM; setsid -f sleep 315.55; sleep 600",
        max_run_time=3,
        extra={"grace_seconds": 1},
        # TERM ignored: killed after the grace. Two of the wrapper's timers (deadline, then grace) fire in
        # turn, each late under load: a loaded CI run on Ray measured 5.02 s (1.02 s over), so 2 s of slack
        check=_both(_no_proc("sleep 315.55"), _ran_for(3 + 1, slack=2.0)),
        watch="sleep 315.55",
    ),
    Attack("max-run-time-3s", "sleep 317.57", max_run_time=3, check=_ran_for(3), watch="sleep 317.57"),
    Attack(
        "symlink-escape-in-checkpoint",
        "ln -s {data} $ACCELPOOL_CHECKPOINT_DIR/escape; cat $ACCELPOOL_CHECKPOINT_DIR/escape/admin-token && echo "
        + WIN,
        extra={"checkpoint_dir": "{ckpt}"},
    ),
    Attack(
        "symlink-escape-in-workdir",
        "ln -s {data} $HOME/escape; cat $HOME/escape/admin-token && echo " + WIN + "; ls -A $HOME/escape/",
    ),
    Attack(
        "symlink-workdir-to-data",
        "cat admin-token && echo " + WIN,
        extra={"workdir": "{ckpt_link}"},
        check=_reason_refused,
        expect_state=("failed",),
    ),
    Attack(
        "symlink-checkpoint-dir-to-data",
        "cat $ACCELPOOL_CHECKPOINT_DIR/admin-token && echo " + WIN,
        extra={"checkpoint_dir": "{ckpt_link}"},
        check=_reason_refused,
        expect_state=("failed",),
    ),
    Attack(
        "workdir-is-data-dir",
        "cat admin-token && echo " + WIN,
        extra={"workdir": "{data}"},
        check=_reason_refused,
        expect_state=("failed",),
    ),
    Attack(
        "job-token-cancels-other-job",
        _PY_HTTP + " /api/v1/jobs/{victim}/cancel POST && echo " + WIN,
        check=_service_and_victim_alive,
    ),
    Attack("job-token-reads-other-tenant", _PY_HTTP + " /api/v1/jobs/{victim} GET && echo " + WIN),
    Attack("job-token-lists-jobs", _PY_HTTP + " /api/v1/jobs GET && echo " + WIN),
    Attack("job-token-reads-tokens", _PY_HTTP + " /api/v1/tokens GET && echo " + WIN),
    Attack(
        "job-token-after-the-job",
        "echo TOKEN=$ACCELPOOL_TOKEN; " + _PY_HTTP + " /api/v1/jobs/$ACCELPOOL_JOB_ID GET",
        check=_token_dead_after_job,
    ),
    # wave 2: exhaustion, each alone
    Attack(
        "fork-bomb",
        # the sleep is forked first and waited for (no fork): the bomb keeps pressing until max_run_time.
        # The bomb starts in a subshell the job's shell forks before any bomb exists: run by the job's
        # shell itself, its second pipeline fork could meet the pid limit, end that shell and so the job
        # in 0.3 s, before the job beside it was submitted (a CI failure). 20 s: on a loaded CI machine a
        # Ray job's "running" can reach the store seconds after its start
        "sleep 19.5 & s=$!; (bomb() {{ bomb | bomb & }}; bomb); wait $s",
        wave=2,
        max_run_time=20,
        beside_after=1.0,
        extra={"grace_seconds": 1},
        check=_both(_no_proc("bomb"), _beside_not_starved),
        beside="n=0; for i in $(seq 40); do sleep 3 & n=$((n+1)); done; wait; echo beside-ok $n",
    ),
    Attack(
        "log-flood-100MB",
        "head -c 100000000 /dev/zero | tr '\\0' 'A'; echo; echo flood-end",
        wave=2,
        check=_log_bounded,
    ),
    Attack(
        "fill-tmp",
        "echo ok > /tmp/small && cat /tmp/small; head -c 2000000000 /dev/zero > /tmp/fill && echo "
        + WIN
        + "; df -h /tmp",
        wave=2,
        check=lambda ctx, job, logs: _assert("No space left on device" in logs and "\nok\n" in logs, logs),
    ),
    Attack(
        "cpu-hog",
        CPU_HOG,
        wave=2,
        extra={"limits": {"cpus": 0.25}},
        expect_state=("succeeded",),
        check=_cpu_capped(0.25),
    ),
    Attack(
        "memory-hog",
        "python3 -c \"b = bytearray(512 * 1024 * 1024); print('" + WIN + "')\"",
        wave=2,
        extra={"limits": {"memory": "64m"}},
        expect_state=("failed",),
        check=lambda ctx, job, logs: _assert("limits.memory" in job["reason"], job["reason"]),
    ),
    Attack("fill-scratch-file", "head -c 200000000 /dev/zero > $HOME/big && echo " + WIN, wave=2),
    # network: demo-lab's jobs get none (the operator grants it to demo-startup only)
    Attack("connect-api-port", _PY_CONNECT.format(port="{api_port}"), tenant="other"),
    Attack("connect-postgres-port", _PY_CONNECT.format(port="{pg_port}"), tenant="other"),
    # the same boundary for jobs with an image (podman); each first proves it runs in the image
    _image_attack("image-read-admin-token", "cat {data}/admin-token && echo " + WIN),
    _image_attack("image-list-data-dir", '[ -n "$(ls -A {data} 2>/dev/null)" ] && echo ' + WIN),
    _image_attack("image-read-other-job-scratch", "cat {victim_state}/work/secret && echo " + WIN),
    _image_attack(
        "image-read-service-env",
        "cat /proc/{service_pid}/environ && echo " + WIN + "; env | grep -q {canary} && echo " + WIN,
    ),
    _image_attack("image-run-as-root", '[ "$(id -u)" = 0 ] && echo ' + WIN),
    _image_attack(
        "image-connect-api-port",
        'printf "GET /healthz HTTP/1.0\\r\\n\\r\\n" | nc -w 3 127.0.0.1 {api_port} | grep -q "HTTP/" && echo '
        + WIN,
        tenant="other",
    ),
    _image_attack("image-signal-scheduler", "kill -9 {service_pid} && echo " + WIN),
    Attack(
        "image-not-on-the-node",
        "echo " + WIN,
        extra={"image": "localhost/accelpool-no-such-image:0"},
        expect_state=("failed",),
        check=lambda ctx, job, logs: _assert("field 'image'" in job["reason"], job["reason"]),
    ),
    _image_attack(
        "image-child-after-exit", "sleep 311.53 & echo started-child; exit 0", _no_proc("sleep 311.53")
    ),
]


def free_devroot(base: Path) -> Path:
    """Stand-in device files (regular files), traversable like /dev."""
    root = base / "devroot"
    (root / "rngd").mkdir(parents=True)
    names = [f"nvidia{i}" for i in range(8)] + [
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia-modeset",
    ]
    names += [f"npu{i}" for i in range(8)] + [f"rbln{i}" for i in range(8)] + ["rsd0"]
    names += [f"rngd/npu{i}mgmt" for i in range(8)]
    for n in names:
        (root / n).write_text(f"stand-in {n}\n")
        (root / n).chmod(0o666)
    for p in (base, root, root / "rngd"):
        p.chmod(0o755)
    return root


def postgres_port() -> int:
    """The TCP port of the tests' PostgreSQL (``ACCELPOOL_TEST_POSTGRES_URL``, as scripts/postgres.sh
    exports it), else PostgreSQL's default 5432: the port a job without network must not reach."""
    from sqlalchemy.engine import make_url

    url = os.environ.get("ACCELPOOL_TEST_POSTGRES_URL")
    return (make_url(url).port if url else None) or 5432


def start_pool(tmp: Path, *args: str) -> tuple[ServerProcess, Ctx]:
    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"ap-hostile-{secrets.token_hex(4)}"
    base.mkdir()
    base.chmod(0o755)
    build_test_image(base)
    devroot = free_devroot(base)
    data = tmp / "data"
    data.mkdir()
    ckpt = base / "ckpt"
    ckpt.mkdir()
    ckpt.chmod(0o777)
    (base / "ckpt-link").symlink_to(data)
    cfg = tmp / "sandbox.json"
    cfg.write_text(
        json.dumps(
            {
                "dev_root": str(devroot),
                "tenant_ids": {"demo-startup": [60001, 60001], "demo-lab": [60002, 60002]},
                "max_processes": 300,
                "log_max_bytes": 1024 * 1024,
                "tmp_bytes": 32 * 1024 * 1024,
                "network_for": ["demo-startup"],  # its job-token attacks need the API; demo-lab: no network
                "max_file_bytes": 50 * 1024 * 1024,
            }
        )
    )
    canary = "canary-" + secrets.token_hex(8)
    os.environ[CANARY] = canary  # the service inherits it; no job may see it
    try:
        server = ServerProcess(data, "--demo", "--sandbox-config", str(cfg), *args).start()
    finally:
        del os.environ[CANARY]
    ctx = Ctx(
        data=data,
        url=server.url,
        admin=(data / "admin-token").read_text().strip(),
        member=(data / "token-demo-startup").read_text().strip(),
        other=(data / "token-demo-lab").read_text().strip(),
        canary=canary,
        devroot=devroot,
    )
    ctx.vars.update(
        ckpt=str(ckpt / "escape-test"), ckpt_link=str(base / "ckpt-link"), pg_port=str(postgres_port())
    )
    return server, ctx


def wait(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out: {what}")


def start_victim(ctx: Ctx, server: ServerProcess) -> None:
    ctx.victim_secret = "victim-" + secrets.token_hex(8)
    with ctx.client(ctx.admin) as c:  # Ray: the pool's nodes are discovered by the scheduler first

        def types() -> set[str]:
            return {n["accelerator"] for n in c.get("/api/v1/nodes").json()["items"]}

        wait(lambda: {"h100", "rngd"} <= types(), 90, "the pool's nodes")
    with ctx.client(ctx.other) as c:
        r = c.post(
            "/api/v1/jobs",
            json={
                "name": "victim",
                "command": 'echo "$VICTIM_SECRET" > "$HOME/secret"; echo "$VICTIM_SECRET"; ' + VICTIM_SLEEP,
                "env": {"VICTIM_SECRET": ctx.victim_secret},
                "resources": {"type": "h100", "count": 1},
            },
        )
        assert r.status_code == 201, r.text
        ctx.victim = r.json()["id"]
        job = wait(
            lambda: (j := c.get(f"/api/v1/jobs/{ctx.victim}").json())["state"] == "running" and j,
            60,
            "the victim job to run",
        )
    pids = wait(lambda: _host_procs(VICTIM_SLEEP), 60, "the victim's process")
    if ctx.vars.get("executor") == "ray":  # the victim's files on its Ray node
        import glob

        found = wait(lambda: glob.glob(f"/tmp/accelpool-ray/{ctx.victim}-*/r0"), 30, "the victim's Ray dir")
        victim_state = found[0]
    else:
        victim_state = str(ctx.data / "executor" / "jobs" / ctx.victim)
    assert server.proc is not None
    top = server.proc.pid  # the supervisor, and its API and scheduler processes
    service = [top] + sorted(int(c) for c in Path(f"/proc/{top}/task/{top}/children").read_text().split())
    ctx.vars.update(
        data=str(ctx.data),
        victim=ctx.victim,
        victim_pid=str(pids[0]),
        victim_dev=str(job["placement"]["devices"][0][1][0]),
        victim_state=victim_state,
        service_pid=str(service[-1]),
        service_pids=" ".join(str(p) for p in service),
        devroot=str(ctx.devroot),
        canary=ctx.canary,
        api_port=ctx.url.rsplit(":", 1)[1].split("/")[0],
    )


def stop_victim(ctx: Ctx) -> None:
    """Teardown: cancel the victim (it sleeps long enough to outlast a slow run) and wait for its end."""
    if not ctx.victim:
        return
    try:
        with ctx.client(ctx.other) as c:
            r = c.post(f"/api/v1/jobs/{ctx.victim}/cancel")
            assert r.status_code == 200, r.text
            wait(lambda: _ended(c, ctx.victim), 30, "the victim's end")
    except (httpx.HTTPError, AssertionError) as exc:
        print(f"hostile teardown: the victim's cancel did not end it ({exc}); killing its processes")
    for pid in _host_procs(VICTIM_SLEEP):  # its bwrap too: the sandbox dies with it
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def all_logs(c: httpx.Client, jid: str) -> str:
    """Every page of a job's output (GET /jobs/{id}/logs serves at most 1 MiB a page)."""
    parts, offset = [], 0
    while True:
        page = c.get(f"/api/v1/jobs/{jid}/logs", params={"offset": offset}).json()
        parts.append(page["logs"])
        if page.get("next_offset") is None:
            return "".join(parts)
        offset = page["next_offset"]


def run_attacks(ctx: Ctx, attacks: list[Attack]) -> Iterator[tuple[Attack, dict[str, Any], str]]:
    """Submit the attacks (as the member tenant), wait for their ends, yield (attack, job, logs)."""
    ids: dict[str, Attack] = {}
    watched: dict[str, list[float | None]] = {}
    with ctx.client(ctx.member) as c, ctx.client(ctx.other) as other:
        for a in attacks:
            spec: dict[str, Any] = {
                "name": a.name,
                "command": a.command.format(**ctx.vars),
                "resources": {"type": a.type, "count": 1},
                "kind": "batch",
            }
            if a.max_run_time is not None:
                spec["max_run_time"] = a.max_run_time
            for k, v in a.extra.items():
                spec[k] = v.format(**ctx.vars) if isinstance(v, str) else v
            r = (other if a.tenant == "other" else c).post("/api/v1/jobs", json=spec)
            assert r.status_code == 201, (a.name, r.text)
            ids[r.json()["id"]] = a
            if a.watch is not None:
                watched[r.json()["id"]] = _watch(a.watch)
        cancelled: set[str] = set()
        beside: dict[str, str] = {}  # attack job -> the other tenant's job beside it
        started: dict[str, float] = {}
        slowest = 0.0  # the slowest status poll (s): a starved API shows here
        done: dict[str, dict[str, Any]] = {}
        end = time.time() + 480  # Ray on a small shared machine starts an actor process per rank
        while len(done) < len(ids) and time.time() < end:
            for jid, a in ids.items():
                if jid in done:
                    continue
                cl = other if a.tenant == "other" else c
                t0 = time.time()
                j = cl.get(f"/api/v1/jobs/{jid}").json()
                slowest = max(slowest, time.time() - t0)
                if j["state"] == "running" and jid not in started:
                    # a cancel attack is cancelled once its command has really started (it says so)
                    if (
                        a.cancel_after is None
                        or "started" in cl.get(f"/api/v1/jobs/{jid}/logs").json()["logs"]
                    ):
                        started[jid] = time.time()
                if j["state"] == "running" and jid in started:
                    if a.cancel_after is not None and jid not in cancelled:
                        if time.time() - started[jid] >= a.cancel_after:
                            assert cl.post(f"/api/v1/jobs/{jid}/cancel").status_code == 200
                            cancelled.add(jid)
                if (
                    a.beside is not None
                    and jid not in beside
                    and j["state"] == "running"
                    and jid in started
                    and time.time() - started[jid] >= a.beside_after
                ):
                    beside[jid] = _submit_beside(other, a)
                if j["state"] in ("succeeded", "failed", "cancelled"):
                    done[jid] = j
            time.sleep(0.3)
        assert len(done) == len(ids), [ids[j].name for j in ids if j not in done]
        beside_done = {
            jid: wait(lambda b=b: _ended(other, b), 120, f"the job beside {ids[jid].name}")
            for jid, b in beside.items()
        }
        time.sleep(1.0)  # the executor keeps the last log lines when it reports the end
        for jid, a in ids.items():
            logs = all_logs(other if a.tenant == "other" else c, jid)
            if jid in watched:
                done[jid] = {**done[jid], "watched": tuple(watched[jid])}
            if a.beside is not None:
                b = beside_done.get(jid)
                done[jid] = {
                    **done[jid],
                    "seen_running": started.get(jid),
                    "slowest_poll": round(slowest, 2),
                    "beside": b,
                    "beside_logs": all_logs(other, b["id"]) if b else "",
                }
            yield a, done[jid], logs


def _watch(needle: str, timeout: float = 300.0) -> list[float | None]:
    """[first seen, gone] of host processes holding ``needle``, filled in by a watcher thread."""
    import threading

    seen: list[float | None] = [None, None]

    def run() -> None:
        end = time.time() + timeout
        while time.time() < end:
            alive = bool(_host_procs(needle))
            now = time.time()
            if alive and seen[0] is None:
                seen[0] = now
            elif not alive and seen[0] is not None:
                seen[1] = now
                return
            time.sleep(0.05)

    threading.Thread(target=run, daemon=True).start()
    return seen


def _ended(c: httpx.Client, jid: str) -> dict[str, Any] | None:
    j: dict[str, Any] = c.get(f"/api/v1/jobs/{jid}").json()
    return j if j["state"] in ("succeeded", "failed", "cancelled") else None


def _submit_beside(other: httpx.Client, a: Attack) -> str:
    spec = {
        "name": f"beside-{a.name}",
        "command": a.beside,
        "resources": {"type": "rngd", "count": 1},
        "kind": "batch",
        "max_run_time": 60,
    }
    r = other.post("/api/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def assert_attack_failed(ctx: Ctx, a: Attack, job: dict[str, Any], logs: str) -> None:
    if os.environ.get("ACCELPOOL_HOSTILE_VERBOSE"):
        print(f"--- {a.name}: {job['state']} {job['reason']}\n{logs[-600:]}")
    assert job["state"] in a.expect_state, (a.name, job["state"], job["reason"])
    assert WIN not in logs, f"{a.name}: the attack worked:\n{logs[-2000:]}"
    for secret in (ctx.admin, ctx.other, ctx.member, ctx.victim_secret, ctx.canary):
        assert secret not in logs, f"{a.name}: a secret leaked into the job's log"
    if a.check is not None:
        a.check(ctx, job, logs)
