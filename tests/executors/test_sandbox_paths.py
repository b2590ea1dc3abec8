"""Which host directories a job may bind read-write (executors/sandbox_paths.py, a review's findings): a
job's ``checkpoint_dir`` of ``/dev/shm`` wrote into the host's shared memory, ``/var/tmp`` into the host's
scratch, ``/etc/cron.d/x`` was made on the host by the root service, and one tenant's job wrote another
tenant's checkpoint dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from accelpool.executors import sandbox as sb

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="uids are switched only by a root service")


def _plan(tmp_path: Path, config: sb.SandboxConfig | None = None, **kw: Any) -> dict[str, Any]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    args: dict[str, Any] = dict(checkpoint_dir=None, workdir=None, tenant="a", env={})
    args.update(kw)
    return sb.plan(
        config or sb.SandboxConfig(),
        command="true",
        work_dir=str(work),
        devices=[],
        log_path=str(tmp_path / "log"),
        exit_path=str(tmp_path / "exit"),
        **args,
    )


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/dev/shm", "in the system directory '/dev'"),
        ("/var/tmp", "in the system directory '/var'"),
        ("/var/tmp/mine", "in the system directory '/var'"),
        ("/etc/cron.d/made-by-a-job", "in the system directory '/etc'"),
        ("/opt/app/plugins", "in the system directory '/opt'"),
        ("/tmp", "a top-level directory"),
        ("/home", "a top-level directory"),
        ("/", "a top-level directory"),
    ],
)
def test_shared_and_system_trees_are_refused_naming_the_path(tmp_path: Path, path: str, says: str) -> None:
    with pytest.raises(sb.SandboxError, match="checkpoint_dir") as e:
        _plan(tmp_path, checkpoint_dir=path)
    assert says in str(e.value) and path in str(e.value)
    assert not os.path.exists("/etc/cron.d/made-by-a-job")


@root_only
def test_another_tenants_dir_is_refused_and_a_new_one_is_allowed(tmp_path: Path) -> None:
    config = sb.SandboxConfig(tenant_ids={"a": (41001, 41001), "b": (41002, 41002)})
    theirs = tmp_path / "b-ckpt"
    theirs.mkdir()
    os.chown(theirs, 41002, 41002)
    with pytest.raises(sb.SandboxError, match="belongs to uid 41002, not to the job's uid 41001"):
        _plan(tmp_path, config, checkpoint_dir=str(theirs))
    with pytest.raises(sb.SandboxError, match="would be made inside .* uid 41002"):
        _plan(tmp_path, config, checkpoint_dir=str(theirs / "inside"))
    with pytest.raises(sb.SandboxError, match="belongs to uid 0"):  # the operator's, not the tenant's
        _plan(tmp_path, config, checkpoint_dir=str(tmp_path))
    own = tmp_path / "a-home"
    own.mkdir()
    os.chown(own, 41001, 41001)
    mine = _plan(tmp_path, config, checkpoint_dir=str(own / "new" / "ckpt"))  # made for it, as its uid
    assert [str(own / "new" / "ckpt")] * 2 in [a for a in _binds(mine)]
    theirs_too = _plan(tmp_path, config, tenant="b", checkpoint_dir=str(theirs))  # b's own
    assert theirs_too["uid"] == 41002


@root_only
def test_a_dir_is_made_only_where_the_jobs_uid_could_make_it(tmp_path: Path) -> None:
    """A root-owned dir such as /home: a ``/home/<user to come>`` made for a job and given to its uid would
    be that user's home with the tenant's files in it (a review). A sticky world-writable dir (/tmp) and
    the operator's checkpoint root are fine."""
    config = sb.SandboxConfig(tenant_ids={"a": (41001, 41001)}, job_roots=(str(tmp_path / "roots"),))
    homes = tmp_path / "home"
    homes.mkdir(mode=0o755)
    with pytest.raises(sb.SandboxError, match="would be made inside .*home.* belongs to uid 0"):
        _plan(tmp_path, config, checkpoint_dir=str(homes / "future-user"))
    assert not (homes / "future-user").exists()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    assert [str(shared / "ckpt")] * 2 in _binds(_plan(tmp_path, config, checkpoint_dir=str(shared / "ckpt")))
    open_not_sticky = tmp_path / "open"
    open_not_sticky.mkdir()
    open_not_sticky.chmod(0o777)
    with pytest.raises(sb.SandboxError, match="would be made inside"):
        _plan(tmp_path, config, checkpoint_dir=str(open_not_sticky / "ckpt"))
    first = _plan(tmp_path, config, checkpoint_dir=str(tmp_path / "roots" / "j0"))  # the root made with it
    assert [str(tmp_path / "roots" / "j0")] * 2 in _binds(first)
    (tmp_path / "roots").mkdir()
    ok = _plan(tmp_path, config, checkpoint_dir=str(tmp_path / "roots" / "a" / "j1"))
    assert [str(tmp_path / "roots" / "a" / "j1")] * 2 in _binds(ok)


@root_only
def test_a_workdir_of_another_uid_is_bound_read_only(tmp_path: Path) -> None:
    config = sb.SandboxConfig(tenant_ids={"a": (41001, 41001)})
    code = tmp_path / "code"
    code.mkdir()
    argv = _plan(tmp_path, config, workdir=str(code))["argv"]
    assert argv[argv.index(str(code)) - 1] == "--ro-bind"
    os.chown(code, 41001, 41001)
    argv = _plan(tmp_path, config, workdir=str(code))["argv"]
    assert argv[argv.index(str(code)) - 1] == "--bind"


def _binds(plan: dict[str, Any]) -> list[list[str]]:
    argv = plan["argv"]
    return [[argv[i + 1], argv[i + 2]] for i, a in enumerate(argv) if a == "--bind"]


@root_only
def test_the_dirs_made_for_a_job_are_its_uids_alone(tmp_path: Path) -> None:
    made = tmp_path / "ckpt" / "j1"
    sb.prepare_dirs({"chown": [str(tmp_path / "work"), str(made)], "uid": 41001, "gid": 41001})
    for d in (tmp_path / "work", made):
        st = d.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (41001, 0o700)


def test_the_operators_checkpoint_root_may_lie_in_a_system_tree(tmp_path: Path) -> None:
    """A root service's data dir is ~/.accelpool (/root) or /var/lib/accelpool: the default checkpoint dirs
    next to it must not be refused (a review found every job of such a service failing at start)."""
    from accelpool.executors.sandbox_paths import writable
    from accelpool.service.options import Options, sandbox_config

    assert writable("/var/lib/ap-checkpoints/j1", (), "checkpoint_dir", ("/var/lib/ap-checkpoints",))
    with pytest.raises(ValueError, match="system directory '/var'"):
        writable("/var/lib/other/j1", (), "checkpoint_dir", ("/var/lib/ap-checkpoints",))
    with pytest.raises(ValueError, match="system directory '/var'"):  # the root itself is no job's dir
        writable("/var/lib/ap-checkpoints", (), "checkpoint_dir", ("/var/lib/ap-checkpoints",))
    cfg = sandbox_config(Options(data_dir=Path("/root/.accelpool")))
    assert "/root/.accelpool-checkpoints" in cfg.job_roots
    assert sb.check_writable("/root/.accelpool-checkpoints/j-1", cfg, "checkpoint_dir")


@root_only
def test_a_dir_swapped_for_a_link_while_it_is_made_is_not_followed(tmp_path: Path) -> None:
    """Root makes the job's dirs: a tenant who swaps one for a symlink (its parent is the tenant's) must not
    get root to make or chown the link's target (a review's race: /etc/shadow given to the tenant)."""
    target = tmp_path / "precious"
    target.mkdir()
    parent = tmp_path / "tenants"
    parent.mkdir()
    (parent / "ckpt").symlink_to(target)
    with pytest.raises(OSError):
        sb.prepare_dirs(
            {"chown": [str(tmp_path / "work"), str(parent / "ckpt" / "j1")], "uid": 41001, "gid": 41001}
        )
    assert not (target / "j1").exists() and target.stat().st_uid == 0
    with pytest.raises(OSError):
        sb.prepare_dirs(
            {"chown": [str(tmp_path / "work2"), str(parent / "ckpt")], "uid": 41001, "gid": 41001}
        )
    assert target.stat().st_uid == 0 and target.stat().st_mode & 0o777 != 0o700


@root_only
def test_a_group_writable_workdir_stays_writable(tmp_path: Path) -> None:
    config = sb.SandboxConfig(tenant_ids={"a": (41001, 41001)})
    shared = tmp_path / "project"
    shared.mkdir()
    os.chown(shared, 0, 41001)
    shared.chmod(0o775)
    argv = _plan(tmp_path, config, workdir=str(shared))["argv"]
    assert argv[argv.index(str(shared)) - 1] == "--bind"


def test_an_unprivileged_service_binds_writable_only_the_checkpoint_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service not run as root runs every job as its own uid (in a user namespace): a review's job bound
    the service's site-packages (``workdir``) and ``~/.ssh`` (``checkpoint_dir``) read-write and wrote a
    ``.pth`` that ran as the service at its next start. Now only the job's own work dir and dirs in the
    operator's checkpoint root are writable; another ``workdir`` is bound read-only, another
    ``checkpoint_dir`` refused naming the root."""
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    roots = tmp_path / "roots"
    config = sb.SandboxConfig(job_roots=(str(roots),))
    site_packages = tmp_path / "svc" / "site-packages"
    site_packages.mkdir(parents=True)
    argv = _plan(tmp_path, config, workdir=str(site_packages))["argv"]
    assert argv[argv.index(str(site_packages)) - 1] == "--ro-bind"
    with pytest.raises(
        sb.SandboxError, match=r"outside the operator's checkpoint root .*roots.*not run as root"
    ):
        _plan(tmp_path, config, checkpoint_dir=str(tmp_path / "svc" / "home" / ".ssh"))
    assert not (tmp_path / "svc" / "home").exists()
    with pytest.raises(sb.SandboxError, match="none set"):
        _plan(tmp_path, sb.SandboxConfig(), checkpoint_dir=str(tmp_path / "elsewhere"))
    ok = _plan(tmp_path, config, checkpoint_dir=str(roots / "a" / "j1"))
    assert [str(roots / "a" / "j1")] * 2 in _binds(ok)
    (roots / "code").mkdir(parents=True)
    argv = _plan(tmp_path, config, workdir=str(roots / "code"))["argv"]
    assert argv[argv.index(str(roots / "code")) - 1] == "--bind"
