"""The processes of a sandbox's pid namespace, as program text (``PIDNS``) for the two programs that stop
a sandbox's processes one by one: the sandbox wrapper (``sandbox_wrapper.WRAPPER``: a graceful stop sends
SIGTERM to each) and the Slurm rank (``slurm_batch``: SIGTERM at ``max_run_time``). Both run outside the
package's environment, so they cannot import it: the wrapper as ``python -I -S -c WRAPPER`` (no site
packages; on Ray nodes that need no accelpool), the rank as ``python -c`` on a Slurm node (accelpool need
not be installed there). Each is assembled from text, so ``PIDNS`` is put in front of both, as
``sandbox_limits.CGROUPS`` is for the wrapper. Standard library only; the program imports ``os`` before
calling it.

``pidns_members(leader)``: the pids sharing the pid namespace of process ``leader`` (the sandbox's first
process: bubblewrap's child, the namespace's reaper), ``leader`` left out; ``[]`` when ``leader`` is gone.
"""

from __future__ import annotations

PIDNS = r"""
def pidns_members(leader):
    try:
        ns = os.readlink("/proc/%s/ns/pid" % leader)
    except OSError:
        return []
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and d != str(leader):
            try:
                if os.readlink("/proc/%s/ns/pid" % d) == ns:
                    out.append(int(d))
            except OSError:
                pass  # gone meanwhile
    return out
"""
