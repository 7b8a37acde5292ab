"""The shopper's web UI in Debian's Chromium, against the real server on loopback over the bundled demo catalogue."""

from __future__ import annotations

import os

import functools
import http.server
import shutil
import threading
import warnings
from pathlib import Path

import pytest

from visual_search.server.app import create_app
from visual_search.core.settings import Settings

from live_server import free_port, index_folder, read_labels, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CATALOGUE = REPO_ROOT / "demo" / "catalogue"
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
QUERY_KEY = "e3348ff1.jpg"  # a blazer in demo/catalogue
OTHER_KEY = "0090ca2c.jpg"


def search_embedder():
    """The product's real model through bootstrap. Until the ONNX embedder module offers what bootstrap imports
    (it is being written alongside), the deterministic histogram stand-in, with a warning; any other failure of
    the real model fails the tests."""
    from visual_search.bootstrap import build_embedder

    try:
        return build_embedder(Settings())
    except ImportError as missing:
        from fakes import HistogramEmbedder

        warnings.warn(f"browser tests use the histogram stand-in: the real embedder is not importable ({missing})")
        return HistogramEmbedder()


@pytest.fixture(scope="module")
def photo_host(tmp_path_factory):
    """A loopback HTTP server holding one catalogue photo, standing in for a shop's image host."""
    folder = tmp_path_factory.mktemp("photo-host")
    shutil.copy(DEMO_CATALOGUE / "images" / OTHER_KEY, folder / "photo.jpg")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """A search service over the demo catalogue, indexed once for the module."""
    labels = read_labels(DEMO_CATALOGUE / "labels.csv")
    return index_folder(DEMO_CATALOGUE / "images", tmp_path_factory.mktemp("index") / "idx", search_embedder(), labels)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, photo_host, catalogue):
    settings = Settings(index=str(tmp_path_factory.mktemp("unused")), url_allowlist=(photo_host,))
    with serving(create_app(settings, search_service=catalogue)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(base_url)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    context.close()


def top_result(page) -> tuple[str, float]:
    first = page.locator("#results .result").first
    first.wait_for()
    return first.get_attribute("data-key"), float(first.locator(".result-score").inner_text())


def search_and_wait(page, action):
    """Run `action` and return the JSON body of the /search request it sends, once the results have rendered."""
    with page.expect_response("**/search") as response_info:
        action()
    response = response_info.value
    assert response.status == 200, response.text()
    page.wait_for_function("document.querySelector('#results').getAttribute('aria-busy') === 'false'")
    return response.request.post_data_json


def test_uploaded_demo_photo_is_its_own_top_result_with_score_one(page):
    search_and_wait(page, lambda: page.set_input_files("#file-input", str(DEMO_CATALOGUE / "images" / QUERY_KEY)))
    key, score = top_result(page)
    assert key == QUERY_KEY
    assert score == pytest.approx(1.0, abs=0.01)
    assert page.locator("#results .result").count() == 12
    assert "similar items" in page.locator("#status").inner_text()


def test_pasting_an_image_from_the_clipboard_searches_with_it(page):
    paste = f"""async () => {{
        const blob = await (await fetch('/images/{QUERY_KEY}')).blob();
        const data = new DataTransfer();
        data.items.add(new File([blob], 'pasted.jpg', {{type: 'image/jpeg'}}));
        document.dispatchEvent(new ClipboardEvent('paste', {{clipboardData: data, bubbles: true}}));
    }}"""
    body = search_and_wait(page, lambda: page.evaluate(paste))
    assert body["image"].startswith("data:image/jpeg;base64,")
    assert top_result(page)[0] == QUERY_KEY


def test_dropping_a_photo_on_the_drop_zone_searches_with_it(page):
    drop = f"""async () => {{
        const blob = await (await fetch('/images/{QUERY_KEY}')).blob();
        const data = new DataTransfer();
        data.items.add(new File([blob], 'dropped.jpg', {{type: 'image/jpeg'}}));
        const zone = document.getElementById('drop-zone');
        zone.dispatchEvent(new DragEvent('dragenter', {{dataTransfer: data, bubbles: true, cancelable: true}}));
        zone.dispatchEvent(new DragEvent('drop', {{dataTransfer: data, bubbles: true, cancelable: true}}));
    }}"""
    search_and_wait(page, lambda: page.evaluate(drop))
    assert top_result(page)[0] == QUERY_KEY
    assert "dragging" not in page.get_attribute("#drop-zone", "class")


def test_a_label_chip_built_from_stats_filters_the_results(page):
    search_and_wait(page, lambda: page.set_input_files("#file-input", str(DEMO_CATALOGUE / "images" / QUERY_KEY)))
    chip = page.locator("#chips .chip[data-label='Shoes']")
    body = search_and_wait(page, chip.click)
    assert body["filters"] == {"label": ["Shoes"]}
    assert chip.get_attribute("aria-pressed") == "true"
    labels = page.locator("#results .result-label").all_inner_texts()
    assert labels and set(labels) == {"Shoes"}


def test_an_allow_listed_image_url_is_fetched_and_searched(page, photo_host):
    page.fill("#url-input", f"http://{photo_host}/photo.jpg")
    body = search_and_wait(page, lambda: page.click("#url-button"))
    assert body["url"] == f"http://{photo_host}/photo.jpg"
    key, score = top_result(page)
    assert key == OTHER_KEY and score == pytest.approx(1.0, abs=0.01)


def test_clicking_a_result_searches_for_more_like_it_by_key(page):
    search_and_wait(page, lambda: page.set_input_files("#file-input", str(DEMO_CATALOGUE / "images" / QUERY_KEY)))
    second = page.locator("#results .result").nth(1)
    clicked_key = second.get_attribute("data-key")
    body = search_and_wait(page, second.click)
    assert body == {"k": 12, "key": clicked_key}
    keys = page.locator("#results .result").evaluate_all("cards => cards.map(card => card.dataset.key)")
    assert clicked_key not in keys and len(keys) == 12  # the query itself is excluded
    assert "More like" in page.locator("#preview-caption-text").inner_text()


def test_dragging_a_box_on_the_preview_searches_that_region(page):
    search_and_wait(page, lambda: page.set_input_files("#file-input", str(DEMO_CATALOGUE / "images" / QUERY_KEY)))
    box = page.locator("#crop-layer").bounding_box()

    def drag():
        page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75, steps=5)
        page.mouse.up()

    body = search_and_wait(page, drag)
    assert body["crop"] == pytest.approx({"x": 0.25, "y": 0.25, "w": 0.5, "h": 0.5}, abs=0.02)
    assert page.locator("#crop-box").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "crop.png"))
    # The keyboard moves the box too: focus it, nudge it right, press Enter to search again.
    page.focus("#crop-box")
    page.keyboard.press("ArrowRight")
    moved = search_and_wait(page, lambda: page.keyboard.press("Enter"))
    assert moved["crop"]["x"] == pytest.approx(body["crop"]["x"] + 0.04, abs=0.005)


def test_a_file_that_is_not_an_image_shows_the_apis_error_message(page):
    not_an_image = {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"shopping list: socks, scarf\n" * 20}
    with page.expect_response("**/search") as response_info:
        page.set_input_files("#file-input", files=[not_an_image])
    assert response_info.value.status == 400
    error = page.locator("#error")
    error.wait_for()
    assert "not a readable image" in error.inner_text()
    assert page.locator("#results .result").count() == 0


def test_with_an_api_key_the_ui_asks_for_it_once_and_then_searches(browser, catalogue, tmp_path):
    settings = Settings(index=str(tmp_path), api_key="shop-key-123")
    with serving(create_app(settings, search_service=catalogue)) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        assert page.locator("#api-key-form").is_visible()
        assert page.locator("#chips .chip").count() == 0  # /stats was refused without the key
        page.fill("#api-key-input", "shop-key-123")
        page.click("#api-key-form button")
        page.locator("#chips .chip[data-label='Shoes']").wait_for()
        assert page.locator("#api-key-form").is_hidden()
        search_and_wait(page, lambda: page.set_input_files("#file-input", str(DEMO_CATALOGUE / "images" / QUERY_KEY)))
        assert top_result(page)[0] == QUERY_KEY
        context.close()


def test_desktop_and_mobile_layouts_render_results_without_horizontal_scrolling(browser, base_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("desktop", {"width": 1280, "height": 800}), ("mobile", {"width": 360, "height": 740})):
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        page = context.new_page()
        page.goto(base_url)
        page.wait_for_selector("body[data-ready=true]")
        search_and_wait(page, lambda: page.set_input_files("#file-input", str(DEMO_CATALOGUE / "images" / QUERY_KEY)))
        page.wait_for_function("[...document.querySelectorAll('#results img')].slice(0, 6).every(i => i.complete)")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} layout scrolls sideways by {overflow} px"
        if name == "mobile":
            # On a phone a new query scrolls its results into view (smoothly, so wait for the scroll to settle).
            page.wait_for_function(
                "(() => { const top = document.getElementById('results-heading').getBoundingClientRect().top;"
                " return top >= 0 && top < 200; })()", timeout=5000)
            page.screenshot(path=str(SCREENSHOTS / "mobile-results.png"))
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=(name == "mobile"))
        if name == "desktop" and os.environ.get("VISUAL_SEARCH_UPDATE_README_SCREENSHOT") == "1":
            # Tests write only to artifacts/; the README's picture changes when asked (make screenshot).
            page.screenshot(path=str(REPO_ROOT / "docs" / "screenshot.png"))
        context.close()
    assert (SCREENSHOTS / "desktop.png").stat().st_size > 10_000
