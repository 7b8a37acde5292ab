"""`visual-search aws publish-frontend` and `aws reindex` against a stack in moto (CloudFormation outputs, S3,
CloudFront), with the embedding endpoint on loopback and the embedded index standing in for OpenSearch."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_fixtures import REGION

from visual_search.api.client_limits import client_limits
from visual_search.cli.main import main
from visual_search.core.settings import Settings

STACK = "visual-search-test"
IMAGES = "visual-search-images-123456789012-0123456789ab"
FRONTEND = "visual-search-frontend-bucket"


def _stack_template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }
    )


@pytest.fixture
def stack(moto_aws, tmp_path):
    """A deployed stack as far as the commands can tell: its outputs, its two buckets and its distribution."""
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (IMAGES, FRONTEND):
        s3.create_bucket(Bucket=bucket)
    distribution = boto3.client("cloudfront", region_name=REGION).create_distribution(
        DistributionConfig={
            "CallerReference": "test",
            "Comment": "ui",
            "Enabled": True,
            "DefaultRootObject": "index.html",
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "frontend",
                        "DomainName": f"{FRONTEND}.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "frontend",
                "ViewerProtocolPolicy": "redirect-to-https",
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "MinTTL": 0,
            },
        }
    )["Distribution"]
    outputs = {
        "ApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com",
        "ApiKeyRequired": "true",
        "FrontendUrl": f"https://{distribution['DomainName']}",
        "FrontendBucketName": FRONTEND,
        "FrontendDistributionId": distribution["Id"],
        "ImagesBucketName": IMAGES,
        "ImagesPrefix": "",
        "CatalogueManifestKey": "catalogue.csv",
        "OpenSearchIndexUrl": str(tmp_path / "index"),
        "EmbeddingEndpointName": "embedding-endpoint",
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=STACK, TemplateBody=_stack_template(outputs)
    )
    return {"s3": s3, "distribution": distribution["Id"], **outputs}


@pytest.fixture
def frontend(tmp_path):
    folder = tmp_path / "frontend"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>ui</title>")
    (folder / "app.js").write_text("export const x = 1;")
    (folder / "styles.css").write_text("body{}")
    (folder / "config.json").write_text('{"apiBase": ""}')
    (folder / ".DS_Store").write_bytes(b"junk")
    return folder


def test_publish_frontend_writes_config_syncs_and_invalidates(stack, frontend, capsys):
    s3 = stack["s3"]
    s3.put_object(Bucket=FRONTEND, Key="old-bundle.js", Body=b"stale")

    assert main(["aws", "publish-frontend", "--stack", STACK, "--region", REGION, "--frontend-dir", str(frontend)]) == 0

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=FRONTEND)["Contents"]}
    assert keys == {"index.html", "app.js", "styles.css", "config.json"}
    config = json.loads(s3.get_object(Bucket=FRONTEND, Key="config.json")["Body"].read())
    assert config == {"apiBase": stack["ApiUrl"], "apiKeyRequired": True, "limits": client_limits(Settings())}
    assert config["limits"]["maxUploadBytes"] == Settings().max_upload_bytes and config["limits"]["maxK"] == 100
    script = s3.head_object(Bucket=FRONTEND, Key="app.js")
    assert script["ContentType"] == "text/javascript"
    assert s3.head_object(Bucket=FRONTEND, Key="index.html")["CacheControl"] == "no-cache"
    invalidations = boto3.client("cloudfront", region_name=REGION).list_invalidations(
        DistributionId=stack["distribution"]
    )["InvalidationList"]
    assert invalidations["Quantity"] == 1
    assert stack["FrontendUrl"] in capsys.readouterr().out


def test_publish_frontend_for_an_unknown_stack_is_a_one_line_error(stack, frontend, capsys):
    assert (
        main(["aws", "publish-frontend", "--stack", "nope", "--region", REGION, "--frontend-dir", str(frontend)]) == 1
    )
    error = capsys.readouterr().err
    assert "no stack named 'nope'" in error and "Traceback" not in error


def test_reindex_applies_a_changed_manifest_to_the_deployed_index(
    stack, demo_photos, loopback_endpoint, monkeypatch, capsys
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", loopback_endpoint.url)
    s3 = stack["s3"]
    for n, photo in enumerate(demo_photos[:3]):
        s3.put_object(
            Bucket=IMAGES, Key=f"items/{n}.JPG", Body=photo.read_bytes(), Metadata={"colour": "red"} if n == 0 else {}
        )
    s3.put_object(Bucket=IMAGES, Key="catalogue.csv", Body=b"path,label\nitems/0.JPG,Hat\nitems/1.JPG,Shirt\n")
    argv = ["aws", "reindex", "--stack", STACK, "--region", REGION]
    assert main(argv) == 0
    assert "indexed 3, unchanged 0, failed 0" in capsys.readouterr().out

    s3.put_object(Bucket=IMAGES, Key="catalogue.csv", Body=b"path,label\nitems/0.JPG,Cap\nitems/1.JPG,Shirt\n")
    assert main(argv) == 0
    assert "indexed 1, unchanged 2, failed 0" in capsys.readouterr().out

    from visual_search.indexes.local.index import LocalIndex

    index = LocalIndex(stack["OpenSearchIndexUrl"], writable=False)
    try:
        records = index.get(["items/0.JPG", "items/1.JPG", "items/2.JPG"])
    finally:
        index.close()
    assert (records["items/0.JPG"].label, records["items/0.JPG"].attributes["colour"]) == ("Cap", "red")
    assert records["items/1.JPG"].label == "Shirt" and records["items/2.JPG"].label is None
