"""The shopper's web UI in Debian's Chromium, against the real server on loopback over the demo catalogue indexed
with its product data by the real model: every input path, product cards, the detail view, thumbnails, match
tiers, "Show more", the colour toggle, the layouts and the README screenshot."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading

import numpy as np
import pytest
from live_server import free_port, serving
from PIL import Image
from shop import (
    DEMO,
    DESKTOP,
    PHONE,
    QUERY_KEY,
    REPO_ROOT,
    demo_search_service,
    result_keys,  # noqa: F401
    screenshot,
    search_and_wait,
    serious_accessibility_violations,
    shopper_page,
    upload,
)

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

OTHER_KEY = "0090ca2c.jpg"


@pytest.fixture(scope="module")
def photo_host(tmp_path_factory):
    """A loopback HTTP server holding one catalogue photo, standing in for a shop's image host."""
    folder = tmp_path_factory.mktemp("photo-host")
    shutil.copy(DEMO / "images" / OTHER_KEY, folder / "photo.jpg")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def catalogue():
    return demo_search_service()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, photo_host, catalogue):
    settings = Settings(
        index=str(tmp_path_factory.mktemp("unused")),
        url_allowlist=(photo_host,),
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    with serving(create_app(settings, search_service=catalogue)) as url:
        yield url


@pytest.fixture
def page(browser, base_url):
    with shopper_page(browser, base_url) as page:
        yield page


def first_card(page):
    card = page.locator("#results .result").first
    card.wait_for()
    return card


# ---- The five ways in ------------------------------------------------------------------------------------


def test_an_uploaded_demo_photo_is_its_own_top_result_as_a_very_close_match(page):
    body = upload(page)
    assert body["k"] == 24 and body["image"].startswith("data:image/jpeg;base64,")
    card = first_card(page)
    assert card.get_attribute("data-key") == QUERY_KEY
    assert float(card.get_attribute("data-score")) == pytest.approx(1.0, abs=0.01)
    assert card.locator(".result-tier").inner_text() == "Very close"
    assert "Similarity score 1.00" in card.locator(".result-tier").get_attribute("title")


def test_pasting_an_image_from_the_clipboard_searches_with_it(page):
    paste = f"""async () => {{
        const blob = await (await fetch('/images/{QUERY_KEY}')).blob();
        const data = new DataTransfer();
        data.items.add(new File([blob], 'pasted.jpg', {{type: 'image/jpeg'}}));
        document.dispatchEvent(new ClipboardEvent('paste', {{clipboardData: data, bubbles: true}}));
    }}"""
    body = search_and_wait(page, lambda: page.evaluate(paste))
    assert body["image"].startswith("data:image/jpeg;base64,")
    assert first_card(page).get_attribute("data-key") == QUERY_KEY


def test_an_allow_listed_image_url_is_fetched_and_searched(page, photo_host):
    page.fill("#url-input", f"http://{photo_host}/photo.jpg")
    body = search_and_wait(page, lambda: page.click("#url-button"))
    assert body["url"] == f"http://{photo_host}/photo.jpg"
    assert first_card(page).get_attribute("data-key") == OTHER_KEY


def test_dragging_a_box_on_the_preview_searches_that_region_and_the_keyboard_moves_it(page):
    upload(page)
    box = page.locator("#crop-layer").bounding_box()

    def drag():
        page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75, steps=5)
        page.mouse.up()

    body = search_and_wait(page, drag)
    assert body["crop"] == pytest.approx({"x": 0.25, "y": 0.25, "w": 0.5, "h": 0.5}, abs=0.02)
    assert page.locator("#crop-box").is_visible()
    page.focus("#crop-box")
    page.keyboard.press("ArrowRight")
    moved = search_and_wait(page, lambda: page.keyboard.press("Enter"))
    assert moved["crop"]["x"] == pytest.approx(body["crop"]["x"] + 0.04, abs=0.005)


# ---- Products, not files ---------------------------------------------------------------------------------


def test_a_card_shows_the_title_brand_price_and_a_safe_product_link(page):
    upload(page)
    card = first_card(page)
    assert card.locator(".result-title").inner_text() == "Linen-blend blazer"
    assert card.locator(".result-brand").inner_text() == "Maple Thread"
    assert card.locator(".result-price").inner_text() == "€149.00"
    link = card.locator("a.result-link")
    assert link.inner_text() == "View product"
    assert link.get_attribute("href") == "https://shop.example/products/linen-blend-blazer-e3348ff1"
    assert link.get_attribute("target") == "_blank"
    assert set(link.get_attribute("rel").split()) == {"noopener", "noreferrer"}
    # Every card shows a title and a price, never a file name.
    titles = page.locator("#results .result-title").all_inner_texts()
    assert titles and not any(title.endswith(".jpg") for title in titles)
    assert page.locator("#results .result-price").count() == len(titles)


def test_cards_load_resized_thumbnails_and_keep_the_whole_product_visible(page):
    upload(page)
    image = first_card(page).locator("img")
    assert image.get_attribute("src").endswith(f"/images/{QUERY_KEY}?w=320")
    page.wait_for_function("[...document.querySelectorAll('#results img')].slice(0, 4).every(i => i.complete)")
    natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert max(natural) <= 320
    assert image.evaluate("img => getComputedStyle(img).objectFit") == "contain"  # letterboxed, never cut


def test_clicking_a_card_opens_its_detail_view_without_searching(page):
    upload(page)
    searches = []
    page.on("request", lambda request: searches.append(request) if request.url.endswith("/search") else None)
    second = page.locator("#results .result").nth(1)
    key = second.get_attribute("data-key")
    title = second.locator(".result-title").inner_text()
    second.locator(".result-open").click()
    dialog = page.locator("dialog.detail")
    dialog.wait_for()
    assert searches == []
    assert dialog.get_attribute("data-key") == key
    assert dialog.locator("#detail-title").inner_text() == title
    area = "img => { const r = img.getBoundingClientRect(); return r.width * r.height; }"
    assert dialog.locator(".detail-image").evaluate(area) > 1.3 * second.locator("img").evaluate(area)  # larger
    terms = dialog.locator(".detail-attributes dt").all_inner_texts()
    assert terms[:2] == ["Category", "Kids"]
    link = dialog.locator("a.detail-link")
    assert link.get_attribute("href").startswith("https://shop.example/products/")
    assert set(link.get_attribute("rel").split()) == {"noopener", "noreferrer"}
    assert page.evaluate("document.activeElement.closest('dialog') !== null")  # focus moved into the dialog
    assert dialog.locator("button", has_text="Delete").count() == 0  # only the catalogue page deletes
    body = search_and_wait(page, lambda: dialog.locator(".detail-more").click())
    assert body == {"k": 24, "key": key}
    assert page.locator("dialog.detail").count() == 0
    assert key not in result_keys(page)  # the query itself is excluded
    caption = page.locator("#preview-caption-text").inner_text()
    assert caption.startswith(f"More like {title}") and ".jpg" not in caption


def test_the_detail_view_closes_with_escape_and_gives_focus_back_to_the_card(page):
    upload(page)
    opener = page.locator("#results .result-open").nth(2)
    opener.click()
    page.locator("dialog.detail").wait_for()
    page.keyboard.press("Escape")
    page.locator("dialog.detail").wait_for(state="detached")
    assert opener.evaluate("button => document.activeElement === button")


# ---- Match wording ---------------------------------------------------------------------------------------


def test_weak_matches_are_hidden_behind_show_weaker_matches(page, tmp_path):
    """Noise looks like nothing in the catalogue: its nearest items are weak matches, hidden until asked for."""
    noise = np.random.default_rng(7).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    Image.fromarray(noise).save(path)
    search_and_wait(page, lambda: page.set_input_files("#file-input", str(path)))
    weaker = page.locator("#show-weaker")
    assert weaker.is_visible()
    hidden = int(weaker.inner_text().split("(")[1].rstrip(")"))
    shown = page.locator("#results .result").count()
    assert hidden > 0 and shown + hidden == 24
    assert "weaker hidden" in page.locator("#status").inner_text()
    if shown == 0:
        assert "No close matches" in page.locator("#empty-text").inner_text()
    weaker.click()
    assert page.locator("#results .result").count() == 24
    assert page.locator("#results .tier-weak").count() == hidden
    assert weaker.is_hidden()


def test_show_more_asks_for_the_next_page_of_results(page):
    upload(page)
    assert page.locator("#results .result").count() == 24
    more = page.locator("#show-more")
    assert more.is_visible()
    body = search_and_wait(page, more.click)
    assert body["k"] == 48 and body["image"].startswith("data:image/jpeg")
    assert page.locator("#results .result").count() == 48


def test_match_colour_sends_a_colour_weight_only_when_on(page):
    body = upload(page)
    assert "colour" not in body
    response_status = {}

    def toggle():
        with page.expect_response("**/search") as info:
            page.click("#colour-toggle")
        response_status["status"] = info.value.status
        response_status["body"] = info.value.request.post_data_json

    toggle()
    assert response_status["body"]["colour"] == 0.5
    if response_status["status"] == 200:
        page.wait_for_function("document.querySelector('#results').getAttribute('aria-busy') === 'false'")
        assert page.locator("#colour-toggle").is_checked()
    else:  # a server without colour matching refuses the field: say so plainly and keep the previous results
        assert response_status["status"] == 422
        page.locator("#toast[data-kind=error]").wait_for()
        assert "Match colour isn't available" in page.locator("#toast-text").inner_text()
        assert not page.locator("#colour-toggle").is_checked()


# ---- Errors, layouts, accessibility, the README picture --------------------------------------------------


def test_a_file_that_is_not_an_image_gets_a_plain_error_with_no_results(page):
    not_an_image = {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"shopping list: socks, scarf\n" * 20}
    with page.expect_response("**/search") as response_info:
        page.set_input_files("#file-input", files=[not_an_image])
    assert response_info.value.status == 400
    page.locator("#toast[data-kind=error]").wait_for()
    assert (
        page.locator("#toast-text").inner_text()
        == "That file isn't a photo we can read. Try a JPEG, PNG or WebP photo."
    )
    assert page.locator("#results .result").count() == 0


def test_with_an_api_key_the_ui_asks_for_it_once_and_then_searches(browser, catalogue, tmp_path):
    settings = Settings(index=str(tmp_path), api_key="shop-key-123", cache_dir=str(tmp_path / "cache"))
    with serving(create_app(settings, search_service=catalogue)) as url, shopper_page(browser, url) as page:
        assert page.locator("#api-key-form").is_visible()
        assert page.locator("#chips .chip").count() == 0  # /stats was refused without the key
        page.fill("#api-key-input", "shop-key-123")
        page.click("#api-key-form button")
        page.locator("#chips .chip[data-label='Shoes']").wait_for()
        assert page.locator("#api-key-form").is_hidden()
        upload(page)
        assert first_card(page).get_attribute("data-key") == QUERY_KEY


@pytest.mark.parametrize("device_name", ["desktop", "phone"])
def test_axe_finds_no_serious_violations_empty_and_with_results(browser, base_url, device_name):
    device = DESKTOP if device_name == "desktop" else PHONE
    with shopper_page(browser, base_url, device) as page:
        assert serious_accessibility_violations(page) == [], "empty page"
        upload(page)
        page.wait_for_function("[...document.querySelectorAll('#results img')].slice(0, 4).every(i => i.complete)")
        assert serious_accessibility_violations(page) == [], "with results"
        page.locator("#results .result-open").first.click()
        page.locator("dialog.detail").wait_for()
        assert serious_accessibility_violations(page) == [], "detail view"


def test_desktop_and_phone_layouts_render_product_cards_without_horizontal_scrolling(browser, base_url):
    for name, device in (("desktop", DESKTOP), ("mobile", PHONE)):
        with shopper_page(browser, base_url, device) as page:
            upload(page)
            page.wait_for_function("[...document.querySelectorAll('#results img')].slice(0, 6).every(i => i.complete)")
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{name} layout scrolls sideways by {overflow} px"
            page.evaluate("document.activeElement.blur()")
            if name == "mobile":
                screenshot(page, "mobile-results")
                page.evaluate("window.scrollTo(0, 0)")
                page.wait_for_timeout(300)
            shot = screenshot(page, name, full_page=(name == "mobile"))
            assert shot.stat().st_size > 10_000
            if name == "desktop" and os.environ.get("VISUAL_SEARCH_UPDATE_README_SCREENSHOT") == "1":
                # Tests write only to artifacts/; the README's picture changes when asked (make screenshot).
                page.screenshot(path=str(REPO_ROOT / "docs" / "screenshot.png"))
