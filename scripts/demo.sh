#!/usr/bin/env bash
# Set up accelpool and run it on embedded defaults: SQLite, the local executor and a demo pool of GPUs and
# Korean NPUs (emulated), with a demo program, grants and example jobs. Extra arguments go to `accelpool up`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-ray
exec .venv/bin/accelpool up --demo "$@"
