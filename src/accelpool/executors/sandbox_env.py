"""What a sandboxed job's first process runs, and how the job's environment reaches it.

The job's environment (its spec's ``env``, the device and progress variables) is never the environment of
the processes that set the sandbox up: bwrap, and setpriv where a root service drops to the tenant's uid,
run as root or as the service with ``{"PATH": SAFE_PATH}`` alone. A job that brought ``LD_PRELOAD``,
``LD_AUDIT``, ``GCONV_PATH`` or ``GLIBC_TUNABLES`` would otherwise have had its code loaded into bwrap
before any namespace existed: as root on the host (a tenant's test, with a library it had written into its
checkpoint directory). Instead the launcher hands bwrap the environment as a file (``--ro-bind-data`` from
a memfd, at ``ENV_FILE``, mode 0444: nothing of it on a command line, nothing on the host's disk) and
JOB_INIT, already running as the tenant's uid, exports it before it starts the command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ENV_FILE = "/tmp/.accelpool-env"
"""Where the job's environment is inside the sandbox (on its private /tmp, read-only)."""

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

JOB_INIT = (
    "s=\n"
    'trap \'if [ -z "$s" ]; then s=1; if [ -n "$4" ]; then trap "" TERM; kill -TERM -1; fi; fi\' TERM\n'
    '(if [ -n "$5" ]; then . "$5"; fi; exec "$2" -c "$1") <&0 & j=$!; if [ -n "$s" ]; then kill -TERM "$j" 2>/dev/null; fi\n'
    'while :; do wait "$j"; rc=$?; kill -0 "$j" 2>/dev/null || break; done\n'
    'while [ -n "$s" ]; do l=; for d in /proc/[0-9]*; do n=${d#/proc/}; if [ "$n" != 1 ] && [ "$n" != "$$" ]; '
    'then l=1; break; fi; done; [ -z "$l" ] && break; "$3" 0.1 || "$3" 1 || sleep 1 || break; done 2>/dev/null\n'
    'exit "$rc"\n'
)
"""A sandbox's first process (``sh -c JOB_INIT accelpool-job COMMAND SHELL SLEEP FORWARD [ENV_FILE]``): it
runs the command line with the job's environment (ENV_FILE, when given, exported in the command's process
only, so a job's ``s`` or ``rc`` does not touch the init's own; under bwrap; a container gets it from podman), catches SIGTERM (FORWARD: passes it on to every process, in a container) and after a stop
waits until no other process of the sandbox is left, so that a program the command line's shell started
may save after the shell died (docs/security.md, "stop"; tests/executors/test_local_executor.py)."""


def env_script(env: Mapping[str, str]) -> str:
    """``env`` as POSIX shell exports (every value single-quoted: any byte but NUL stays as it is).
    ValueError names a variable that is not a shell name (it could not be exported)."""
    bad = [k for k in env if not NAME.match(k)]
    if bad:
        raise ValueError(f"'{bad[0]}' is not a valid environment variable name")
    quote = "'\\''"
    return "".join(f"export {k}='{v.replace(chr(39), quote)}'\n" for k, v in env.items())
