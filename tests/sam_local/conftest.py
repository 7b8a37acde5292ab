"""The AWS functions in a real Lambda runtime (`sam local`, Docker), against the local stand-ins that
scripts/sam-local.sh starts: moto's S3 server, `visual-search serve` as the SageMaker runtime, the OpenSearch node.

Each session gets its own build directory, ports, env-vars file and OpenSearch index, so a developer's running
`make sam-local` is left alone. The engine itself comes from `scripts/sam-local.sh engine` (run-tests.sh runs it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
from live_server import free_port
from sam_session import SamLocal


def _root_conftest():
    """tests/conftest.py by its path: inside a conftest, `import conftest` names the module being imported."""
    spec = importlib.util.spec_from_file_location("tests_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REPO_ROOT = Path(__file__).resolve().parents[2]
require_service = _root_conftest().require_service

BASE_IMAGE = "public.ecr.aws/lambda/python:3.12-x86_64"


def _engine_ready() -> bool:
    try:
        for command in (["docker", "info"], ["docker", "image", "inspect", BASE_IMAGE]):
            subprocess.run(command, check=True, capture_output=True, timeout=30)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="session")
def sam_engine() -> None:
    require_service(
        _engine_ready(),
        f"Docker with the image {BASE_IMAGE}",
        "run `scripts/sam-local.sh engine` as root (installs docker.io, starts dockerd, builds the image)",
    )


@pytest.fixture(scope="session")
def sam_session(sam_engine, opensearch_url, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("sam-local")
    index_name = f"sam-local-test-{uuid.uuid4().hex[:8]}"
    ui_port = free_port()
    env = dict(
        os.environ,
        SAM_LOCAL_STATE_DIR=str(work_dir / "state"),
        SAM_LOCAL_BUILD_DIR=str(REPO_ROOT / ".aws-sam" / "test-build"),
        SAM_LOCAL_ENV_FILE=str(work_dir / "env.json"),
        SAM_LOCAL_S3_PORT=str(free_port()),
        SAM_LOCAL_SAGEMAKER_PORT=str(free_port()),
        SAM_LOCAL_INDEX=f"opensearch://127.0.0.1:{opensearch_url.rsplit(':', 1)[1]}/{index_name}",
        SAM_LOCAL_UI_ORIGINS=f"http://127.0.0.1:{ui_port}",
    )
    session = SamLocal(
        env=env,
        env_file=work_dir / "env.json",
        build_dir=Path(env["SAM_LOCAL_BUILD_DIR"]),
        s3_url=f"http://127.0.0.1:{env['SAM_LOCAL_S3_PORT']}",
        s3_url_seen_by_functions="",
        index_url=f"{opensearch_url}/{index_name}",
        work_dir=work_dir,
        ui_port=ui_port,
    )
    session.build = session.script("build")
    started = session.script("standins", timeout=900)
    try:
        assert started.returncode == 0, started.stderr[-4000:]
        functions_env = json.loads(session.env_file.read_text())
        session.s3_url_seen_by_functions = functions_env["SearchFunction"]["AWS_ENDPOINT_URL_S3"]
        yield session
    finally:
        stopped = subprocess.run(
            [
                str(REPO_ROOT / ".venv" / "bin" / "python"),
                str(REPO_ROOT / "scripts" / "sam_local" / "standins.py"),
                "stop",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert stopped.returncode == 0, stopped.stderr
        session.script("prune")
        request = urllib.request.Request(session.index_url, method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except OSError:
            pass  # never created: a test failed before the first write


@pytest.fixture(scope="session")
def sam_built(sam_session) -> SamLocal:
    if sam_session.build.returncode != 0:
        pytest.fail(f"sam build failed:\n{sam_session.build.stderr[-4000:]}", pytrace=False)
    return sam_session
