"""Several items in one photo (issue 14, section 5), at desktop and phone sizes: a photo of a hat beside shoes
shows a tappable hotspot on each, tapping one searches that item, and the hotspots stay for the other. The
results never wait for the hotspots: the UI asks POST /regions with the same photo once the results are shown."""

from __future__ import annotations

import pytest
from composites import side_by_side  # the same composite the API test checks
from shop import DESKTOP, PHONE, base_url, browser, demo_search_service, screenshot, search_and_wait, shopper_page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def hat_and_shoes(tmp_path_factory):
    photo, _ = side_by_side("hat.jpg", "shoes.jpg")
    path = tmp_path_factory.mktemp("composite") / "hat-and-shoes.jpg"
    path.write_bytes(photo)
    return path


@pytest.mark.parametrize("device_name", ["desktop", "phone"])
def test_tapping_each_hotspot_searches_its_item(browser, base_url, hat_and_shoes, device_name):
    device = DESKTOP if device_name == "desktop" else PHONE
    with shopper_page(browser, base_url, device) as page:
        order = api_traffic(page)
        with page.expect_response("**/regions") as regions_answer, page.expect_response("**/search") as search_answer:
            body = search_and_wait(page, lambda: page.set_input_files("#file-input", str(hat_and_shoes)))
        assert "regions" not in body and "crop" not in body
        assert regions_answer.value.status == 200
        # The same photo: named by the id the search kept it under, not uploaded again.
        assert regions_answer.value.request.post_data_json == {"upload": search_answer.value.json()["upload"]}
        assert order.index("response /search") < order.index("request /regions")  # results first, hotspots after
        spots = page.locator("#hotspots .hotspot")
        spots.first.wait_for()
        assert 2 <= spots.count() <= 4
        assert spots.first.inner_text() == "1" and spots.first.get_attribute("aria-label").startswith("1")
        page.locator("#preview").scroll_into_view_if_needed()
        screenshot(page, f"hotspots-{device_name}")
        top_labels = []
        for index in range(spots.count()):
            body = search_and_wait(page, spots.nth(index).click)
            assert set(body["crop"]) == {"x", "y", "w", "h"} and "regions" not in body
            assert spots.nth(index).get_attribute("aria-pressed") == "true"
            assert spots.count() >= 2  # the other items stay tappable
            top_labels.append(page.locator("#results .result").first.get_attribute("data-label"))
        assert {"Hat", "Shoes"} <= set(top_labels)
        body = search_and_wait(page, lambda: page.click("#clear-crop"))
        assert "crop" not in body
        assert page.locator("#hotspots .hotspot[aria-pressed=true]").count() == 0
        assert order.count("request /regions") == 1  # once per photo, not for each of its regions


def api_traffic(page) -> list[str]:
    """The page's /search and /regions requests and responses, in the order they happened."""
    seen: list[str] = []
    for event in ("request", "response"):
        page.on(
            event,
            lambda item, event=event: (
                seen.append(f"{event} /{item.url.rsplit('/', 1)[-1]}")
                if item.url.endswith(("/search", "/regions"))
                else None
            ),
        )
    return seen


def test_a_photo_of_one_item_shows_no_hotspots(browser, base_url):
    with shopper_page(browser, base_url, PHONE) as page:
        with page.expect_response("**/regions") as regions_answer:
            search_and_wait(
                page,
                lambda: page.set_input_files(
                    "#file-input", str(demo_search_service().index.get(["e3348ff1.jpg"])["e3348ff1.jpg"].uri)
                ),
            )
        assert regions_answer.value.status == 200 and regions_answer.value.json()["regions"] == []
        assert page.locator("#hotspots .hotspot").count() == 0
        assert page.locator("#hotspots").is_hidden()
