"""A Slurm controller outage without touching the shared test Slurm: wrappers around the Slurm commands that
fail as a silent controller makes them fail while a marker file exists (give the directory as the Slurm
executor's ``bin_dir``). Stopping slurmctld itself would break every other test using that Slurm."""

from __future__ import annotations

import shutil
from pathlib import Path

SLURM_COMMANDS = ("sbatch", "squeue", "sinfo", "scancel", "scontrol")


def slurm_wrappers(bin_dir: Path) -> Path:
    """Write the wrappers into ``bin_dir``; returns the marker file: the controller is 'down' while it exists."""
    bin_dir.mkdir(parents=True)
    for name in SLURM_COMMANDS:
        real = shutil.which(name)
        assert real, f"{name} is not installed"
        path = bin_dir / name
        path.write_text(
            "#!/bin/sh\n"
            f'if [ -e "{bin_dir}/outage" ]; then\n'
            f'  echo "{name}: error: Unable to contact slurm controller (connect failure)" >&2; exit 1\n'
            "fi\n"
            f'exec {real} "$@"\n'
        )
        path.chmod(0o755)
    return bin_dir / "outage"
