"""Run a real Celery worker in a subprocess for integration tests."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def celery_worker(env: dict[str, str], *, ready_timeout: float = 60.0):
    """Start ``celery -A revops worker`` with ``env`` on top of ours; stop it afterwards."""
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "revops.settings.local", **env}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "revops",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + ready_timeout
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise RuntimeError("worker exited early:\n" + "".join(lines))
            lines.append(line)
            if " ready." in line:
                break
        else:
            raise RuntimeError("worker not ready in time:\n" + "".join(lines))
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
