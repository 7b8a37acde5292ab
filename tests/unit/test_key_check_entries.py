"""Every entry that accepts a key uses the one check of core/keys.py: POST /items (checked_item_key) and the
watch folder's file events (stores/folder_events.key_of). The CLI and S3 entries are tested in tests/hostile and
tests/aws."""

from __future__ import annotations

import logging
import os

import pytest

from visual_search.core.errors import InvalidRequestError
from visual_search.core.keys import key_problem
from visual_search.services.catalogue import checked_item_key
from visual_search.stores.folder_events import key_of

CONTROL_CHARACTERS = ("\x1b", "\x7f", "\x85", "\x9b")  # C0 (ESC), DEL, C1 (NEL, CSI)


@pytest.mark.parametrize("character", CONTROL_CHARACTERS)
def test_an_added_items_key_with_a_control_character_is_refused(character):
    with pytest.raises(InvalidRequestError) as refused:
        checked_item_key(f"shoes/red{character}1.jpg")
    assert f"U+{ord(character):04X}" in refused.value.message
    assert character not in refused.value.message, "the message shows the key escaped"


def test_an_added_items_key_that_is_not_utf8_is_refused():
    with pytest.raises(InvalidRequestError, match="not valid UTF-8"):
        checked_item_key(os.fsdecode(b"caf\xe9.jpg"))


def test_an_added_items_key_keeps_the_other_rules_and_accepts_any_printable_name():
    assert checked_item_key(" chaussures/café rouge.jpg ") == "chaussures/café rouge.jpg"
    assert checked_item_key("靴/赤.webp") == "靴/赤.webp"
    for bad in ("../a.jpg", "/a.jpg", "a/.hidden.jpg", "a.txt", ""):
        with pytest.raises(InvalidRequestError):
            checked_item_key(bad)


@pytest.mark.parametrize("character", CONTROL_CHARACTERS)
def test_a_watched_files_event_with_a_control_character_gives_no_key_and_is_logged(tmp_path, caplog, character):
    with caplog.at_level(logging.WARNING, logger="visual_search.stores.folder_events"):
        assert key_of(tmp_path, str(tmp_path / "shoes" / f"red{character}1.jpg")) is None
    assert f"U+{ord(character):04X}" in caplog.text and character not in caplog.text


def test_a_watched_files_event_with_a_name_that_is_not_utf8_gives_no_key(tmp_path):
    assert key_of(tmp_path, os.fsencode(tmp_path) + b"/caf\xe9.jpg") is None
    assert key_of(tmp_path, str(tmp_path / "shoes" / "café.jpg")) == "shoes/café.jpg"


@pytest.mark.parametrize(
    "key, why",
    [
        ("/a.jpg", "relative path"),
        ("shoes//a.jpg", "relative path"),
        ("shoes/../a.jpg", "relative path"),
        (".cache/a.jpg", "hidden"),
        ("shoes/.a.jpg", "hidden"),
        ("notes.txt", "image suffix"),
        ("", "relative path"),
    ],
)
def test_the_one_key_check_refuses_a_bad_shape_a_hidden_part_and_a_non_image_name(key, why):
    assert why in key_problem(key)


def test_the_one_key_check_accepts_a_relative_path_of_image_names():
    assert key_problem("shoes/red-1.jpg") is None and key_problem("靴/赤.WEBP") is None
