"""Run `accelpool up` as a real subprocess (e2e and crash tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from accelpool.service.startup import wait_healthy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path, *args: str, port: int | None = None) -> None:
        self.data_dir, self.args = data_dir, args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, healthy_within: float | None = 60.0) -> ServerProcess:
        """Start `accelpool up`; wait until it answers /healthz (at most ``healthy_within`` s; None: do not
        wait, the caller watches the start itself)."""
        cmd = [
            sys.executable,
            "-m",
            "accelpool.cli.main",
            "up",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            *self.args,
        ]
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ}, start_new_session=True
        )
        if healthy_within is not None and not wait_healthy(self.url, timeout=healthy_within):
            self.kill()
            raise RuntimeError(
                "server did not become healthy: "
                + (self.data_dir.parent / f"server-{self.port}.log").read_text()
            )
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """``sig`` to the whole process group (the supervisor and its API and scheduler processes; the
        jobs run in sessions of their own and survive, as after a machine-wide kill of the service)."""
        if self.proc is not None and self.proc.poll() is None:
            if sig == signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)  # the supervisor forwards it and waits for its children
            self.proc.wait(timeout=60)
        if self.proc is not None and sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)  # any child the supervisor had not reaped
