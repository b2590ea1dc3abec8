#!/usr/bin/env bash
# Set up accelpool on a fresh machine: a virtual environment in .venv with accelpool and its tools.
# Safe to run again: it only installs what is missing. Usage: bash scripts/setup.sh [--no-ray]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python >= 3.11 is required" >&2; exit 2; }

# The job sandbox needs bubblewrap (and setpriv, util-linux, when the service runs as root). Installed here
# when missing and we are root on Debian/Ubuntu; otherwise `accelpool up` says what is missing and refuses
# to run tenant jobs unsandboxed unless started with --allow-unsandboxed.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing bubblewrap (the job sandbox)" >&2
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 ||
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null)) >&2
  else
    echo "setup: warning: bubblewrap (bwrap) is missing; install it (apt-get install bubblewrap) or jobs cannot run sandboxed" >&2
  fi
fi

# Jobs with an `image:` run in podman (with runc; docs/security.md); the tests build a tiny image from a
# static busybox. Optional for a pool without image jobs: installed when missing and we are root on Debian.
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 ||
  { [ ! -x /bin/busybox ] && [ ! -x /usr/bin/busybox ]; }; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing podman, runc and busybox-static (jobs with an image)" >&2
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc busybox-static >/dev/null 2>&1 ||
      (apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc busybox-static >/dev/null)) >&2
  else
    echo "setup: note: podman/runc missing; jobs with an 'image' will fail with that reason" >&2
  fi
fi

extras="dev,ray"
[ "${1:-}" = "--no-ray" ] && extras="dev"

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.accelpool-installed-$extras
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  touch "$stamp"
fi
# byte-compile the package once, as a non-editable install would: an editable install compiles at import
# time, and where PYTHONDONTWRITEBYTECODE is set (this kind of machine) every process would compile
# every module again (about 0.2 s of each `accelpool` command's start)
.venv/bin/python -m compileall -q src >/dev/null || true
echo "setup: ready (.venv, extras: $extras)"
