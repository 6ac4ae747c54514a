"""A gunicorn of ours for a benchmark: a free port, wait until it answers, stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(
    env: dict[str, str], port: int, log: Path, *, workers: int = 2, options: tuple = ()
) -> subprocess.Popen:
    """Serve wsgi:app with our venv's gunicorn (not production's gunicorn.conf.py) on the
    port, its output in the log; return once it answers /healthz."""
    server = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn, fixed arguments
        [
            str(Path(sys.executable).parent / "gunicorn"),
            # Not ./gunicorn.conf.py (production's, which gunicorn reads by itself).
            "--config",
            os.devnull,
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            *options,
            "wsgi:app",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    return wait_until_healthy(server, port, log)


def wait_until_healthy(server: subprocess.Popen, port: int, log: Path) -> subprocess.Popen:
    """Return the server once it answers /healthz; exit with its log if it doesn't in 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    sys.exit("gunicorn did not answer /healthz within 30 s")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
