"""State that is always true (issue 14, section 3), at desktop and phone sizes: each defect once reproduced by a
shopper, now checked in Chromium against the real server and model. What is on screen (photo, region, filters,
results) always belongs to one search; a failed search puts the controls back to the one whose results show."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time

import pytest
from live_server import free_port, serving
from shop import (
    DEMO,
    DESKTOP,
    DRESS_KEY,
    PHONE,
    QUERY_KEY,
    demo_search_service,
    result_keys,  # noqa: F401
    screenshot,
    search_and_wait,
    shopper_page,
    upload,
)

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

URL_TIMEOUT_S = 1.0
SLOW_HOST_DELAY_S = 3.0


class _PhotoHost(http.server.SimpleHTTPRequestHandler):
    """Serves the folder it is given; `/slow/...` answers only after SLOW_HOST_DELAY_S, past the fetch deadline."""

    def do_GET(self):
        if self.path.startswith("/slow/"):
            time.sleep(SLOW_HOST_DELAY_S)
            self.path = self.path.removeprefix("/slow")
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def photo_host(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photo-host")
    shutil.copy(DEMO / "images" / DRESS_KEY, folder / "dress.jpg")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(_PhotoHost, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, photo_host):
    settings = Settings(
        index=str(tmp_path_factory.mktemp("unused")),
        url_allowlist=(photo_host,),
        url_timeout_s=URL_TIMEOUT_S,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    with serving(create_app(settings, search_service=demo_search_service())) as url:
        yield url


@pytest.fixture(params=["desktop", "phone"])
def page(request, browser, base_url):
    with shopper_page(browser, base_url, DESKTOP if request.param == "desktop" else PHONE) as page:
        yield page


def wait_for_error(page) -> str:
    page.locator("#toast[data-kind=error]").wait_for()
    return page.locator("#toast-text").inner_text()


def test_a_new_photo_clears_the_category_filter_that_the_old_one_had(page):
    upload(page)
    body = search_and_wait(page, lambda: page.click("#chips .chip[data-label='Shoes']"))
    assert body["filters"] == {"label": ["Shoes"]}
    active = page.locator("#active-filters")
    assert active.is_visible() and active.locator(".active-filter").inner_text().startswith("Shoes")
    body = upload(page, DRESS_KEY)
    assert "filters" not in body
    assert active.is_hidden()
    assert page.locator("#chips .chip[aria-pressed=true]").count() == 0
    assert page.locator("#results .result").first.get_attribute("data-key") == DRESS_KEY


def test_an_active_filter_beside_the_results_is_removed_with_one_tap(page):
    upload(page)
    search_and_wait(page, lambda: page.click("#chips .chip[data-label='Shoes']"))
    body = search_and_wait(page, lambda: page.click("#active-filters .active-filter[data-label='Shoes']"))
    assert "filters" not in body
    assert page.locator("#active-filters").is_hidden()
    assert page.locator("#results .result").first.get_attribute("data-key") == QUERY_KEY


def test_a_click_on_the_photo_clears_the_region_and_searches_the_whole_photo_again(page):
    upload(page)
    whole = result_keys(page)
    region = search_and_wait(page, lambda: page.click("#crop-button"))
    assert region["crop"] == {"x": 0.2, "y": 0.2, "w": 0.6, "h": 0.6}
    # A locator click scrolls the photo clear of the sticky top bar before clicking near its corner.
    body = search_and_wait(page, lambda: page.locator("#crop-layer").click(position={"x": 5, "y": 5}))
    assert "crop" not in body
    assert page.locator("#crop-box").is_hidden()
    assert result_keys(page) == whole


def test_after_an_error_the_page_does_not_invite_results_that_will_not_come(page):
    not_an_image = {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo\n" * 50}
    search_and_wait(page, lambda: page.set_input_files("#file-input", files=[not_an_image]), status=400)
    wait_for_error(page)
    empty = page.locator("#empty-text").inner_text()
    assert "Results appear here" not in empty and empty.startswith("That search didn't work.")
    assert page.locator("#preview").is_hidden()  # the unreadable file is not shown as the current search


def test_going_offline_keeps_the_previous_results_and_retry_recovers(page):
    upload(page)
    before = result_keys(page)
    page.context.set_offline(True)
    page.click("#chips .chip[data-label='Shoes']")
    assert wait_for_error(page).startswith("Your device is offline")
    assert result_keys(page) == before  # still the results of the photo on screen
    assert page.locator("#chips .chip[data-label='Shoes']").get_attribute("aria-pressed") == "false"
    assert page.locator("#active-filters").is_hidden()
    screenshot(page, f"offline-error-{page.viewport_size['width']}")
    page.context.set_offline(False)
    body = search_and_wait(page, lambda: page.click("#toast-retry"))
    assert body["filters"] == {"label": ["Shoes"]}
    assert page.locator("#chips .chip[data-label='Shoes']").get_attribute("aria-pressed") == "true"
    assert page.locator("#toast").is_hidden()


def test_the_address_field_is_emptied_when_a_file_is_uploaded(page, photo_host):
    page.fill("#url-input", f"http://{photo_host}/dress.jpg")
    search_and_wait(page, lambda: page.click("#url-button"))
    assert page.locator("#url-input").input_value() == f"http://{photo_host}/dress.jpg"
    upload(page)
    assert page.locator("#url-input").input_value() == ""


def test_a_slow_address_does_not_leave_its_photo_beside_the_timeout_error(page, photo_host):
    upload(page)
    before = result_keys(page)
    slow = f"http://{photo_host}/slow/dress.jpg"
    page.fill("#url-input", slow)
    with page.expect_response("**/search") as answer:
        page.click("#url-button")
        page.locator("#toast[data-kind=busy]").wait_for()  # loading is announced at the top of the viewport
        assert page.locator("#toast").bounding_box()["y"] < page.viewport_size["height"] / 3
    assert answer.value.status == 504
    assert wait_for_error(page).startswith("That address took too long")
    assert page.locator("#preview-image").get_attribute("src").startswith("blob:")  # the uploaded photo again
    assert result_keys(page) == before
    assert "Your photo" in page.locator("#preview-caption-text").inner_text()
    screenshot(page, f"slow-url-error-{page.viewport_size['width']}")


def test_captions_name_the_product_not_its_file(page):
    upload(page)
    second = page.locator("#results .result").nth(1)
    title = second.locator(".result-title").inner_text()
    search_and_wait(page, lambda: second.locator(".result-more").click())
    caption = page.locator("#preview-caption-text").inner_text()
    assert caption.startswith(f"More like {title}")
    assert ".jpg" not in caption
