"""The match labels tell the truth (issue 21, item 2): the exact item photographed differently reads "Very close"
when it ranks first, and what is unrelated does not. Real model, real server, real Chromium: synthetic shopper
photos (services/shopper_sim.py, seeded) of demo catalogue items are uploaded through the page and the first
card's label is read as the shopper reads it. With the thresholds before this calibration (0.95 on the score
alone) the exact item read "Very close" in about 5 % of such answers, so the first test fails on them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from shop import DEMO, DESKTOP, PHONE, search_and_wait, shopper_page

from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.services.shopper_sim import make_shopper_photo, shopper_queries

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

SHOPPER_PHOTOS = 24
STRONG = "Very close"


def demo_items() -> list[tuple[str, str]]:
    """(key, label) of every demo catalogue photo, in the CSV's order."""
    return [
        (entry.listed_path.removeprefix("images/"), entry.label) for entry in read_catalogue_csv(DEMO / "labels.csv")
    ]


def open_photo(key: str) -> Image.Image:
    return Image.open(DEMO / "images" / key).convert("RGB")


def upload_bytes(page, name: str, data: bytes) -> None:
    search_and_wait(
        page,
        lambda: page.set_input_files("#file-input", files=[{"name": name, "mimeType": "image/jpeg", "buffer": data}]),
    )


def cards(page) -> list[dict]:
    return page.locator("#results .result").evaluate_all(
        """cards => cards.map(card => ({key: card.dataset.key, label: card.dataset.label,
            score: Number(card.dataset.score), tier: card.querySelector('.result-tier').textContent,
            tooltip: card.querySelector('.result-tier').title}))"""
    )


def test_the_exact_item_photographed_differently_reads_very_close_when_it_ranks_first(browser, base_url):
    items = demo_items()
    queries = shopper_queries(SHOPPER_PHOTOS, len(items), lambda i: open_photo(items[i][0]), seed=21)
    first, strong, strong_cards, unrelated_strong = 0, 0, 0, []
    with shopper_page(browser, base_url, DESKTOP) as page:
        for query in queries:
            key, label = items[query.source]
            upload_bytes(page, f"shopper-{query.source}.jpg", query.jpeg)
            shown = cards(page)
            assert shown and all("Similarity score" in card["tooltip"] for card in shown)  # the raw score stays
            if shown[0]["key"] == key:
                first += 1
                strong += shown[0]["tier"] == STRONG
            strong_cards += sum(card["tier"] == STRONG for card in shown)
            unrelated_strong += [
                (key, position, card["key"], card["score"])
                for position, card in enumerate(shown)
                if card["tier"] == STRONG and card["key"] != key and card["label"] != label
            ]
    assert first >= SHOPPER_PHOTOS // 2, f"the exact item ranked first in only {first} of {SHOPPER_PHOTOS}"
    assert strong >= 0.8 * first, f"the exact item, ranked first, read {STRONG!r} in {strong} of {first}"
    # What is unrelated (another item of another category) is rarely called strong: at most one strong card in
    # five (the bench measures 4 % in shopper answers), and then only as the best of its answer or by its score.
    assert len(unrelated_strong) <= 0.2 * strong_cards, (strong_cards, unrelated_strong)
    assert all(position == 0 or score >= 0.93 for _, position, _, score in unrelated_strong), unrelated_strong


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_photo_like_nothing_in_the_catalogue_reads_no_strong_match(browser, base_url, device):
    noise = np.random.default_rng(21).integers(0, 256, (320, 320, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG")
    with shopper_page(browser, base_url, device) as page:
        upload_bytes(page, "noise.jpg", buffer.getvalue())
        if page.locator("#show-weaker").is_visible():
            page.click("#show-weaker")
        assert [card for card in cards(page) if card["tier"] == STRONG] == []


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_rotated_blurred_copy_of_a_dress_reads_very_close_and_the_tooltip_keeps_its_score(browser, base_url, device):
    items = demo_items()
    key = next(key for key, label in items if label == "Dress")
    rng = np.random.default_rng(5)
    photo = open_photo(key).rotate(20, Image.Resampling.BICUBIC, fillcolor=(240, 240, 240))
    data, _ = make_shopper_photo(photo, lambda: open_photo(items[0][0]), rng)
    with shopper_page(browser, base_url, device) as page:
        upload_bytes(page, "dress.jpg", data)
        top = cards(page)[0]
        assert top["key"] == key
        assert top["tier"] == STRONG and top["score"] < 0.93, top  # strong by standing out, not by its score
        assert f"{top['score']:.3f}" in top["tooltip"]
