"""Settings read from environment variables (and overridden by CLI flags); the only input bootstrap/ needs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from visual_search.core.errors import InvalidSettingError
from visual_search.core.images import DEFAULT_MAX_PIXELS

ENV_PREFIX = "VISUAL_SEARCH_"
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def default_index_location() -> str:
    from platformdirs import user_data_dir

    return str(Path(user_data_dir("visual-search")) / "index")


@dataclass(frozen=True)
class Settings:
    """Everything an entry point can configure. Each field's environment variable is VISUAL_SEARCH_<FIELD>.

    index: an index directory, or an OpenSearch URL (opensearch://host:9200/name, https://host/name).
    model: "lite2-fp32" (the default), "lite2-int8", or the path of a custom ONNX model's JSON config.
    embedder: "local" (ONNX Runtime in-process) or "sagemaker" (the endpoint named by sagemaker_endpoint).
    image_store: where catalogue images live for the AWS paths: an s3://bucket/prefix URL or a folder.
    """

    index: str = field(default_factory=default_index_location)
    # fp32 is the default: see README "Model and preprocessing" for the measurements behind the choice.
    model: str = "lite2-fp32"
    threads: int | None = None
    embedder: str = "local"
    sagemaker_endpoint: str | None = None
    image_store: str | None = None
    calibration_dir: str | None = None
    cache_dir: str | None = None
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    url_allowlist: tuple[str, ...] = ()
    url_timeout_s: float = 5.0
    # Access keys (header X-API-Key). A shop wants public search and protected writes, so there are two levels:
    # read_api_key guards the reading routes (search, images, stats, listing; open when unset) and
    # write_api_key the catalogue writes, the duplicate report and the embedding route (refused when unset).
    # The write key also opens every reading route. api_key is the one key of before: it sets both.
    api_key: str | None = None
    read_api_key: str | None = None
    write_api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    # Shared uploads: an uploaded query photo is kept by its content hash, so a copied search link can reopen it
    # (services/shared_uploads.py). Bounded by bytes (oldest evicted first) and by age; off with False.
    # shared_uploads_store: a folder or s3://bucket; default a folder beside the index, or on AWS the images
    # bucket under shared-uploads/ (see bootstrap.shared_uploads_location).
    shared_uploads: bool = True
    shared_uploads_max_bytes: int = 256 * 1024 * 1024
    shared_uploads_max_age_s: int = 7 * 24 * 3600
    shared_uploads_store: str | None = None
    presigned_url_expiry_s: int = 300
    # The AWS functions: the SageMaker embedder's whole retry budget per request (it must fit the function's
    # timeout), the SSM parameter holding the API key, and the catalogue CSV's key in the images bucket.
    sagemaker_budget_s: float = 20.0
    api_key_parameter: str | None = None
    read_api_key_parameter: str | None = None
    write_api_key_parameter: str | None = None
    catalogue_manifest: str | None = None
    frontend_dir: str | None = None
    # Catalogue folders follow a symlink only while its target stays inside the folder; True follows every link
    # (the operator vouches for what they point to). See docs/SECURITY.md "Catalogue files and links".
    follow_links_outside: bool = False
    # Per-client limit of the local server's expensive routes (server/rate_limit.py): requests a second, 0 = off;
    # None: off when the server binds loopback, 20 a second with bursts of 100 when it binds anything else.
    rate_limit_per_s: float | None = None
    rate_limit_burst: int = 100
    opensearch_username: str | None = None
    opensearch_password: str | None = None
    opensearch_auth: str | None = None  # "sigv4" for Amazon OpenSearch Service / Serverless
    opensearch_aws_service: str = "es"  # "aoss" for OpenSearch Serverless
    aws_region: str | None = None  # from AWS_REGION / AWS_DEFAULT_REGION, as the AWS SDKs read it
    # Live learning of the query-domain centre from searches (services/adaptation.py): refit after this many new
    # queries (0: off, the default); one refit moves the centre by at most max_step (L2); one client adds at
    # most client_share of a refit's queries.
    adapt_live_every: int = 0
    adapt_live_max_step: float = 0.2
    adapt_live_client_share: float = 0.1
    # On AWS (bootstrap/aws_runtime.py), where instances share the sums in OpenSearch: clients are hashed with this
    # salt (the same in every instance, so a client's share holds across them; unset: random per instance), and
    # an instance sends its buffered queries in one update every flush_every queries or flush_after_s seconds.
    adapt_live_client_salt: str | None = None
    adapt_live_flush_every: int = 10
    adapt_live_flush_after_s: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Defaults, then VISUAL_SEARCH_* variables, then non-None `overrides` (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for name, current in cls.__dataclass_fields__.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None and name == "index":
                raw = environ.get(ENV_PREFIX + "INDEX_DIR")
            if raw is None and name == "aws_region":
                raw = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
            if raw is not None and raw != "":
                values[name] = _parse(name, raw, current.type)
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)

    def with_overrides(self, **overrides) -> Settings:
        return replace(self, **{name: value for name, value in overrides.items() if value is not None})

    @property
    def effective_read_api_key(self) -> str | None:
        """The key the reading routes need, or None when they are open."""
        return self.read_api_key or self.api_key

    @property
    def effective_write_api_key(self) -> str | None:
        """The key the writing routes need; None means writes are disabled (403), never open."""
        return self.write_api_key or self.api_key

    @property
    def index_is_opensearch(self) -> bool:
        return self.index.startswith(("opensearch://", "opensearchs://", "http://", "https://"))


def _parse(name: str, raw: str, type_name) -> object:
    type_text = str(type_name)
    if "tuple" in type_text:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if type_text == "bool":
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise InvalidSettingError(f"{ENV_PREFIX}{name.upper()} must be true or false, not {raw!r}")
    if type_text.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise InvalidSettingError(f"{ENV_PREFIX}{name.upper()} must be a whole number, not {raw!r}") from None
    if type_text.startswith("float"):
        try:
            return float(raw)
        except ValueError:
            raise InvalidSettingError(f"{ENV_PREFIX}{name.upper()} must be a number, not {raw!r}") from None
    return raw
