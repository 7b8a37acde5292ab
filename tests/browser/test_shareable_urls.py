"""A search you can go back to and share (issue 21, item 1), in Chromium at 1280x800 and 390x844 against the real
server and model: every search, "More like this", the detail view and the catalogue's page have an address;
reload, Back, Forward and a fresh page opened on a copied address each show what the shopper saw (the same
result keys in the same order); an uploaded photo is shared through the server's shared uploads, and one that
has expired says so in plain words, without a Retry that cannot help."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import parse_qs, urlparse

import pytest
from live_server import serving
from shop import (
    DEMO,
    DESKTOP,
    PHONE,
    QUERY_KEY,
    demo_search_service,
    result_keys,
    search_and_wait,
    serious_accessibility_violations,
    shopper_page,
    upload,
)

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

MAX_AGE_S = 3600
QUERY_ID = hashlib.sha256((DEMO / "images" / QUERY_KEY).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def kept_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("shared-uploads")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, kept_folder):
    settings = Settings(
        index=str(tmp_path_factory.mktemp("unused")),
        cache_dir=str(tmp_path_factory.mktemp("cache")),
        shared_uploads_store=str(kept_folder),
        shared_uploads_max_age_s=MAX_AGE_S,
    )
    with serving(create_app(settings, search_service=demo_search_service())) as url:
        yield url


@pytest.fixture(params=["desktop", "phone"])
def device(request):
    return DESKTOP if request.param == "desktop" else PHONE


@pytest.fixture
def page(browser, base_url, device):
    with shopper_page(browser, base_url, device) as page:
        yield page


def address(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def open_fresh(browser, url: str, device: dict):
    """A new browser context (no history, no memory) on `url`, as a friend opening a shared link."""
    context = browser.new_context(**device)
    fresh = context.new_page()
    with fresh.expect_response("**/search"):
        fresh.goto(url)
    fresh.wait_for_function("document.body.dataset.ready === 'true'")
    wait_for_results(fresh)
    return context, fresh


def wait_for_results(page) -> None:
    page.wait_for_function(
        "document.querySelector('#results').getAttribute('aria-busy') === 'false'"
        " && getComputedStyle(document.querySelector('#results')).opacity === '1'"
    )


def test_reload_back_forward_and_a_copied_link_show_the_same_results(page, browser, device):
    upload(page)
    assert address(page) == {"upload": [QUERY_ID]}
    seen = [(page.url, result_keys(page))]
    search_and_wait(page, lambda: page.click("#chips .chip[data-label='Outwear']"))
    assert address(page)["label"] == ["Outwear"]
    seen.append((page.url, result_keys(page)))
    search_and_wait(page, lambda: page.click("#crop-button"))
    assert address(page)["crop"] == ["0.2,0.2,0.6,0.6"]
    seen.append((page.url, result_keys(page)))
    assert len({url for url, _ in seen}) == 3 and seen[0][1] != seen[1][1] != seen[2][1], seen

    search_and_wait(page, lambda: page.reload())
    assert (page.url, result_keys(page)) == seen[2]
    assert page.locator("#chips .chip[data-label='Outwear']").get_attribute("aria-pressed") == "true"
    assert page.locator("#crop-box").is_visible()
    for expected in (seen[1], seen[0]):
        search_and_wait(page, page.go_back)
        assert (page.url, result_keys(page)) == expected
    assert page.locator("#chips .chip[aria-pressed=true]").count() == 0
    search_and_wait(page, page.go_forward)
    assert (page.url, result_keys(page)) == seen[1]

    context, fresh = open_fresh(browser, seen[2][0], device)
    try:
        assert result_keys(fresh) == seen[2][1]
        assert fresh.locator("#preview-image").evaluate("image => image.complete && image.naturalWidth > 0")
        assert fresh.locator("#chips .chip[data-label='Outwear']").get_attribute("aria-pressed") == "true"
        assert serious_accessibility_violations(fresh) == []
    finally:
        context.close()


def test_more_like_this_and_the_detail_view_have_addresses(page, browser, device, base_url):
    search_and_wait(page, lambda: page.goto(f"{base_url}/?key={QUERY_KEY}"))
    assert address(page) == {"key": [QUERY_KEY]}
    first = result_keys(page)
    more_like = first[0]
    search_and_wait(page, lambda: page.locator("#results .result").first.locator(".result-more").click())
    assert address(page) == {"key": [more_like]}
    similar = result_keys(page)
    assert similar != first

    opened = similar[1]
    page.locator(f"#results .result[data-key='{opened}'] .result-open").click()
    page.locator("dialog.detail[open]").wait_for()
    assert address(page) == {"key": [more_like], "item": [opened]}
    detail_url = page.url
    page.go_back()  # Back closes the detail view, as on a phone
    page.locator("dialog.detail").wait_for(state="detached")
    assert address(page) == {"key": [more_like]}
    page.go_forward()
    page.locator(f"dialog.detail[open][data-key='{opened}']").wait_for()
    page.locator("dialog.detail .detail-close").click()
    page.locator("dialog.detail").wait_for(state="detached")
    page.wait_for_url(lambda url: "item=" not in url)  # closing goes back to the search's own entry
    assert address(page) == {"key": [more_like]}

    search_and_wait(page, page.go_back)
    assert address(page) == {"key": [QUERY_KEY]} and result_keys(page) == first

    context, fresh = open_fresh(browser, detail_url, device)
    try:
        fresh.locator(f"dialog.detail[open][data-key='{opened}']").wait_for()
        assert result_keys(fresh) == similar
        assert serious_accessibility_violations(fresh) == []
        fresh.keyboard.press("Escape")
        fresh.locator("dialog.detail").wait_for(state="detached")
        assert parse_qs(urlparse(fresh.url).query) == {"key": [more_like]}
    finally:
        context.close()


def test_show_weaker_and_show_more_are_in_the_address_and_survive_a_reload(page, base_url):
    search_and_wait(page, lambda: page.goto(f"{base_url}/?key={QUERY_KEY}&label=Pants"))
    page.locator("#show-weaker").click()
    assert address(page)["weak"] == ["1"]
    shown = page.locator("#results .result").count()
    if page.locator("#show-more").is_visible():
        search_and_wait(page, lambda: page.click("#show-more"))
        assert address(page)["k"] == ["48"]
        shown = page.locator("#results .result").count()
    keys = result_keys(page)
    search_and_wait(page, page.reload)
    assert result_keys(page) == keys and page.locator("#results .result").count() == shown
    assert page.locator("#show-weaker").is_hidden()


def test_an_expired_shared_photo_says_so_kindly(page, browser, device, kept_folder):
    upload(page)
    shared = page.url
    old = time.time() - MAX_AGE_S - 60
    os.utime(kept_folder / QUERY_ID, (old, old))
    context = browser.new_context(**device)
    try:
        fresh = context.new_page()
        with fresh.expect_response("**/search") as answer:
            fresh.goto(shared)
        # 410, or 404 when the preview's GET /shared-uploads came first and deleted the expired photo.
        assert answer.value.status in (404, 410) and answer.value.json()["error"]["code"] == "upload_expired"
        fresh.locator("#toast[data-kind=error]").wait_for()
        assert fresh.locator("#toast-text").inner_text().startswith("This shared photo has expired")
        assert fresh.locator("#toast-retry").is_hidden()
        assert "upload it again" in fresh.locator("#empty-text").inner_text().lower()
        assert fresh.locator("#preview").is_hidden() and fresh.locator("#choose-button").is_visible()
        assert serious_accessibility_violations(fresh) == []
    finally:
        context.close()


def test_a_link_to_a_photo_never_kept_says_so_too(browser, base_url):
    with shopper_page(browser, f"{base_url}/?upload={'f' * 64}") as page:
        page.locator("#toast[data-kind=error]").wait_for()
        assert page.locator("#toast-text").inner_text().startswith("This shared photo has expired")


def test_catalogue_page_two_has_an_address_that_reload_and_back_keep(browser, base_url, device):
    context = browser.new_context(**device)
    try:
        page = context.new_page()
        page.goto(f"{base_url}/catalogue.html")
        page.wait_for_function("document.querySelectorAll('#items .item-open').length > 0")
        first_page = items(page)
        page.click("#next-page")
        page.wait_for_function(f"document.querySelector('#items .item-open').dataset.key !== {first_page[0]!r}")
        assert parse_qs(urlparse(page.url).query) == {"page": ["2"]}
        second_page = items(page)
        page.reload()
        page.wait_for_function("document.querySelectorAll('#items .item-open').length > 0")
        assert items(page) == second_page and page.locator("#page-info").inner_text().startswith("Page 2 of")
        page.click("#label-filters [data-label='Shoes']")
        page.wait_for_function("document.querySelector('#catalogue-summary').textContent.includes('in Shoes')")
        assert parse_qs(urlparse(page.url).query) == {"label": ["Shoes"]}
        page.go_back()
        page.wait_for_function(f"document.querySelector('#items .item-open').dataset.key === {second_page[0]!r}")
        assert items(page) == second_page
        page.go_back()
        page.wait_for_function(f"document.querySelector('#items .item-open').dataset.key === {first_page[0]!r}")
        assert items(page) == first_page and urlparse(page.url).query == ""
    finally:
        context.close()


def items(page) -> list[str]:
    return page.locator("#items .item-open").evaluate_all("items => items.map(item => item.dataset.key)")


def test_the_address_mapping_round_trips_and_refuses_what_it_never_writes(browser, base_url):
    with shopper_page(browser, base_url) as page:
        checks = page.evaluate("""async () => {
            const m = await import('/url_state.js');
            const search = {query: {kind: 'upload', upload: 'a'.repeat(64)}, crop: {x: 0.1, y: 0.2, w: 0.5, h: 0.25},
                            labels: ['Shoes', 'Outwear'], colour: true, k: 48, showWeak: true, item: 'x/y 1.jpg'};
            const text = m.searchToQueryString(search, {defaultK: 24});
            const back = m.searchFromQueryString(text, {defaultK: 24});
            const keyOnly = m.searchFromQueryString(m.searchToQueryString(
                {query: {kind: 'key', key: 'a&b=c.jpg'}, labels: [], k: 24}, {defaultK: 24}), {defaultK: 24});
            return {
                text, same: JSON.stringify(back) === JSON.stringify(search), keyOnly,
                twoSources: m.searchFromQueryString('?key=a.jpg&url=https://x.example/p.jpg', {defaultK: 24}),
                badUpload: m.searchFromQueryString('?upload=../../etc/passwd', {defaultK: 24}),
                badUrl: m.searchFromQueryString('?url=javascript:alert(1)', {defaultK: 24}),
                badCrop: m.searchFromQueryString('?key=a.jpg&crop=0.5,0.5,0.6,0.1', {defaultK: 24}).crop,
                badK: m.searchFromQueryString('?key=a.jpg&k=1000', {defaultK: 24}).k,
                sameQuestion: m.sameQuestion(search, {...search, k: 96, showWeak: false, item: null}),
                otherQuestion: m.sameQuestion(search, {...search, labels: ['Shoes']}),
                catalogue: m.catalogueToQueryString({page: 3, label: 'Shoes'}),
                catalogueBack: m.catalogueFromQueryString('?page=3&label=Shoes'),
                catalogueBad: m.catalogueFromQueryString('?page=-2'),
            };
        }""")
    assert checks["same"], checks["text"]
    assert checks["keyOnly"]["query"] == {"kind": "key", "key": "a&b=c.jpg"} and checks["keyOnly"]["k"] == 24
    assert checks["twoSources"] is None and checks["badUpload"] is None and checks["badUrl"] is None
    assert checks["badCrop"] is None and checks["badK"] == 24
    assert checks["sameQuestion"] is True and checks["otherQuestion"] is False
    assert checks["catalogue"] == "?page=3&label=Shoes"
    assert checks["catalogueBack"] == {"page": 3, "label": "Shoes", "similar": None}
    assert checks["catalogueBad"]["page"] == 1
