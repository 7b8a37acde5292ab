"""`visual-search index s3://bucket/prefix` backfills an existing bucket with the in-process model (moto S3)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from fakes import indexed_keys

from visual_search.cli.main import main
from visual_search.indexes.local.index import LocalIndex

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


def test_backfill_indexes_every_image_under_the_prefix_and_a_rerun_changes_nothing(moto_aws, tmp_path, capsys):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="catalogue")
    photos = sorted(PHOTOS.glob("*.jpg"))
    for photo in photos:
        s3.put_object(Bucket="catalogue", Key=f"shop/{photo.name}", Body=photo.read_bytes())
    s3.put_object(Bucket="catalogue", Key="shop/readme.txt", Body=b"not an image")
    s3.put_object(Bucket="catalogue", Key="other/hat.jpg", Body=(PHOTOS / "hat.jpg").read_bytes())
    index_dir = tmp_path / "index"
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label,colour\nshop/hat.jpg,Hat,brown\nshop/shoes.jpg,Shoes,\n")
    command = ["index", "s3://catalogue/shop/", "--labels", str(labels), "--index-dir", str(index_dir), "--quiet"]

    assert main(command) == 0
    with LocalIndex(index_dir, writable=False) as index:
        assert indexed_keys(index) == sorted(f"shop/{photo.name}" for photo in photos)
        hat = index.get(["shop/hat.jpg"])["shop/hat.jpg"]
        assert hat.uri == "s3://catalogue/shop/hat.jpg"
        assert (hat.label, dict(hat.attributes)) == ("Hat", {"colour": "brown"})
        assert index.get(["shop/shoes.jpg"])["shop/shoes.jpg"].label == "Shoes"

    assert main(command) == 0
    assert f"indexed 0, unchanged {len(photos)}" in capsys.readouterr().err

    capsys.readouterr()
    assert main(["search", str(PHOTOS / "shoes.jpg"), "--index-dir", str(index_dir), "-k", "1", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["results"][0]
    assert top["key"] == "shop/shoes.jpg" and top["score"] > 0.999
