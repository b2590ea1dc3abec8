"""Which host paths a sandboxed job may use: the PATH it gets (``job_path``) and the directories it may
write (``writable``). Standard library only: shipped by value to Ray nodes with executors/sandbox.py.

A job's PATH is the service's without the entries the job could not use: relative ones, missing ones,
ones the job's uid may not search (a root service's ``~/.pyenv/shims``), and ones the sandbox hides
(protected dirs, each covered by an empty tmpfs, and the private /tmp, /var/tmp and /dev/shm). Without this
a job's ``python`` that is not installed would find an entry it may not open and fail with "Permission
denied" instead of "not found".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

# host trees no job may bind read-write, nor anything inside them (the host's /dev/shm and /var/tmp are
# shared scratch of every user; a job's dir under /etc, or in an application's tree under /opt, would be
# made there by the root service, owned by the tenant: a cron.d, a plugins dir)
SYSTEM = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var",
)


def inside(path: str, parent: str) -> bool:
    """Whether ``path`` is ``parent`` or under it (both absolute)."""
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def writable(path: str, protect: Sequence[str], what: str, roots: Sequence[str] = ()) -> str:
    """The real path of a directory the job may write (work dir, checkpoint dir), else ValueError naming
    it. Symlinks are resolved first, so a link planted by an earlier job cannot point a later job's bind at
    the data dir or another job's files. Refused: ``/`` and every top-level directory itself (``/tmp``,
    ``/home``, ``/srv``: everyone's), anything in a system tree (SYSTEM) but inside one of the operator's
    ``roots`` (the checkpoint root: a root service's is often under /root or /var/lib), and the protected
    paths."""
    real = os.path.realpath(path)
    if any(inside(real, r) and real != r for r in roots):
        pass
    elif real.count("/") <= 1:
        raise ValueError(f"{what} '{path}' resolves to '{real}', a top-level directory that jobs may not use")
    else:
        for t in SYSTEM:
            if inside(real, t):
                raise ValueError(f"{what} '{path}' resolves to '{real}', in the system directory '{t}'")
    for p in protect:
        if inside(real, p) or inside(p, real):
            raise ValueError(f"{what} '{path}' resolves to '{real}', which jobs may not use")
    return real


def veiled(protect: Sequence[str], uid: int | None) -> tuple[str, ...]:
    """The host dirs each covered by an empty tmpfs in a job's sandbox: the protected paths and, where
    the service is not root (``uid`` None: every job runs as the service's own uid and could read what it
    reads), the service user's home and runtime dir (``~/.ssh``, ``~/.pgpass``, cloud credentials, an
    ssh-agent socket), with the protected paths inside them left out. What a job needs from there is bound
    back on top: its work dir, ``workdir``, checkpoint dir and the operator's volumes."""
    if uid is not None:
        return tuple(protect)
    homes: list[str] = []
    try:
        import pwd

        named = [os.path.expanduser("~"), pwd.getpwuid(os.getuid()).pw_dir, f"/run/user/{os.getuid()}"]
    except (ImportError, KeyError):
        named = [os.path.expanduser("~"), f"/run/user/{os.getuid()}"]
    for d in named:
        real = os.path.realpath(d)
        if real != "/" and os.path.isdir(real) and real not in homes:
            homes.append(real)
    rest = [p for p in protect if not any(inside(os.path.realpath(p), h) for h in homes)]
    return (*homes, *rest)


def owner_error(real: str, uid: int | None, what: str, path: str, roots: Sequence[str] = ()) -> str | None:
    """Why a job running as ``uid`` may not write the directory ``real`` (None: it may). A service that
    gives each tenant its own uid (root, ``tenant_ids``) binds read-write only a directory of that uid, or
    one it will create (as root, then given to that uid) only where the uid could have made it itself: the
    nearest existing directory above belongs to that uid, or lets everyone create and keeps each entry its
    maker's (world-writable and sticky, like /tmp), or lies in one of the operator's ``roots`` (the
    checkpoint root). Another tenant's checkpoint dir (readable by its uid alone) stays its own, and a
    root-owned directory such as /home gets no tenant-owned entry (a ``/home/<user to come>`` made for a
    job would be that user's home, with the tenant's keys in it). ``uid`` None (an unprivileged service:
    every job runs as the service's own uid, in a user namespace): only inside ``roots``, since anywhere
    else the job would write the service's own files (a review's job wrote a ``.pth`` into the service's
    site-packages, run as the service at its next start, and ``~/.ssh/authorized_keys``)."""
    if uid is None:
        if any(inside(real, r) for r in roots):
            return None
        return (
            f"{what} '{path}' is outside the operator's checkpoint root "
            f"({', '.join(repr(r) for r in roots) or 'none set'}): this service does not run as root, so "
            "every job runs as the service's own uid, and a job writes only its own work dir and inside the "
            "checkpoint root"
        )
    probe = real
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    try:
        st = os.stat(probe)
    except OSError as exc:
        return f"{what} '{path}': {exc.strerror}"
    owner = st.st_uid
    if probe == real:
        if owner != uid:
            return f"{what} '{path}' belongs to uid {owner}, not to the job's uid {uid}: a job writes only its own dirs"
        return None
    if owner == uid or any(inside(real, r) for r in roots):
        return None
    if st.st_mode & 0o1002 == 0o1002:  # sticky and world-writable: the uid could make it there itself
        return None
    return (
        f"{what} '{path}' would be made inside '{probe}', which belongs to uid {owner}, not to the job's uid "
        f"{uid}: a job's dir is made only inside its uid's own dirs, a sticky shared dir such as /tmp, or the "
        "operator's checkpoint root"
    )


def may_bind_writable(real: str, uid: int | None, gid: int | None, roots: Sequence[str]) -> bool:
    """Whether a job's ``workdir`` ``real`` is bound read-write: where its uid may write it by the mode
    bits (``may_write``); for an unprivileged service (``uid`` None: the job runs as the service's own
    uid) only inside the operator's ``roots`` (owner_error says why), else it is bound read-only."""
    if uid is None or gid is None:
        return any(inside(real, r) for r in roots) and os.access(real, os.W_OK)
    return may_write(real, uid, gid)


def may_write(real: str, uid: int, gid: int) -> bool:
    """Whether ``uid``/``gid`` may write the directory ``real`` by its mode bits (owner, group, other)."""
    st = os.stat(real)
    bit = 0o200 if st.st_uid == uid else 0o020 if st.st_gid == gid else 0o002
    return bool(st.st_mode & bit)


def make_dirs(dirs: Sequence[str], uid: int | None, gid: int | None) -> None:
    """Create the job's writable dirs (real paths: the plan's), the first (its work dir) and any made here
    given to ``uid``/``gid`` with mode 0700 when the service switches uids (every sandbox sees the host's /
    read-only: another tenant's job could read what a job saved). Each component is opened relative to its
    parent with O_NOFOLLOW and the ownership set on the open directory, so a directory a tenant swaps for a
    symlink while this runs fails the start instead of having root create or chown the link's target."""
    for i, d in enumerate(dirs):
        fd, created = _open_made(d)
        try:
            if uid is not None and gid is not None and (created or i == 0):
                try:
                    os.fchown(fd, uid, gid)
                    os.fchmod(fd, 0o700)
                except OSError as exc:  # e.g. root squashed on shared storage: the job may not write there
                    logging.getLogger(__name__).warning("could not give %s to uid %s: %s", d, uid, exc)
        finally:
            os.close(fd)


def _open_made(path: str) -> tuple[int, bool]:
    """An O_DIRECTORY fd of ``path``, made where missing (parents 0755), never through a symlink; and whether
    its last component was made here."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    created = False
    try:
        for name in [p for p in path.split("/") if p]:
            try:
                nxt = os.open(name, flags, dir_fd=fd)
                created = False
            except FileNotFoundError:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                    created = True
                except FileExistsError:
                    created = False
                nxt = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd, created


def searchable(path: str, uid: int | None, gid: int | None) -> bool:
    """Whether ``uid``/``gid`` (None: this process) may search the directory ``path`` and every directory
    above it: the owner, group or other x bit that applies to them (supplementary groups are not
    counted: a job's uid has none; uid 0 searches everything)."""
    if uid is None:
        return os.path.isdir(path) and os.access(path, os.X_OK)
    parts = path.rstrip("/").split("/")
    for i in range(1, len(parts) + 1):
        try:
            st = os.stat("/".join(parts[:i]) or "/")
        except OSError:
            return False
        bit = 0o100 if st.st_uid == uid else 0o010 if st.st_gid == gid else 0o001
        if uid != 0 and not st.st_mode & bit:
            return False
    return os.path.isdir(path)


def job_path(path: str | None, uid: int | None, gid: int | None, hidden: Sequence[str], fallback: str) -> str:
    """The service's ``path`` (None: ``fallback``) without the entries a job of ``uid``/``gid`` could not
    use (relative, not searchable, or under one of ``hidden``), each once; ``fallback`` when none is left."""
    out: list[str] = []
    for entry in (path or fallback).split(":"):
        if not entry.startswith("/") or entry in out:
            continue
        real = os.path.realpath(entry)
        if any(inside(real, p) or inside(entry, p) for p in hidden) or not searchable(real, uid, gid):
            continue
        out.append(entry)
    return ":".join(out) or fallback
