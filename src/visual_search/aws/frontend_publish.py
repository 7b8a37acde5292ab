"""Publishes the static web UI to a deployed stack: config.json from the stack's outputs, the files synced to the
frontend bucket (stale ones deleted), and a CloudFront invalidation so that nobody is served yesterday's copy."""

from __future__ import annotations

import json
import mimetypes
import time
from dataclasses import dataclass, field
from pathlib import Path

from visual_search.api.client_limits import client_limits
from visual_search.aws.stack_outputs import read_stack_outputs, required_outputs
from visual_search.core.errors import BackendUnavailableError, InvalidRequestError
from visual_search.core.settings import Settings

CONFIG_FILE = "config.json"
# The browser asks again for the entry page and the configuration (cheap, and they name everything else);
# the other files may be cached briefly. The invalidation clears CloudFront's copies of all of them.
REVALIDATE = "no-cache"
SHORT_CACHE = "public, max-age=300"


@dataclass
class PublishReport:
    url: str
    bucket: str
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    invalidation_id: str = ""
    config: dict = field(default_factory=dict)


def frontend_config(outputs: dict[str, str]) -> dict:
    """What the UI reads from config.json: the API's base URL, whether it must ask for an API key, and the request
    limits (the stack's functions run with the default settings, so these are the defaults)."""
    return {
        "apiBase": outputs["ApiUrl"].rstrip("/"),
        "apiKeyRequired": outputs.get("ApiKeyRequired") == "true",
        "limits": client_limits(Settings()),
    }


def publish_frontend(
    stack_name: str,
    frontend_dir: Path,
    *,
    region_name: str | None = None,
    cloudformation=None,
    s3=None,
    cloudfront=None,
) -> PublishReport:
    import boto3

    frontend_dir = Path(frontend_dir)
    if not (frontend_dir / "index.html").is_file():
        raise InvalidRequestError(f"{frontend_dir} has no index.html: give the frontend/ folder of a checkout")
    outputs = read_stack_outputs(stack_name, client=cloudformation, region_name=region_name)
    bucket, distribution, url, _api = required_outputs(
        outputs, stack_name, "FrontendBucketName", "FrontendDistributionId", "FrontendUrl", "ApiUrl"
    )
    s3 = s3 or boto3.client("s3", region_name=region_name)
    cloudfront = cloudfront or boto3.client("cloudfront", region_name=region_name)
    report = PublishReport(url=url, bucket=bucket, config=frontend_config(outputs))
    files = {
        path.relative_to(frontend_dir).as_posix(): path
        for path in sorted(frontend_dir.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(frontend_dir).parts)
    }
    files.pop(CONFIG_FILE, None)  # the local one says "same origin"; the stack's is written below
    try:
        for key, path in files.items():
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=path.read_bytes(),
                ContentType=_content_type(key),
                CacheControl=REVALIDATE if key.endswith(".html") else SHORT_CACHE,
            )
            report.uploaded.append(key)
        s3.put_object(
            Bucket=bucket,
            Key=CONFIG_FILE,
            Body=json.dumps(report.config).encode(),
            ContentType="application/json",
            CacheControl=REVALIDATE,
        )
        report.uploaded.append(CONFIG_FILE)
        stale = [key for key in _bucket_keys(s3, bucket) if key not in files and key != CONFIG_FILE]
        for start in range(0, len(stale), 1000):  # DeleteObjects takes at most 1,000 keys
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]]})
        report.deleted = stale
        invalidation = cloudfront.create_invalidation(
            DistributionId=distribution,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/*"]},
                "CallerReference": f"publish-frontend-{time.time_ns()}",
            },
        )
    except Exception as exc:
        raise (_as_library_error(exc) or exc) from exc
    report.invalidation_id = invalidation["Invalidation"]["Id"]
    return report


def _bucket_keys(s3, bucket: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [entry["Key"] for entry in page.get("Contents", ())]
    return keys


def _content_type(key: str) -> str:
    guessed = {
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".css": "text/css",
        ".svg": "image/svg+xml",
        ".webmanifest": "application/manifest+json",
    }.get(Path(key).suffix.lower())
    return guessed or mimetypes.guess_type(key)[0] or "application/octet-stream"


def _as_library_error(exc: Exception) -> Exception | None:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return BackendUnavailableError(f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}")
    if isinstance(exc, BotoCoreError):
        return BackendUnavailableError(f"AWS could not be reached: {exc}")
    return None
