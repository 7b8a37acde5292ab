"""Helpers for the shopper-UI browser tests: the demo catalogue indexed with its product data by the real model,
a server over it, Chromium pages at desktop and phone sizes, search-and-wait, and axe-core checks."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from live_server import serving
from service_check import require_service

from visual_search.bootstrap import build_embedder
from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.core.settings import Settings
from visual_search.indexes.local.index import LocalIndex
from visual_search.server.app import create_app
from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.services.search import SearchService

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "demo" / "catalogue"
AXE_JS = REPO_ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A fake camera, so "Take photo" can use the live camera (getUserMedia) in a headless browser.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
QUERY_KEY = "e3348ff1.jpg"  # a blazer in demo/catalogue
DRESS_KEY = next(
    entry.listed_path.removeprefix("images/")
    for entry in read_catalogue_csv(DEMO / "labels.csv")
    if entry.label == "Dress"
)


# Three T-shirts carry the clothing set's catch-all labels, so the setting that hides those has something to hide.
CATCH_ALL = {"e896e472.jpg": "Not sure", "9725e568.jpg": "Other", "50e71e97.jpg": "Skip"}


@functools.lru_cache(maxsize=1)
def demo_search_service() -> SearchService:
    """One index of the demo catalogue (with CATCH_ALL) for every browser test module of this session."""
    return index_demo_catalogue(Path(tempfile.mkdtemp(prefix="shopper-ui-")) / "idx", CATCH_ALL)


def index_demo_catalogue(index_dir: Path, relabel: dict[str, str] | None = None) -> SearchService:
    """The demo catalogue with its labels.csv (labels, product data, attributes) in a new embedded index, by the
    product's own model. `relabel` {key: label} overrides some labels (e.g. to add catch-all ones)."""
    embedder = build_embedder(Settings())
    index = LocalIndex(index_dir, model_id=embedder.model_id, dimension=embedder.dimension, writable=True)
    relabel = relabel or {}
    unknown = set(relabel) - {
        entry.listed_path.removeprefix("images/") for entry in read_catalogue_csv(DEMO / "labels.csv")
    }
    assert not unknown, f"not in the demo catalogue: {unknown}"
    items = []
    for entry in read_catalogue_csv(DEMO / "labels.csv"):
        key = entry.listed_path.removeprefix("images/")
        items.append(
            IndexItem(
                key,
                str(entry.path),
                entry.path.read_bytes,
                relabel.get(key, entry.label),
                entry.attributes,
                product=entry.product,
            )
        )
    report = IndexingService(embedder, index, batch_size=16).index_items(items)
    assert not report.failed, report.failed
    return SearchService(embedder, index)


@contextmanager
def shopper_page(browser, base_url: str, device: dict = DESKTOP, **context_options) -> Iterator:
    context = browser.new_context(**device, **context_options)
    page = context.new_page()
    page.goto(base_url)
    page.wait_for_selector("body[data-ready=true]")
    try:
        yield page
    finally:
        context.close()


def search_and_wait(page, action, status: int = 200) -> dict:
    """Run `action`; return the JSON body of the /search request it sends once its answer is on screen."""
    with page.expect_response("**/search") as response_info:
        action()
    response = response_info.value
    assert response.status == status, response.text()
    page.wait_for_function(
        "document.querySelector('#results').getAttribute('aria-busy') === 'false'"
        " && getComputedStyle(document.querySelector('#results')).opacity === '1'"
    )
    return response.request.post_data_json


def upload(page, key: str = QUERY_KEY) -> dict:
    return search_and_wait(page, lambda: page.set_input_files("#file-input", str(DEMO / "images" / key)))


def result_keys(page) -> list[str]:
    return page.locator("#results .result").evaluate_all("cards => cards.map(card => card.dataset.key)")


def serious_accessibility_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    require_service(AXE_JS.is_file(), "axe-core (npm)", "run `npm ci --prefix tests/browser` (make test does)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    violations = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({id: v.id, impact: v.impact,
            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['nodes']}" for v in violations if v["impact"] in ("serious", "critical")]


def screenshot(page, name: str, **options) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """The real server over the demo catalogue's search service."""
    settings = Settings(index=str(tmp_path_factory.mktemp("unused")), cache_dir=str(tmp_path_factory.mktemp("cache")))
    with serving(create_app(settings, search_service=demo_search_service())) as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
