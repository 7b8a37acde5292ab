"""The handle the sam_local tests hold on a `scripts/sam-local.sh` session: its environment (state directory, ports,
index) and the commands run in it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAM_LOCAL = REPO_ROOT / "scripts" / "sam-local.sh"
COMMAND_TIMEOUT_S = 600


@dataclass
class Invocation:
    response: dict
    logs: str
    seconds: float

    @property
    def report(self) -> str:
        """The runtime's REPORT line (Duration, Billed Duration, Memory)."""
        return next(line for line in self.logs.splitlines() if line.startswith("REPORT RequestId"))


@dataclass
class SamLocal:
    env: dict
    env_file: Path
    build_dir: Path
    s3_url: str  # the moto server, as this test process reaches it
    s3_url_seen_by_functions: str
    index_url: str  # the OpenSearch index the functions write, as this test process reaches it
    work_dir: Path
    ui_port: int  # the web UI's origin, which the test build's CORS allows
    build: subprocess.CompletedProcess | None = None

    def script(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(SAM_LOCAL), *args], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
        )

    def invoke(self, function: str, event: dict, env_vars: dict | None = None) -> Invocation:
        """`scripts/sam-local.sh invoke`; `env_vars` replaces the --env-vars document for this one call."""
        event_file = self.work_dir / f"event-{uuid.uuid4().hex[:8]}.json"
        event_file.write_text(json.dumps(event))
        env = self.env
        if env_vars is not None:
            env_file = self.work_dir / f"env-{uuid.uuid4().hex[:8]}.json"
            env_file.write_text(json.dumps(env_vars))
            env = dict(self.env, SAM_LOCAL_ENV_FILE=str(env_file))
        started = time.monotonic()
        done = subprocess.run(
            [str(SAM_LOCAL), "invoke", function, str(event_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            cwd=REPO_ROOT,
        )
        seconds = time.monotonic() - started
        assert done.returncode == 0, done.stderr[-4000:]
        last_line = done.stdout.strip().splitlines()[-1]  # the README's promise: the response is the last line
        return Invocation(json.loads(last_line), done.stderr, seconds)

    def s3(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
