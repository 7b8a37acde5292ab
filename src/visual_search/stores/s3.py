"""ImageStore over an S3 bucket (or a prefix of one): keys are full object keys, browsers get presigned GET URLs."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from urllib.parse import urlparse

from visual_search.core.errors import BackendUnavailableError, InvalidRequestError, NotFoundError
from visual_search.core.images import IMAGE_SUFFIXES
from visual_search.core.keys import key_problem, printable
from visual_search.core.lazy import Lazy
from visual_search.core.ports import ObjectInfo, StoredObject

MAX_METADATA_BYTES = 2048  # S3's limit on an object's user metadata (names and values)
# Errors S3 answers for an object that is not (or no longer) there.
_MISSING_CODES = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}


class S3ImageStore:
    """Catalogue images in `s3://bucket/prefix`.

    Keys are the objects' full keys (prefix included), the same strings S3 event notifications carry, so an
    image indexed by a backfill and by an event has one id. `presigned_url_expiry_s` bounds how long a result
    link stays valid. The boto3 client is made on first use (never at import time) unless one is given.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client=None,
        presigned_url_expiry_s: int = 300,
        region_name: str | None = None,
    ):
        if not bucket:
            raise InvalidRequestError("an S3 image store needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        self.presigned_url_expiry_s = presigned_url_expiry_s
        self.skipped: list[tuple[str, str]] = []  # (object shown safely, reason) of the last listing
        self._client = Lazy(lambda: client or _make_client(region_name))

    @classmethod
    def from_url(cls, url: str, **options) -> S3ImageStore:
        """`S3ImageStore.from_url("s3://bucket/prefix/")`; options go to the constructor."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise InvalidRequestError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
        return cls(parsed.netloc, parsed.path.lstrip("/"), **options)

    @property
    def key_prefix(self) -> str:
        return self.prefix

    @property
    def client(self):
        return self._client.get()

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Image object keys under the store's prefix + `prefix`, in S3's (UTF-8 binary, so stable) order. Keys no
        index may hold (core/keys.py: control characters) are left out and listed in `skipped` as they are met."""
        paginator = self.client.get_paginator("list_objects_v2")
        self.skipped = []
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for entry in page.get("Contents", ()):
                    key = entry["Key"]
                    if key.endswith("/") or not key.lower().endswith(IMAGE_SUFFIXES):
                        continue
                    problem = key_problem(key)
                    if problem:
                        self.skipped.append((printable(self.uri(key)), problem))
                    else:
                        yield key
        except Exception as exc:
            raise (_as_library_error(exc, f"s3://{self.bucket}/{self.prefix + prefix}") or exc) from exc

    def read(self, key: str) -> bytes:
        """The object's bytes. Raises NotFoundError when it does not exist, BackendUnavailableError on S3 errors."""
        return self.read_object(key).data

    def read_object(self, key: str) -> StoredObject:
        """The bytes and the x-amz-meta-* user metadata of one GET (names lower-case, as S3 keeps them;
        RFC 2047-encoded values, which is how S3 carries non-ASCII text, are decoded)."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            data = response["Body"].read()
        except Exception as exc:
            raise (_as_library_error(exc, self.uri(key)) or exc) from exc
        metadata = {name.lower(): _decoded(value) for name, value in (response.get("Metadata") or {}).items()}
        modified = response.get("LastModified")
        return StoredObject(data, metadata, modified.timestamp() if modified is not None else None)

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under the store's prefix + `prefix`, any suffix, with its size and LastModified, in S3's
        key order (keys are full keys, as everywhere in this store)."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for entry in page.get("Contents", ()):
                    if not entry["Key"].endswith("/"):
                        yield ObjectInfo(entry["Key"], int(entry["Size"]), entry["LastModified"].timestamp())
        except Exception as exc:
            raise (_as_library_error(exc, f"s3://{self.bucket}/{self.prefix + prefix}") or exc) from exc

    def exists(self, key: str) -> bool:
        """A HEAD request: no bytes read. Telling a missing object from a forbidden one needs s3:ListBucket."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            error = _as_library_error(exc, self.uri(key))
            if isinstance(error, NotFoundError):
                return False
            raise (error or exc) from exc
        return True

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def url_for(self, key: str) -> str:
        """A presigned GET URL, valid for `presigned_url_expiry_s` seconds. Signing is local: no S3 request."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=self.presigned_url_expiry_s,
        )

    def put(self, key: str, data: bytes, *, metadata: Mapping[str, str] | None = None) -> None:
        """PutObject (atomic in S3); `metadata` becomes x-amz-meta-* user metadata, for the indexer to read."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, Metadata=_s3_metadata(metadata or {}))
        except Exception as exc:
            raise (_as_library_error(exc, self.uri(key)) or exc) from exc

    def delete(self, key: str) -> bool:
        """DeleteObject; S3 does not say whether the object existed, so this asks first."""
        if not self.exists(key):
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise (_as_library_error(exc, self.uri(key)) or exc) from exc
        return True


def _as_library_error(exc: Exception, where: str) -> Exception | None:
    """The library error for a botocore failure, or None for anything else (re-raised as it is).

    A missing object is NotFoundError only if the caller may s3:ListBucket; without it S3 answers 403 instead.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            return NotFoundError(f"no object at {where}")
        return BackendUnavailableError(f"S3 refused {where}: {code or exc}")
    if isinstance(exc, BotoCoreError):
        return BackendUnavailableError(f"S3 could not be reached for {where}: {exc}")
    return None


def _make_client(region_name: str | None):
    import boto3
    from botocore.config import Config

    # SigV4 presigning: boto3 otherwise signs us-east-1 URLs with the deprecated SigV2.
    config = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
    return boto3.client("s3", region_name=region_name, config=config)


def _s3_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """User metadata as S3 takes it: ASCII names, values RFC 2047-encoded when not ASCII (as S3 itself returns
    them; `_decoded` reads them back), at most 2 KB in all. InvalidRequestError otherwise: the caller chose them,
    and botocore would refuse them with an error of its own (a 500)."""
    encoded = {}
    for name, value in metadata.items():
        if not name.isascii() or not name.isprintable():
            raise InvalidRequestError(
                f"the field name {printable(name[:40])!r} must be ASCII to be kept with the image"
            )
        plain = value.isascii() and value.isprintable() and not value.startswith("=?")
        encoded[name] = value if plain else "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="
    size = sum(len(name) + len(value) for name, value in encoded.items())
    if size > MAX_METADATA_BYTES:
        raise InvalidRequestError(
            f"the label, product fields and attributes take {size:,} bytes; the images bucket keeps at most "
            f"{MAX_METADATA_BYTES:,} with an image"
        )
    return encoded


def _decoded(value: str) -> str:
    if not value.startswith("=?"):
        return value
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError):
        return value
