"""The shared-uploads store (services/shared_uploads.py) over a real folder: ids, bounds, age, eviction order."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from visual_search.bootstrap import build_shared_uploads, shared_uploads_location
from visual_search.core.errors import InvalidRequestError, NotFoundError, UploadExpiredError
from visual_search.core.settings import Settings
from visual_search.services.shared_uploads import SharedUploads
from visual_search.stores.local_folder import LocalFolderStore

DAY = 86400


def photo(n: int, size: int = 1000) -> bytes:
    """Distinct bytes of `size` (the store keeps bytes; whether they decode is the search's business)."""
    return bytes([n % 256]) * size


def kept_ids(folder) -> set[str]:
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def age(folder, upload_id: str, seconds: float) -> None:
    """Make a kept photo `seconds` old, as time would."""
    when = time.time() - seconds
    os.utime(folder / upload_id, (when, when))


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "shared"


def uploads(folder, **limits) -> SharedUploads:
    options = {"max_bytes": 10_000, "max_age_s": DAY} | limits
    return SharedUploads(LocalFolderStore(folder), **options)


def test_a_photo_is_kept_under_its_sha256_and_reads_back(folder):
    store = uploads(folder)
    upload_id = store.keep(photo(1))
    assert upload_id == hashlib.sha256(photo(1)).hexdigest()
    assert kept_ids(folder) == {upload_id}
    assert store.read(upload_id) == photo(1)


def test_the_same_photo_is_kept_once_and_keeping_it_again_restarts_its_age(folder):
    store = uploads(folder)
    upload_id = store.keep(photo(1))
    age(folder, upload_id, DAY - 10)
    assert store.keep(photo(1)) == upload_id
    assert kept_ids(folder) == {upload_id}
    assert time.time() - (folder / upload_id).stat().st_mtime < 60


def test_a_photo_past_its_age_answers_410_and_is_deleted(folder):
    store = uploads(folder, max_age_s=3600)
    upload_id = store.keep(photo(1))
    age(folder, upload_id, 3601)
    with pytest.raises(UploadExpiredError) as caught:
        store.read(upload_id)
    assert caught.value.http_status == 410 and caught.value.code == "upload_expired"
    assert "upload the photo again" in caught.value.message
    assert kept_ids(folder) == set()


def test_a_photo_within_its_age_is_served(folder):
    store = uploads(folder, max_age_s=3600)
    upload_id = store.keep(photo(1))
    age(folder, upload_id, 3500)
    assert store.read(upload_id) == photo(1)


def test_an_unknown_id_answers_404_upload_expired(folder):
    store = uploads(folder)
    with pytest.raises(NotFoundError) as caught:
        store.read("0" * 64)
    assert caught.value.http_status == 404 and caught.value.code == "upload_expired"


@pytest.mark.parametrize(
    "bad_id",
    [
        "../../etc/passwd",
        "../" + "a" * 61,
        "a" * 63,
        "a" * 65,
        "A" * 64,  # ids are lower case: one photo, one id
        "g" * 64,
        "a" * 63 + "/",
        "/" + "a" * 64,
        "a" * 32 + "%2F" + "a" * 29,
        "",
        "a" * 64 + "\n",
        "a" * 64 + ".jpg",
    ],
)
def test_anything_but_64_lowercase_hex_digits_is_a_400_before_the_store_is_asked(folder, bad_id):
    (folder.parent / "passwd").write_text("secret")
    store = uploads(folder)
    with pytest.raises(InvalidRequestError) as caught:
        store.read(bad_id)
    assert caught.value.http_status == 400 and caught.value.code == "invalid_upload_id"


def test_past_the_byte_limit_the_oldest_photos_go_first_down_to_the_low_water_mark(folder):
    store = uploads(folder, max_bytes=10_000)  # low water: 9,000 bytes
    ids = [store.keep(photo(n)) for n in range(10)]  # exactly full
    for n, upload_id in enumerate(ids):
        age(folder, upload_id, 1000 - n)  # ids[0] oldest
    eleventh = store.keep(photo(10))
    assert kept_ids(folder) == set(ids[2:]) | {eleventh}  # 11,000 -> 9,000: the two oldest went
    # Keeping ids[2] again makes it the newest, so ids[3] and ids[4] are the oldest now.
    store.keep(photo(2))
    twelfth = store.keep(photo(11))  # 10,000: full, not over
    assert kept_ids(folder) == set(ids[2:]) | {eleventh, twelfth}
    thirteenth = store.keep(photo(12))
    assert kept_ids(folder) == set(ids[2:3] + ids[5:]) | {eleventh, twelfth, thirteenth}
    assert sum(path.stat().st_size for path in folder.iterdir()) <= 9000


def test_the_photo_just_kept_is_never_the_one_evicted_even_when_times_tie(folder):
    store = uploads(folder, max_bytes=2000)
    older = store.keep(photo(1))
    newest = store.keep(photo(2, size=2000))  # fills the store alone
    assert kept_ids(folder) == {newest}, older


def test_a_photo_larger_than_the_whole_store_is_not_kept(folder):
    store = uploads(folder, max_bytes=500)
    assert store.keep(photo(1, size=501)) is None
    assert kept_ids(folder) == set()


def test_a_sweep_deletes_what_is_past_its_age_and_leaves_other_files_alone(folder):
    store = uploads(folder, max_age_s=3600)
    old, new = store.keep(photo(1)), store.keep(photo(2))
    age(folder, old, 7200)
    (folder / "notes.txt").write_text("not an upload")
    report = store.sweep()
    assert (report.expired, report.evicted, report.kept_bytes) == (1, 0, 1000)
    assert kept_ids(folder) == {new, "notes.txt"}


def test_a_damaged_photo_is_never_served(folder):
    store = uploads(folder)
    upload_id = store.keep(photo(1))
    (folder / upload_id).write_bytes(b"replaced behind the store's back")
    with pytest.raises(NotFoundError) as caught:
        store.read(upload_id)
    assert caught.value.code == "upload_expired"
    assert kept_ids(folder) == set()


def test_an_unwritable_store_keeps_nothing_and_does_not_fail_the_caller(tmp_path):
    (tmp_path / "file").write_text("a file where the folder should be")
    store = uploads(tmp_path / "file" / "shared")
    assert store.keep(photo(1)) is None
    assert (tmp_path / "file").read_text() == "a file where the folder should be"


def test_the_settings_turn_it_off_and_place_it(tmp_path):
    assert build_shared_uploads(Settings(index=str(tmp_path / "idx"), shared_uploads=False)) is None
    assert shared_uploads_location(Settings(index=str(tmp_path / "idx"))) == str(tmp_path / "idx-shared-uploads")
    on_aws = Settings(index="https://search.example/products", image_store="s3://images-bucket/catalogue/")
    assert shared_uploads_location(on_aws) == "s3://images-bucket/shared-uploads/"
    chosen = Settings(index=str(tmp_path / "idx"), shared_uploads_store=str(tmp_path / "elsewhere"))
    assert shared_uploads_location(chosen) == str(tmp_path / "elsewhere")
    built = build_shared_uploads(Settings(index=str(tmp_path / "idx"), shared_uploads_max_bytes=123))
    assert built is not None and built.max_bytes == 123 and built.max_age_s == 7 * DAY


@pytest.mark.parametrize("raw, expected", [("false", False), ("0", False), ("off", False), ("true", True), ("1", True)])
def test_the_off_switch_reads_from_the_environment(raw, expected):
    assert Settings.from_env({"VISUAL_SEARCH_SHARED_UPLOADS": raw}).shared_uploads is expected


def test_a_misspelt_off_switch_is_refused():
    from visual_search.core.errors import InvalidSettingError

    with pytest.raises(InvalidSettingError, match="true or false"):
        Settings.from_env({"VISUAL_SEARCH_SHARED_UPLOADS": "nope"})
