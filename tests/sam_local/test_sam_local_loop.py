"""`make sam-local`'s indexing loop, as a user meets it: `scripts/sam-local.sh up` indexes the seeded photos through
moto's bucket notifications, the local IndexQueue and the event source poller into IndexFunction (in the Lambda
runtime, behind `sam local start-lambda`), so SearchFunction answers at once; a photo put into the bucket is found
without any manual invoke, a delete removes it, a poison message ends in the dead-letter queue after the redrive
count, and `scripts/sam-local.sh down` leaves no listener and no container.

The session is a `make sam-local` of its own (state directory, ports, index, a small seed), with the queue's
visibility timeout shortened (the template's 540 s would make one redelivery take 9 minutes) and the template's
IndexMaxReceiveCount parameter set to 2, so that the poison message's path takes about two minutes; it runs while
the other tests do.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from live_server import free_port
from sam_events import BUCKET, load_event
from sam_session import REPO_ROOT, SamLocal

pytestmark = [pytest.mark.sam_local, pytest.mark.opensearch, pytest.mark.slow, pytest.mark.timeout(1800)]

SEED = ["00588f87.jpg", "0090ca2c.jpg", "014b2a1b.jpg"]  # events/search-upload.json is a copy of the first
PREFIX = "images/"
MAX_RECEIVE_COUNT = 2
VISIBILITY_TIMEOUT_S = 45  # above a cold start of IndexFunction on a loaded machine, so a batch is not redelivered
PUT_TO_SEARCHABLE_S = 60  # the bound
POISON_BODY = "not an S3 notification: a crafted poison message"
NEW_PHOTO = REPO_ROOT / "tests" / "fixtures" / "photos" / "hat.jpg"
ITEM_PHOTO = REPO_ROOT / "tests" / "fixtures" / "photos" / "shoes.jpg"


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _aws(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="l", aws_secret_access_key="l"
    )


def _containers_of(index_name: str) -> list[str]:
    """The Lambda containers of this session: SAM gives each the function's variables, which name our index."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=sam.cli.container.type=lambda"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = []
    for container in listed:
        described = subprocess.run(
            ["docker", "inspect", "--format", "{{json .Config.Env}}", container], capture_output=True, text=True
        )
        if described.returncode == 0 and index_name in described.stdout:
            ours.append(container)
    return ours


class Loop(SamLocal):
    endpoints: dict
    index_name: str

    def search_by_photo(self, photo: bytes, k: int = 3) -> list[dict]:
        request = urllib.request.Request(
            f"{self.endpoints['api']}/search",
            data=json.dumps({"image": base64.b64encode(photo).decode(), "k": k}).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["results"]

    def until_searchable(self, key: str, photo: bytes) -> float:
        """Seconds until `photo`'s nearest neighbour is `key` (fails after PUT_TO_SEARCHABLE_S)."""
        started = time.monotonic()
        while True:
            top = self.search_by_photo(photo, k=1)
            if top and top[0]["key"] == key:
                assert top[0]["score"] == pytest.approx(1.0, abs=0.01)
                return time.monotonic() - started
            assert time.monotonic() - started < PUT_TO_SEARCHABLE_S, (
                f"{key} not searchable after {PUT_TO_SEARCHABLE_S} s"
            )
            time.sleep(1)

    def until_gone(self, key: str, photo: bytes) -> float:
        started = time.monotonic()
        while key in [result["key"] for result in self.search_by_photo(photo)]:
            assert time.monotonic() - started < PUT_TO_SEARCHABLE_S, f"{key} still found {PUT_TO_SEARCHABLE_S} s on"
            time.sleep(1)
        return time.monotonic() - started

    def api_call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
        """(status, JSON answer) of the HTTP API, with the local write key."""
        headers = {"X-API-Key": Path(self.endpoints["write_api_key_file"]).read_text().strip()}
        if content_type:
            headers["content-type"] = content_type
        request = urllib.request.Request(f"{self.endpoints['api']}{path}", data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def _multipart(fields: dict[str, str], file_name: str, file_bytes: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + file_bytes
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def loop(sam_built, opensearch_url, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("sam-local-loop")
    seed = work_dir / "seed"
    seed.mkdir()
    for name in SEED:
        shutil.copy(REPO_ROOT / "demo" / "catalogue" / "images" / name, seed / name)
    index_name = f"sam-local-loop-{uuid.uuid4().hex[:8]}"
    state_dir = work_dir / "state"
    env = dict(
        os.environ,
        SAM_LOCAL_STATE_DIR=str(state_dir),
        # The session's build, as built: `up` rebuilds it (cached), and a local template with other CORS origins
        # would lock the other modules' browser out of their start-api.
        SAM_LOCAL_BUILD_DIR=sam_built.env["SAM_LOCAL_BUILD_DIR"],
        SAM_LOCAL_UI_ORIGINS=sam_built.env["SAM_LOCAL_UI_ORIGINS"],
        SAM_LOCAL_ENV_FILE=str(work_dir / "env.json"),
        SAM_LOCAL_S3_PORT=str(free_port()),
        SAM_LOCAL_SAGEMAKER_PORT=str(free_port()),
        SAM_LOCAL_LAMBDA_PORT=str(free_port()),
        SAM_LOCAL_API_PORT=str(free_port()),
        SAM_LOCAL_INDEX=f"opensearch://127.0.0.1:{opensearch_url.rsplit(':', 1)[1]}/{index_name}",
        SAM_LOCAL_SEED=str(seed),
        SAM_LOCAL_PARAMETERS=f"IndexMaxReceiveCount={MAX_RECEIVE_COUNT}",
        SAM_LOCAL_VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S),
    )
    session = Loop(
        env=env,
        env_file=work_dir / "env.json",
        build_dir=Path(env["SAM_LOCAL_BUILD_DIR"]),
        s3_url=f"http://127.0.0.1:{env['SAM_LOCAL_S3_PORT']}",
        s3_url_seen_by_functions="",
        index_url=f"{opensearch_url}/{index_name}",
        work_dir=work_dir,
        ui_port=0,
    )
    session.index_name = index_name
    started = time.monotonic()
    up = session.script("up", timeout=1200)
    try:
        assert up.returncode == 0, up.stderr[-4000:]
        session.up_seconds = time.monotonic() - started
        session.endpoints = json.loads((state_dir / "endpoints.json").read_text())
        # The poison message goes in first: its redeliveries take a few visibility timeouts, while the rest runs.
        _aws("sqs", session.endpoints["sqs"]).send_message(
            QueueUrl=session.endpoints["queue_url"], MessageBody=POISON_BODY
        )
        yield session
    finally:
        down = session.script("down", timeout=600)
        assert down.returncode == 0, down.stderr[-4000:]
        try:
            urllib.request.urlopen(urllib.request.Request(session.index_url, method="DELETE"), timeout=30).close()
        except OSError:
            pass


def test_up_writes_the_endpoints_and_indexes_the_seed_so_search_answers_at_once(loop):
    endpoints = loop.endpoints
    assert endpoints["bucket"] == BUCKET and endpoints["prefix"] == PREFIX
    for name in ("s3", "sqs", "lambda", "api"):
        assert endpoints[name].startswith("http://127.0.0.1:"), (name, endpoints[name])
    # `up` returned once the queue was empty: the seed went through the loop, nobody invoked IndexFunction by hand.
    invocation = loop.invoke("SearchFunction", load_event("search-upload.json"))
    assert invocation.response["statusCode"] == 200, invocation.response
    results = json.loads(invocation.response["body"])["results"]
    assert results[0]["key"] == PREFIX + SEED[0]
    assert {result["key"] for result in results} == {PREFIX + name for name in SEED}


def test_a_photo_put_into_the_bucket_is_found_within_60_s_and_a_delete_removes_it(loop):
    key = f"{PREFIX}loop-test {uuid.uuid4().hex[:6]}.jpg"  # a space: S3 events URL-encode keys
    photo = NEW_PHOTO.read_bytes()
    s3 = _aws("s3", loop.endpoints["s3"])
    assert key not in [result["key"] for result in loop.search_by_photo(photo)]
    s3.put_object(Bucket=BUCKET, Key=key, Body=photo)
    print(f"put -> searchable in {loop.until_searchable(key, photo):.1f} s")
    s3.delete_object(Bucket=BUCKET, Key=key)
    print(f"delete -> gone in {loop.until_gone(key, photo):.1f} s")


def test_an_item_added_through_start_api_is_indexed_by_its_bucket_event_and_deleted_through_it(loop):
    """POST /items writes the photo under the prefix and nothing else (as on AWS): its event indexes it. The body is
    binary multipart, which start-api base64-encodes thanks to the local template's binary media types."""
    photo = ITEM_PHOTO.read_bytes()
    body, content_type = _multipart({"key": f"item-{uuid.uuid4().hex[:6]}.jpg", "label": "Shoes"}, "shoes.jpg", photo)
    status, added = loop.api_call("POST", "/items", body, content_type)
    assert status == 202, added
    key = added["key"]
    assert key.startswith(PREFIX), key
    print(f"POST /items -> searchable in {loop.until_searchable(key, photo):.1f} s")
    status, deleted = loop.api_call("DELETE", f"/items/{key}")
    assert status == 200 and deleted["deleted"] == key, deleted
    loop.until_gone(key, photo)
    assert "Contents" not in _aws("s3", loop.endpoints["s3"]).list_objects_v2(Bucket=BUCKET, Prefix=key)


def test_a_poison_message_ends_in_the_dead_letter_queue_after_the_redrive_count(loop):
    sqs = _aws("sqs", loop.endpoints["sqs"])
    # Deliveries: one, a visibility timeout, the second; after the next timeout the redrive policy moves it.
    deadline = time.monotonic() + (MAX_RECEIVE_COUNT + 2) * VISIBILITY_TIMEOUT_S + 60
    dead = []
    while not dead:
        assert time.monotonic() < deadline, "the poison message never reached the dead-letter queue"
        dead = sqs.receive_message(
            QueueUrl=loop.endpoints["dead_letter_queue_url"],
            AttributeNames=["All"],
            WaitTimeSeconds=10,
            VisibilityTimeout=0,
        ).get("Messages", [])
    assert [message["Body"] for message in dead] == [POISON_BODY]
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= MAX_RECEIVE_COUNT
    # The poller handed it to the function each time, which reported it as a batch item failure; nothing else failed.
    batches = [
        json.loads(line) for line in (Path(loop.env["SAM_LOCAL_STATE_DIR"]) / "poller.log").read_text().splitlines()
    ]
    poison_batches = [batch for batch in batches if batch.get("failed")]
    assert len(poison_batches) == MAX_RECEIVE_COUNT, batches
    assert all(batch["whole_batch_failed"] is None and len(batch["failed"]) == 1 for batch in poison_batches)
    assert sorted(batch["max_receive_count_seen"] for batch in poison_batches)[-1] == MAX_RECEIVE_COUNT


def test_down_stops_everything_up_started_and_leaves_no_listener_and_no_container(loop):
    state_dir = Path(loop.env["SAM_LOCAL_STATE_DIR"])
    pids = {path.stem: int(path.read_text()) for path in state_dir.glob("*.pid")}
    assert {"s3", "sagemaker", "bridge", "lambda", "poller", "api"} <= set(pids), pids
    assert _containers_of(loop.index_name), "start-lambda and start-api keep warm containers while running"
    gateway = (
        json.loads(loop.env_file.read_text())["SearchFunction"]["AWS_ENDPOINT_URL_S3"].split("//")[1].split(":")[0]
    )

    down = loop.script("down", timeout=600)
    assert down.returncode == 0, down.stderr[-4000:]

    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) still runs"
    ports = [int(loop.env[f"SAM_LOCAL_{name}_PORT"]) for name in ("S3", "SAGEMAKER", "LAMBDA", "API")]
    listening = [port for port in ports if _listening("127.0.0.1", port)]
    listening += [f"{gateway}:{port}" for port in ports[:2] if _listening(gateway, port)]
    assert not listening, f"still listening after down: {listening}"
    assert not _containers_of(loop.index_name), "containers left behind"
    assert not (state_dir / "endpoints.json").exists()
    # The OpenSearch node it did not start (the tests') still answers.
    with urllib.request.urlopen(loop.index_url.rsplit("/", 1)[0], timeout=30) as response:
        assert response.status == 200
