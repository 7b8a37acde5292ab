"""Issue 21, items 3-5 and 8, at 1280x800 and at 390x844 with touch: filters in a sticky bar above the results,
counting the results shown, that bring the results into view; a pinned query thumbnail on the phone; errors
that say whose side the problem is on, with Retry only where it can succeed; files checked and downscaled
before upload; focus after "Show more"; the catch-all setting only where there are catch-all labels; cards of
one height; the detail view's Close clear of the photo on a phone. Real model, real server, real Chromium."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from live_server import index_folder, serving
from PIL import Image
from shop import DEMO, DESKTOP, PHONE, screenshot, search_and_wait, shopper_page, upload

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

DEVICES = pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])


def top_in_viewport(page, selector: str) -> bool:
    """The element's top edge is on screen, below the sticky bars that cover the page's top."""
    return page.evaluate(
        """selector => {
            const top = document.querySelector(selector).getBoundingClientRect().top;
            const covered = Math.max(document.querySelector('.topbar').getBoundingClientRect().bottom, 0);
            return top >= covered - 1 && top < window.innerHeight;
        }""",
        selector,
    )


def wait_settled(page) -> None:
    page.wait_for_timeout(700)  # a smooth scroll has finished


def shown_labels(page) -> dict[str, int]:
    labels = page.locator("#results .result").evaluate_all("cards => cards.map(card => card.dataset.label)")
    return {label: labels.count(label) for label in set(labels)}


def chip_counts(page) -> dict[str, int]:
    return {
        chip["label"]: chip["count"]
        for chip in page.locator("#chips .chip").evaluate_all(
            """chips => chips.map(chip => ({label: chip.dataset.label,
                count: Number((chip.querySelector('.chip-count') || {textContent: '0'}).textContent)}))"""
        )
    }


# ---- Filters where the results are ---------------------------------------------------------------------


@DEVICES
def test_the_filter_bar_sits_above_the_results_and_stays_there_as_they_scroll(browser, base_url, device):
    with shopper_page(browser, base_url, device) as page:
        upload(page)
        bar = page.locator("#filter-bar").bounding_box()
        assert bar["y"] < page.locator("#results").bounding_box()["y"]  # above the results
        assert bar["height"] <= 120  # compact: one line of chips (two with active filters)
        page.evaluate("document.querySelector('#results .result:last-child').scrollIntoView()")
        wait_settled(page)
        assert top_in_viewport(page, "#filter-bar")  # sticky: still on screen at the end of the results
        screenshot(page, f"filter-bar-scrolled-{'phone' if device is PHONE else 'desktop'}")


@DEVICES
def test_chip_counts_are_of_the_results_shown_and_a_tap_brings_the_results_into_view(browser, base_url, device):
    with shopper_page(browser, base_url, device) as page:
        upload(page)
        counts = chip_counts(page)
        assert {label: n for label, n in counts.items() if n} == shown_labels(page)  # not catalogue-wide
        page.evaluate("document.querySelector('#results .result:last-child').scrollIntoView()")
        wait_settled(page)
        label = next(label for label, n in counts.items() if n)
        body = search_and_wait(page, lambda: page.click(f"#chips .chip[data-label='{label}']"))
        assert body["filters"] == {"label": [label]}
        wait_settled(page)
        assert top_in_viewport(page, "#results")  # the new results, from their top
        assert set(shown_labels(page)) == {label}
        assert chip_counts(page)[label] == page.locator("#results .result").count()
        assert page.evaluate("document.activeElement.dataset.label") == label  # focus stays on the chip


# ---- The pinned query photo ----------------------------------------------------------------------------


def test_on_a_phone_a_small_copy_of_the_query_photo_is_pinned_once_the_photo_scrolls_away(browser, base_url):
    with shopper_page(browser, base_url, PHONE) as page:
        upload(page)
        thumb = page.locator("#query-thumb")
        page.evaluate("window.scrollTo(0, 0)")
        wait_settled(page)
        assert thumb.is_hidden()  # the photo itself is on screen
        page.evaluate("document.querySelector('#results > li:nth-child(6)').scrollIntoView()")
        thumb.wait_for(state="visible")
        assert top_in_viewport(page, "#query-thumb")
        assert page.locator("#query-thumb-image").get_attribute("src") == page.locator("#preview-image").get_attribute(
            "src"
        )
        screenshot(page, "phone-pinned-query")
        thumb.click()
        wait_settled(page)
        assert page.locator("#preview-stage").is_visible() and thumb.is_hidden()


def test_on_a_desktop_the_query_photo_stays_beside_the_results_and_no_thumbnail_is_pinned(browser, base_url):
    with shopper_page(browser, base_url, DESKTOP) as page:
        upload(page)
        page.evaluate("document.querySelector('#results .result:last-child').scrollIntoView()")
        wait_settled(page)
        assert page.locator("#query-thumb").is_hidden()
        assert top_in_viewport(page, "#preview-stage")


# ---- Errors in plain words, Retry where it can succeed ------------------------------------------------


def toast(page) -> tuple[str, bool, str]:
    page.locator("#toast[data-kind=error]").wait_for()
    return (
        page.locator("#toast-text").inner_text(),
        page.locator("#toast-retry").is_visible(),
        page.evaluate("document.activeElement.id"),
    )


SMALL = dict(
    zip(
        ["e3348ff1.jpg", "0090ca2c.jpg", "e8653193.jpg", "841cdda3.jpg", "a60677b2.jpg", "609b13bd.jpg"],
        ["Blazer", "Shoes", "Blazer", "Longsleeve", "Longsleeve", "Longsleeve"],
        strict=True,
    )
)


def small_index(folder, index_dir):
    """Six demo photos, labelled without any catch-all label, in their own index."""
    folder.mkdir(parents=True, exist_ok=True)
    for key in SMALL:
        shutil.copy(DEMO / "images" / key, folder / key)
    return index_folder(folder, index_dir, labels=SMALL)


@pytest.fixture(scope="module")
def small_catalogue(tmp_path_factory):
    return small_index(tmp_path_factory.mktemp("small-catalogue"), tmp_path_factory.mktemp("small-index"))


@DEVICES
def test_a_stopped_server_is_our_side_not_the_shoppers_connection_and_retry_is_offered(
    browser, small_catalogue, tmp_path, device
):
    settings = Settings(index=str(tmp_path / "unused"), cache_dir=str(tmp_path / "cache"))
    with serving(create_app(settings, search_service=small_catalogue)) as url:
        context = browser.new_context(**device)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        upload(page)
    try:  # the server has stopped; the page is still open
        page.click("#chips .chip[data-label='Blazer']")
        text, retry, focused = toast(page)
        assert "can't reach the search service" in text and "our side" in text and "offline" not in text
        assert retry and focused == "toast-retry"
        page.context.set_offline(True)
        page.click("#chips .chip[data-label='Blazer']")
        text, retry, _ = toast(page)
        assert text.startswith("Your device is offline") and retry
    finally:
        context.close()


@DEVICES
def test_a_server_error_says_it_is_on_our_side_and_offers_retry(browser, tmp_path, device):
    catalogue = small_index(tmp_path / "photos", tmp_path / "index")
    settings = Settings(index=str(tmp_path / "unused"), cache_dir=str(tmp_path / "cache"))
    with serving(create_app(settings, search_service=catalogue)) as url, shopper_page(browser, url, device) as page:
        upload(page)
        catalogue.index.close()  # a real 5xx from the real server: its index closed under it (503 index_closed)
        with page.expect_response("**/search") as answer:
            page.click("#chips .chip[data-label='Blazer']")
        assert answer.value.status >= 500, answer.value.text()
        text, retry, focused = toast(page)
        assert "on our side" in text and retry and focused == "toast-retry"


@DEVICES
@pytest.mark.parametrize(
    ("name", "mime", "data", "expected"),
    [
        ("notes.txt", "text/plain", b"socks, scarf\n" * 20, "That kind of file isn't supported"),
        ("drawing.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "That kind of file isn't"),
        ("huge.jpg", "image/jpeg", b"\xff\xd8\xff" + b"\0" * (12 * 1024 * 1024), "That photo is too large"),
    ],
    ids=["text", "svg", "12MB-fake-jpeg"],
)
def test_a_file_the_server_cannot_take_is_refused_before_upload_without_retry(
    browser, base_url, device, name, mime, data, expected
):
    with shopper_page(browser, base_url, device) as page:
        sent = []
        page.on("request", lambda request: sent.append(request.url) if request.url.endswith("/search") else None)
        page.set_input_files("#file-input", files=[{"name": name, "mimeType": mime, "buffer": data}])
        text, retry, focused = toast(page)
        assert text.startswith(expected) and not retry and focused == "toast-dismiss"
        assert sent == []  # nothing was uploaded


@DEVICES
def test_a_fake_jpeg_is_refused_by_the_server_and_gets_no_retry(browser, base_url, device):
    with shopper_page(browser, base_url, device) as page:
        fake = {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"not really a photo\n" * 50}
        with page.expect_response("**/search") as answer:
            page.set_input_files("#file-input", files=[fake])
        assert answer.value.status == 400
        text, retry, focused = toast(page)
        assert text.startswith("That file isn't a photo we can read") and not retry and focused == "toast-dismiss"


def test_a_photo_over_the_upload_limit_is_downscaled_in_the_browser_and_searched(browser, base_url):
    noise = np.random.default_rng(3).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG", quality=95)
    photo = buffer.getvalue()
    assert len(photo) > Settings().max_upload_bytes  # the server would refuse it whole
    with shopper_page(browser, base_url, DESKTOP) as page:
        file = {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": photo}
        # Decoding and re-encoding 12 MP in the browser is slow on a loaded test machine: a longer wait.
        with page.expect_response("**/search", timeout=120_000) as answer:
            page.set_input_files("#file-input", files=[file])
        assert answer.value.status == 200
        sent = len(answer.value.request.post_data_json["image"]) * 3 // 4
        assert sent < len(photo) / 3, f"{sent} bytes sent for a {len(photo)}-byte photo"
        width, height = page.evaluate(
            "() => new Promise(r => { const i = new Image(); i.onload = () => r([i.width, i.height]);"
            " i.src = document.getElementById('preview-image').src; })"
        )
        assert max(width, height) == 2048  # the longer side, downscaled


# ---- Focus, settings, grid, detail view -----------------------------------------------------------------


@DEVICES
def test_show_more_moves_focus_to_the_first_new_card(browser, base_url, device):
    with shopper_page(browser, base_url, device) as page:
        upload(page)
        assert page.locator("#results .result").count() == 24
        search_and_wait(page, lambda: page.click("#show-more"))
        focused = page.evaluate(
            "[...document.querySelectorAll('#results .result-open')].indexOf(document.activeElement)"
        )
        assert focused == 24


@DEVICES
def test_the_catch_all_setting_shows_only_for_a_catalogue_that_has_catch_all_labels(
    browser, base_url, small_catalogue, tmp_path, device
):
    with shopper_page(browser, base_url, device) as page:
        page.click("#chips-more")
        assert page.locator("#hide-catch-all").is_visible()  # the demo catalogue has Not sure, Other, Skip
    settings = Settings(index=str(tmp_path / "unused"), cache_dir=str(tmp_path / "cache"))
    with (
        serving(create_app(settings, search_service=small_catalogue)) as url,
        shopper_page(browser, url, device) as page,
    ):
        page.locator("#chips .chip[data-label='Blazer']").wait_for()
        assert page.locator("#catch-all-setting").is_hidden()


@DEVICES
def test_result_cards_line_up_whatever_the_photo_shape_title_or_brand(browser, base_url, device):
    with shopper_page(browser, base_url, device) as page:
        upload(page)
        page.wait_for_function("[...document.querySelectorAll('#results img')].slice(0, 8).every(i => i.complete)")
        rows = page.locator("#results .result").evaluate_all(
            """cards => cards.slice(0, 12).map(card => {
                const box = card.getBoundingClientRect();
                const part = (selector) => { const e = card.querySelector(selector);
                                             return e ? Math.round(e.getBoundingClientRect().top - box.top) : null; };
                return {top: Math.round(box.top), height: Math.round(box.height), price: part('.result-price'),
                        actions: part('.result-actions'), title: part('.result-title')};
            })"""
        )
        for top in {row["top"] for row in rows}:
            row = [card for card in rows if card["top"] == top]
            assert len({card["height"] for card in row}) == 1, row
            assert len({card["actions"] for card in row}) == 1, row
            assert len({card["price"] for card in row if card["price"] is not None}) <= 1, row


def test_on_a_phone_the_detail_views_close_button_does_not_cover_the_photo(browser, base_url):
    with shopper_page(browser, base_url, PHONE) as page:
        upload(page)
        page.locator("#results .result-open").first.click()
        page.locator("dialog.detail").wait_for()
        close = page.locator("dialog.detail .detail-close").bounding_box()
        photo = page.locator("dialog.detail .detail-image").bounding_box()
        assert close["y"] + close["height"] <= photo["y"], (close, photo)
        screenshot(page, "phone-detail")
