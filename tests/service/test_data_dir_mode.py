"""The data dir holds the database (every job's command line and environment, the token hashes), the
job-token key and the admin token: made 0700, and an existing one open to the group or others closed (a
review found it 0755 with the SQLite file 0644, readable by any user of the host)."""

from __future__ import annotations

import stat
from pathlib import Path

from accelpool.service.options import Options, make_data_dir
from accelpool.service.server import Service


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    d = tmp_path / "new" / "data"
    make_data_dir(d)
    assert _mode(d) == 0o700


def test_an_open_data_dir_is_closed(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    make_data_dir(d)
    assert _mode(d) == 0o700


def test_the_service_makes_its_data_dir_private(tmp_path: Path) -> None:
    d = tmp_path / "svc"
    service = Service(Options(data_dir=d, executor="fake", demo=False), api=False)
    try:
        assert _mode(d) == 0o700 and (d / "accelpool.sqlite").exists()
    finally:
        service.stop()
