"""The local stand-ins that `sam local` functions reach instead of AWS, and the --env-vars file that points them
there. The stand-ins listen on 127.0.0.1; the functions, in containers on dockerd's bridge, reach them through
bridge_door.py at the bridge's gateway address (SAM_LOCAL_FUNCTION_HOST overrides it, e.g. host.docker.internal
on Docker Desktop, where no door is needed).

    standins.py start   S3 and SQS (one moto server: the images bucket, its notifications to the IndexQueue and
                        the dead-letter queue as template.yaml declares them (indexing_path.py), then the demo
                        catalogue put under the images prefix, so its events wait in the queue) and the SageMaker
                        runtime (`visual-search serve`, whose POST /endpoints/{name}/invocations embeds in-process);
                        OpenSearch is the node of scripts/opensearch.sh. Writes the env-vars file.
    standins.py stop    stops what `start` started (pid files in the state directory)
    standins.py env     only writes the env-vars file (events/env.local.json is this with the defaults)
    standins.py opensearch-port   the port of the index's OpenSearch node (for scripts/sam-local.sh)

Settings come from the environment (defaults in brackets): SAM_LOCAL_STATE_DIR [var/sam-local],
SAM_LOCAL_S3_PORT [5010], SAM_LOCAL_SAGEMAKER_PORT [5011],
SAM_LOCAL_INDEX [opensearch://127.0.0.1:9200/sam-local-images],
SAM_LOCAL_ENV_FILE [events/env.local.json], SAM_LOCAL_SEED [demo/catalogue/images, put under the images prefix],
SAM_LOCAL_FUNCTION_HOST [the docker0 gateway]; the queues' settings: indexing_path.py.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import processes
from bridge_door import bridge_gateway
from indexing_path import REGION, IndexingPath, create_in_moto

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# The bucket and endpoint the sample events in events/ name, so every sample works unchanged.
BUCKET = "visual-search-images-123456789012-0a1b2c3d4e5f"
ENDPOINT_NAME = "visual-search-embedding"


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
    search_only = {
        # As the template: POST /items puts an added item under the images prefix, where its event indexes it.
        "VISUAL_SEARCH_IMAGE_STORE": f"s3://{BUCKET}/{IndexingPath.from_template().prefix}",
        # No SSM parameters locally: reading stays open, as `visual-search serve` is by default; writing
        # (POST/DELETE /items, GET /duplicates) takes the local write key, a random one in the state directory.
        "VISUAL_SEARCH_READ_API_KEY_PARAMETER": "",
        "VISUAL_SEARCH_WRITE_API_KEY_PARAMETER": "",
        "VISUAL_SEARCH_WRITE_API_KEY": write_api_key(services),
    }
    return {"IndexFunction": dict(shared), "SearchFunction": {**shared, **search_only}}


def write_api_key(services: LocalServices) -> str:
    """The local write key: made once per state directory, readable by its owner only."""
    path = services.state_dir / "write-api-key"
    if not path.is_file():
        services.state_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def write_env_file(services: LocalServices) -> Path:
    services.env_file.parent.mkdir(parents=True, exist_ok=True)
    services.env_file.write_text(json.dumps(env_vars(services), indent=2) + "\n")
    return services.env_file


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


def aws_client(service: str, services: LocalServices):
    import boto3

    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=services.url(services.s3_port),
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def create_bucket_and_queues(services: LocalServices) -> dict[str, str]:
    """The images bucket and the template's indexing path (queues, redrive, notifications) in a new moto."""
    s3 = aws_client("s3", services)
    s3.create_bucket(Bucket=BUCKET)
    return create_in_moto(IndexingPath.from_template(), aws_client("sqs", services), s3, BUCKET)


def seed_bucket(services: LocalServices) -> int:
    """Puts the seed photos under the images prefix (the sample events' keys): each put notifies the queue."""
    s3 = aws_client("s3", services)
    prefix = IndexingPath.from_template().prefix
    photos = sorted(path for path in services.seed_dir.iterdir() if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for photo in photos:
        s3.upload_file(str(photo), BUCKET, f"{prefix}{photo.name}")
    return len(photos)


def start(services: LocalServices) -> None:
    services.state_dir.mkdir(parents=True, exist_ok=True)
    if processes.start(
        "s3",
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(services.s3_port)],
        services.state_dir,
        f"{services.url(services.s3_port)}/moto-api/",
        timeout_s=60,
    ):
        # moto keeps nothing: a new bucket and new queues, so a new index, then the catalogue through the queue.
        _drop_index(services)
        queues = create_bucket_and_queues(services)
        (services.state_dir / "queues.json").write_text(json.dumps(queues, indent=2) + "\n")
        print(f"standins: bucket s3://{BUCKET} holds {seed_bucket(services)} photos", file=sys.stderr)
    # The route needs no index of its own, but serve opens one: a fresh scratch one (the model may have changed).
    scratch_index = services.state_dir / "sagemaker-standin-index"
    if not processes.running_pid(services.state_dir / "sagemaker.pid"):
        shutil.rmtree(scratch_index, ignore_errors=True)
    processes.start(
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
        services.state_dir,
        f"{services.url(services.sagemaker_port)}/health",
        timeout_s=300,
    )
    if not services.function_host:
        gateway = bridge_gateway()
        ports = [services.s3_port, services.sagemaker_port, services.opensearch_port]
        processes.start(
            "bridge",
            [sys.executable, str(Path(__file__).with_name("bridge_door.py")), *map(str, ports)],
            services.state_dir,
            f"{services.url(services.sagemaker_port, gateway)}/health",
            timeout_s=30,
        )
    print(f"standins: --env-vars {write_env_file(services)}", file=sys.stderr)


def stop(services: LocalServices) -> None:
    for name in ("bridge", "sagemaker", "s3"):
        processes.stop(name, services.state_dir)


def print_opensearch_port(services: LocalServices) -> None:
    print(services.opensearch_port)


def main(argv: list[str]) -> int:
    commands = {"start": start, "stop": stop, "env": write_env_file, "opensearch-port": print_opensearch_port}
    if len(argv) != 2 or argv[1] not in commands:
        print(f"usage: {argv[0]} start|stop|env|opensearch-port", file=sys.stderr)
        return 2
    commands[argv[1]](LocalServices.from_env())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
