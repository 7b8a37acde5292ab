"""The catalogue page in Debian's Chromium against the real server (real model, demo catalogue): browse, open an
item, add one and find it by search, delete it; and no write controls when the server has no API key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from live_server import index_folder, read_labels, serving
from shop import browser, demo_search_service  # noqa: F401 - a fixture

from visual_search.bootstrap import build_embedder
from visual_search.core.settings import Settings
from visual_search.server.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "demo" / "catalogue"
NEW_PHOTO = REPO_ROOT / "tests" / "fixtures" / "photos" / "hat.jpg"  # not in the demo catalogue
API_KEY = "catalogue-operator-key"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    images = tmp_path_factory.mktemp("demo") / "images"
    shutil.copytree(DEMO / "images", images)  # deleting an uploaded item must never touch the repository
    labels = read_labels(DEMO / "labels.csv")
    return index_folder(images, tmp_path_factory.mktemp("index") / "idx", build_embedder(Settings()), labels)


def serve(catalogue, tmp_path, api_key):
    settings = Settings(index=str(tmp_path / "unused"), api_key=api_key, image_store=str(tmp_path / "uploads"))
    return serving(create_app(settings, search_service=catalogue))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def unlock(page, base_url):
    page.goto(f"{base_url}/catalogue.html")
    page.fill("#api-key", API_KEY)
    page.click("#key-form button[type=submit]")
    page.locator("#items .item-open").first.wait_for()


def test_browse_filter_page_and_open_an_item(page, catalogue, tmp_path):
    with serve(catalogue, tmp_path, API_KEY) as base_url:
        unlock(page, base_url)
        assert page.locator("#items .item-open").count() == 48
        assert "of 309" in page.inner_text("#catalogue-summary")
        shoes = page.locator("#label-filters button[data-label='Shoes']")
        count = int(shoes.inner_text().split("(")[1].rstrip(")"))
        shoes.click()
        page.wait_for_function("document.querySelector('#catalogue-summary').textContent.includes('in Shoes')")
        assert shoes.get_attribute("aria-pressed") == "true"
        assert page.locator("#items .item-open").count() == min(count, 48)
        page.click("#label-filters button[data-label='']")
        page.wait_for_function("!document.querySelector('#catalogue-summary').textContent.includes(' in ')")
        first_key = page.locator("#items .item-open").first.get_attribute("data-key")
        page.click("#next-page")
        page.wait_for_function("document.querySelector('#catalogue-summary').textContent.startsWith('Showing 49')")
        assert page.locator("#items .item-open").first.get_attribute("data-key") > first_key

        item = page.locator("#items .item-open").first
        key = item.get_attribute("data-key")
        item.click()
        dialog = page.locator("dialog.detail")
        dialog.wait_for()
        assert dialog.get_attribute("data-key") == key
        assert dialog.get_by_role("button", name="Delete", exact=True).count() == 1  # the operator may delete


def test_add_an_item_find_it_by_search_then_delete_it(page, catalogue, tmp_path):
    with serve(catalogue, tmp_path, API_KEY) as base_url:
        unlock(page, base_url)
        page.set_input_files("#add-file", str(NEW_PHOTO))
        page.fill("#add-key", "added/sun-hat.jpg")
        page.fill("#add-label", "Hat")
        page.fill("#add-title", "Sun hat")
        page.fill("#add-price", "24.50")
        page.fill("#add-currency", "eur")
        with page.expect_response("**/items") as added:
            page.click("#add-button")
        assert added.value.status == 201, added.value.text()
        page.wait_for_function("document.querySelector('#operator-status').textContent.includes('Added')")
        assert catalogue.index.get(["added/sun-hat.jpg"])["added/sun-hat.jpg"].product.currency == "EUR"

        page.goto(base_url)  # the search page, same tab: the key is remembered for the session
        page.wait_for_selector("body[data-ready=true]")
        with page.expect_response("**/search") as searched:
            page.set_input_files("#file-input", str(NEW_PHOTO))
        assert searched.value.status == 200
        first = page.locator("#results .result").first
        first.wait_for()
        assert first.get_attribute("data-key") == "added/sun-hat.jpg"

        page.goto(f"{base_url}/catalogue.html")
        page.click("#label-filters button[data-label='Hat']")
        page.locator("#items .item-open[data-key='added/sun-hat.jpg']").click()
        dialog = page.locator("dialog.detail")
        dialog.get_by_role("button", name="Delete", exact=True).click()
        with page.expect_response("**/items/added/sun-hat.jpg") as deleted:
            dialog.get_by_role("button", name="Yes, delete").click()
        assert deleted.value.status == 200
        page.wait_for_function("document.querySelector('#operator-status').textContent.includes('Deleted')")
        # The confirmation is on screen and has focus (the dialog and the card that opened it are gone).
        assert page.evaluate("document.activeElement.id") == "operator-status"
        box = page.locator("#operator-status").bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= 900
        assert page.locator("#items .item-open[data-key='added/sun-hat.jpg']").count() == 0
        assert catalogue.index.get(["added/sun-hat.jpg"]) == {}
        assert not (tmp_path / "uploads" / "added" / "sun-hat.jpg").exists()


def test_without_a_configured_key_the_page_browses_but_offers_no_write_controls(page, catalogue, tmp_path):
    with serve(catalogue, tmp_path, None) as base_url:
        page.goto(f"{base_url}/catalogue.html")
        page.locator("#items .item-open").first.wait_for()
        assert page.locator("#operator").is_hidden()
        page.locator("#items .item-open").first.click()
        dialog = page.locator("dialog.detail")
        dialog.wait_for()
        assert dialog.get_by_role("button", name="Delete", exact=True).count() == 0
        key = dialog.get_attribute("data-key")
        with page.expect_response("**/search") as searched:
            dialog.get_by_role("button", name="More like this").click()
        assert searched.value.request.post_data_json == {"key": key, "k": 24}
        page.wait_for_function("document.querySelector('#catalogue-summary').textContent.includes('most like')")
        keys = page.locator("#items .item-open").evaluate_all("items => items.map(item => item.dataset.key)")
        assert len(keys) == 24 and key not in keys
        page.click("#previous-page")  # back to the catalogue page it came from
        page.wait_for_function("document.querySelector('#catalogue-summary').textContent.startsWith('Showing 1')")


# ---- Issue 21, item 7: paging, product cards, "more like" names the product, an inactive pager ----------

PHONE_VIEWPORT = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP_VIEWPORT = {"viewport": {"width": 1280, "height": 800}}


def heading_in_view_and_focused(page) -> bool:
    return page.evaluate("""(() => { const h = document.getElementById('catalogue-heading');
        const top = h.getBoundingClientRect().top;
        const covered = document.querySelector('.topbar').getBoundingClientRect().bottom;
        return document.activeElement === h && top >= covered && top < window.innerHeight / 2; })()""")


@pytest.mark.parametrize("device", [DESKTOP_VIEWPORT, PHONE_VIEWPORT], ids=["desktop", "phone"])
def test_next_shows_the_new_page_from_its_top_and_cards_show_brand_and_price(browser, tmp_path, device):
    context = browser.new_context(**device)
    page = context.new_page()
    try:
        with serve(demo_search_service(), tmp_path, None) as base_url:  # the demo catalogue with its product data
            page.goto(f"{base_url}/catalogue.html")
            page.locator("#items .item-open").first.wait_for()
            card = page.locator("#items .item-open").first
            assert card.locator(".item-brand").inner_text().strip() and "€" in card.locator(".item-price").inner_text()
            page.locator("#next-page").scroll_into_view_if_needed()
            page.click("#next-page")
            page.wait_for_function("document.querySelector('#catalogue-summary').textContent.startsWith('Showing 49')")
            assert heading_in_view_and_focused(page)
            page.locator("#items .item-open").last.scroll_into_view_if_needed()
            page.click("#previous-page")
            page.wait_for_function("document.querySelector('#catalogue-summary').textContent.startsWith('Showing 1')")
            assert heading_in_view_and_focused(page)
    finally:
        context.close()


def test_more_like_this_names_the_product_and_a_single_page_pager_looks_inactive(page, tmp_path):
    with serve(demo_search_service(), tmp_path, None) as base_url:
        page.goto(f"{base_url}/catalogue.html")
        page.locator("#items .item-open").first.wait_for()
        page.click("#label-filters button[data-label='Hat']")
        page.wait_for_function("document.querySelector('#catalogue-summary').textContent.includes('in Hat')")
        assert page.inner_text("#page-info") == "Page 1 of 1"
        for button in ("#previous-page", "#next-page"):
            assert page.locator(button).is_disabled()
            assert float(page.locator(button).evaluate("b => getComputedStyle(b).opacity")) < 0.6
        item = page.locator("#items .item-open").first
        title = item.locator(".item-title").inner_text()
        item.click()
        with page.expect_response("**/search"):
            page.locator("dialog.detail").get_by_role("button", name="More like this").click()
        page.wait_for_function("document.querySelector('#catalogue-summary').textContent.includes('most like')")
        summary = page.inner_text("#catalogue-summary")
        assert summary == f"24 items most like “{title}”" and ".jpg" not in summary
        assert heading_in_view_and_focused(page)
