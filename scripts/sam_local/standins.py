"""The local stand-ins that `sam local` functions reach instead of AWS, and the --env-vars file that points them
there. The stand-ins listen on 127.0.0.1; the functions, in containers on dockerd's bridge, reach them through
bridge_door.py at the bridge's gateway address (SAM_LOCAL_FUNCTION_HOST overrides it, e.g. host.docker.internal
on Docker Desktop, where no door is needed).

    standins.py start   S3 (moto server, the images bucket filled with the demo catalogue) and the SageMaker
                        runtime (`visual-search serve`, whose POST /endpoints/{name}/invocations embeds in-process);
                        OpenSearch is the node of scripts/opensearch.sh. Writes the env-vars file.
    standins.py stop    stops what `start` started (pid files in the state directory)
    standins.py env     only writes the env-vars file (events/env.local.json is this with the defaults)

Settings come from the environment (defaults in brackets): SAM_LOCAL_STATE_DIR [var/sam-local],
SAM_LOCAL_S3_PORT [5010], SAM_LOCAL_SAGEMAKER_PORT [5011],
SAM_LOCAL_INDEX [opensearch://127.0.0.1:9200/sam-local-images],
SAM_LOCAL_ENV_FILE [events/env.local.json], SAM_LOCAL_SEED [demo/catalogue/images, put under images/],
SAM_LOCAL_FUNCTION_HOST [the docker0 gateway].
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bridge_door import bridge_gateway

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# The bucket and endpoint the sample events in events/ name, so every sample works unchanged.
BUCKET = "visual-search-images-123456789012-0a1b2c3d4e5f"
ENDPOINT_NAME = "visual-search-embedding"
REGION = "us-east-1"


@dataclass(frozen=True)
class LocalServices:
    state_dir: Path
    s3_port: int
    sagemaker_port: int
    index: str
    env_file: Path
    seed_dir: Path
    function_host: str | None  # None: the bridge gateway, behind the door this script opens

    @classmethod
    def from_env(cls) -> LocalServices:
        env = os.environ
        return cls(
            state_dir=Path(env.get("SAM_LOCAL_STATE_DIR", REPO / "var" / "sam-local")),
            s3_port=int(env.get("SAM_LOCAL_S3_PORT", "5010")),
            sagemaker_port=int(env.get("SAM_LOCAL_SAGEMAKER_PORT", "5011")),
            index=env.get("SAM_LOCAL_INDEX", "opensearch://127.0.0.1:9200/sam-local-images"),
            env_file=Path(env.get("SAM_LOCAL_ENV_FILE", REPO / "events" / "env.local.json")),
            seed_dir=Path(env.get("SAM_LOCAL_SEED", REPO / "demo" / "catalogue" / "images")),
            function_host=env.get("SAM_LOCAL_FUNCTION_HOST") or None,
        )

    @property
    def opensearch_port(self) -> int:
        return urlsplit(self.index).port or 9200

    def url(self, port: int, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{port}"

    def as_seen_by_functions(self) -> str:
        return self.function_host or bridge_gateway()


def env_vars(services: LocalServices) -> dict:
    """The --env-vars document: per function, the settings template.yaml fills from AWS resources, pointed at the
    stand-ins. Only variables the (local) template declares reach a function; scripts/sam_local/local_template.py
    declares the two endpoint variables."""
    host = services.as_seen_by_functions()
    index = urlsplit(services.index)
    shared = {
        "VISUAL_SEARCH_INDEX": index._replace(netloc=f"{host}:{services.opensearch_port}").geturl(),
        "VISUAL_SEARCH_EMBEDDER": "sagemaker",
        "VISUAL_SEARCH_SAGEMAKER_ENDPOINT": ENDPOINT_NAME,
        "VISUAL_SEARCH_IMAGE_STORE": f"s3://{BUCKET}",
        # Presigned URLs carry this address too; the host's browser reaches the bridge gateway as well.
        "AWS_ENDPOINT_URL_S3": services.url(services.s3_port, host),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": services.url(services.sagemaker_port, host),
    }
    # No SSM parameter locally: the API stays open, as `visual-search serve` is by default.
    search_only = {"VISUAL_SEARCH_API_KEY_PARAMETER": ""}
    return {"IndexFunction": dict(shared), "SearchFunction": {**shared, **search_only}}


def write_env_file(services: LocalServices) -> Path:
    services.env_file.parent.mkdir(parents=True, exist_ok=True)
    services.env_file.write_text(json.dumps(env_vars(services), indent=2) + "\n")
    return services.env_file


def _wait_until_answers(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"standins: {url} exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"standins: {url} did not answer within {timeout_s:.0f} s; see {log}")


def _start(name: str, command: list[str], services: LocalServices, probe_url: str, timeout_s: float) -> bool:
    """Starts one stand-in and waits until it answers; False when it was running already."""
    pid_file = services.state_dir / f"{name}.pid"
    if _running_pid(pid_file):
        print(f"standins: {name} already runs (pid {pid_file.read_text().strip()})", file=sys.stderr)
        return False
    log = services.state_dir / f"{name}.log"
    with log.open("ab") as out:
        # A session of its own, so `stop` ends the process group and nothing else.
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO
        )
    pid_file.write_text(str(process.pid))
    _wait_until_answers(probe_url, process, log, timeout_s)
    print(f"standins: {name} on {probe_url.rsplit('/', 1)[0]} (pid {process.pid}, log {log})", file=sys.stderr)
    return True


def _drop_index(services: LocalServices) -> None:
    """Deletes the functions' OpenSearch index: it must start as empty as the new bucket, and may hold vectors of
    a model the stand-in no longer serves."""
    url = urlsplit(services.index)
    request = urllib.request.Request(f"http://127.0.0.1:{services.opensearch_port}{url.path}", method="DELETE")
    try:
        urllib.request.urlopen(request, timeout=30).close()
        print(f"standins: emptied the index {url.path.lstrip('/')}", file=sys.stderr)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise


def _running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def seed_bucket(services: LocalServices) -> int:
    """Creates the images bucket in moto and puts the seed photos under images/ (the sample events' keys)."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=services.url(services.s3_port),
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        s3.create_bucket(Bucket=BUCKET)
    photos = sorted(path for path in services.seed_dir.iterdir() if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for photo in photos:
        s3.upload_file(str(photo), BUCKET, f"images/{photo.name}")
    return len(photos)


def start(services: LocalServices) -> None:
    services.state_dir.mkdir(parents=True, exist_ok=True)
    if _start(
        "s3",
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(services.s3_port)],
        services,
        f"{services.url(services.s3_port)}/moto-api/",
        timeout_s=60,
    ):
        _drop_index(services)  # moto keeps nothing: a new bucket, so a new index
    print(f"standins: bucket s3://{BUCKET} holds {seed_bucket(services)} photos", file=sys.stderr)
    # The route needs no index of its own, but serve opens one: a fresh scratch one (the model may have changed).
    scratch_index = services.state_dir / "sagemaker-standin-index"
    if not _running_pid(services.state_dir / "sagemaker.pid"):
        shutil.rmtree(scratch_index, ignore_errors=True)
    _start(
        "sagemaker",
        [
            str(VENV_BIN / "visual-search"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(services.sagemaker_port),
            "--index-dir",
            str(scratch_index),
        ],
        services,
        f"{services.url(services.sagemaker_port)}/health",
        timeout_s=300,
    )
    if not services.function_host:
        gateway = bridge_gateway()
        ports = [services.s3_port, services.sagemaker_port, services.opensearch_port]
        _start(
            "bridge",
            [sys.executable, str(Path(__file__).with_name("bridge_door.py")), *map(str, ports)],
            services,
            f"{services.url(services.sagemaker_port, gateway)}/health",
            timeout_s=30,
        )
    print(f"standins: --env-vars {write_env_file(services)}", file=sys.stderr)


def stop(services: LocalServices) -> None:
    for name in ("bridge", "sagemaker", "s3"):
        pid_file = services.state_dir / f"{name}.pid"
        pid = _running_pid(pid_file)
        if pid:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(50):
                if not _running_pid(pid_file):
                    break
                time.sleep(0.1)
            print(f"standins: stopped {name} (pid {pid})", file=sys.stderr)
        pid_file.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    commands = {"start": start, "stop": stop, "env": write_env_file}
    if len(argv) != 2 or argv[1] not in commands:
        print(f"usage: {argv[0]} start|stop|env", file=sys.stderr)
        return 2
    commands[argv[1]](LocalServices.from_env())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
