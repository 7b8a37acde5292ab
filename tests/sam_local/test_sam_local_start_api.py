"""`sam local start-api` serves the HTTP API from the Lambda runtime; the web UI in Debian's Chromium, with its
config.json pointing at that API, uploads a photo and shows the results, their images served by moto's S3."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
from live_server import free_port
from sam_events import REPO_ROOT, sqs_put_event

pytestmark = [
    pytest.mark.sam_local,
    pytest.mark.opensearch,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]

CATALOGUE = ["images/e3348ff1.jpg", "images/e8653193.jpg", "images/0090ca2c.jpg", "images/014b2a1b.jpg"]
QUERY = CATALOGUE[0]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def api_url(sam_built):
    """`sam local start-api` on a free loopback port, with warm containers (one per function, reused)."""
    indexed = sam_built.invoke("IndexFunction", sqs_put_event(CATALOGUE, message_prefix="start-api"))
    assert indexed.response == {"batchItemFailures": []}, indexed.logs[-3000:]
    port = free_port()
    log = (sam_built.work_dir / "start-api.log").open("w")
    process = subprocess.Popen(
        [
            str(REPO_ROOT / "scripts" / "sam-local.sh"),
            "start-api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--warm-containers",
            "LAZY",
        ],
        env=sam_built.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, (sam_built.work_dir / "start-api.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=120) as response:
                    assert json.loads(response.read())["status"] == "ok"
                    break
            except OSError:
                assert time.monotonic() < deadline, "sam local start-api did not answer /health"
                time.sleep(1)
        yield url
    finally:
        # SIGINT is SAM's Ctrl+C: it stops and removes its warm containers before exiting.
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def ui_url(sam_built, api_url, tmp_path_factory):
    """The frontend's files as deployed, from an origin the local API's CORS allows, with config.json naming the API."""
    site = tmp_path_factory.mktemp("frontend")
    shutil.copytree(REPO_ROOT / "frontend", site, dirs_exist_ok=True)
    (site / "config.json").write_text(json.dumps({"apiBase": api_url}))
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", sam_built.ui_port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{sam_built.ui_port}/"
    server.shutdown()


def test_the_web_ui_searches_through_sam_local_start_api(ui_url, api_url, sam_built, chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(ui_url)
            # The page is ready after its first GET /stats, which cold-starts a Lambda container (10-30 s here).
            page.wait_for_selector("body[data-ready=true]", timeout=180_000)
            with page.expect_response(f"{api_url}/search", timeout=180_000) as answer:
                page.set_input_files("#file-input", str(REPO_ROOT / "demo" / "catalogue" / QUERY))
            assert answer.value.status == 200, answer.value.text()
            page.wait_for_function("document.querySelector('#results').getAttribute('aria-busy') === 'false'")
            cards = page.locator("#results .result")
            keys = cards.evaluate_all("cards => cards.map(card => card.dataset.key)")
            assert keys[0] == QUERY and set(keys) <= set(CATALOGUE), keys
            assert float(cards.first.get_attribute("data-score")) == pytest.approx(1.0, abs=0.01)
            # The result images are presigned URLs at moto's S3 server, and the browser can load them.
            first_image = cards.first.locator("img")
            assert first_image.get_attribute("src").startswith(sam_built.s3_url_seen_by_functions + "/")
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=first_image.element_handle(), timeout=60_000
            )
        finally:
            browser.close()
