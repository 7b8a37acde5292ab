"""`visual-search index s3://...` and the bucket listing apply the one key check (core/keys.py): an object whose
key holds a control character is reported and skipped, the others are indexed (moto S3)."""

from __future__ import annotations

from pathlib import Path

import boto3
from fakes import indexed_keys

from visual_search.cli.main import main
from visual_search.indexes.local.index import LocalIndex
from visual_search.stores.s3 import S3ImageStore

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
BAD_KEYS = ("shop/bell\x07.jpg", "shop/del\x7f.jpg", "shop/next-line\x85.jpg")


def fill_bucket() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="catalogue")
    hat = (PHOTOS / "hat.jpg").read_bytes()
    for key in ("shop/hat.jpg", "shop/café.jpg", *BAD_KEYS):
        s3.put_object(Bucket="catalogue", Key=key, Body=hat)


def test_the_listing_skips_and_names_keys_with_control_characters(moto_aws):
    fill_bucket()
    store = S3ImageStore("catalogue", "shop/")
    assert list(store.list_keys()) == ["shop/café.jpg", "shop/hat.jpg"]
    assert [reason.split(" at ")[0] for _, reason in store.skipped] == [
        "its name holds the control character U+0007",
        "its name holds the control character U+007F",
        "its name holds the control character U+0085",
    ]
    assert all("\\x" in shown for shown, _ in store.skipped), "the names are printed escaped, never raw"


def test_cli_index_of_a_bucket_reports_bad_keys_and_indexes_the_rest(moto_aws, tmp_path, capsys):
    fill_bucket()
    index_dir = tmp_path / "index"
    assert main(["index", "s3://catalogue/shop/", "--index-dir", str(index_dir), "--quiet"]) == 0
    with LocalIndex(index_dir, writable=False) as index:
        assert indexed_keys(index) == ["shop/café.jpg", "shop/hat.jpg"]
    err = capsys.readouterr().err
    assert err.count("skipped s3://catalogue/shop/") == len(BAD_KEYS) and "\x7f" not in err and "\x07" not in err
