"""The background processes of `make sam-local`, each in a session of its own and known by a pid file in the state
directory, so that stopping ends exactly what was started (its whole process group) and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def wait_until_answers(url: str, process: subprocess.Popen, log: Path, timeout_s: float, any_status: bool) -> None:
    """Until `url` answers (with any HTTP status when `any_status`: a server that says 404 to GET / is up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            if any_status:
                return
            time.sleep(0.3)
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout_s:.0f} s; see {log}")


def start(
    name: str,
    command: list[str],
    state_dir: Path,
    probe_url: str | None,
    timeout_s: float,
    *,
    any_status: bool = False,
    env: dict | None = None,
) -> bool:
    """Starts one process and waits until `probe_url` answers; False when it was running already."""
    pid_file = state_dir / f"{name}.pid"
    if running_pid(pid_file):
        print(f"sam-local: {name} already runs (pid {pid_file.read_text().strip()})", file=sys.stderr)
        return False
    log = state_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
            env=env,
        )
    pid_file.write_text(str(process.pid))
    if probe_url:
        wait_until_answers(probe_url, process, log, timeout_s, any_status)
    where = f" on {probe_url.rsplit('/', 1)[0]}" if probe_url else ""
    print(f"sam-local: {name}{where} (pid {process.pid}, log {log})", file=sys.stderr)
    return True


def stop(name: str, state_dir: Path, *, first_signal: int = signal.SIGTERM, grace_s: float = 5) -> None:
    """Ends the process group of `name`: `first_signal`, then SIGKILL after `grace_s`. SIGINT is what SAM takes
    as Ctrl+C, on which it removes its warm containers before exiting; SIGKILL would leave them running."""
    pid_file = state_dir / f"{name}.pid"
    pid = running_pid(pid_file)
    if pid:
        os.killpg(pid, first_signal)
        deadline = time.monotonic() + grace_s
        while running_pid(pid_file) and time.monotonic() < deadline:
            time.sleep(0.1)
        if running_pid(pid_file):
            print(f"sam-local: {name} (pid {pid}) outlived {grace_s:.0f} s; killing it", file=sys.stderr)
            os.killpg(pid, signal.SIGKILL)
        print(f"sam-local: stopped {name} (pid {pid})", file=sys.stderr)
    pid_file.unlink(missing_ok=True)
