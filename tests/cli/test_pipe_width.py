"""Tables written to a pipe are not wrapped at Rich's 80 columns (each cell of `accelpool jobs | grep ...`
was split over lines); COLUMNS still wins where it is set."""

from __future__ import annotations

import os
import subprocess
import sys

from accelpool.cli.render import PIPE_WIDTH

CODE = "import sys; from accelpool.cli.render import console; sys.stderr.write(str(console.width))"


def _width(**env: str) -> int:
    base = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    p = subprocess.run([sys.executable, "-c", CODE], env={**base, **env}, capture_output=True, text=True)
    return int(p.stderr)


def test_a_pipe_gets_the_wide_width_and_columns_wins():
    assert _width() == PIPE_WIDTH
    assert _width(COLUMNS="100") == 100
