"""The HTTP API's request and response bodies: the one definition shared by the local server and the Lambda handlers.

Pydantic only (no FastAPI), so a Lambda function can import it. A body that does not fit these models is a
422 `validation_error`; a body that fits but names zero or several query sources is a 400 `ambiguous_query`
(see search_api.py); a crop that does not lie inside the image is a 400 `invalid_request`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from visual_search.core.keys import MAX_KEY_LENGTH
from visual_search.core.records import DEFAULT_K, MAX_K, SearchFilters


class _Strict(BaseModel):
    # Unknown fields are refused rather than ignored: a misspelt "filter" must not silently search everything.
    model_config = ConfigDict(extra="forbid")


class CropRequest(_Strict):
    """A region of the query image as fractions of its (EXIF-oriented) width and height."""

    x: float = Field(allow_inf_nan=False, description="left edge, 0-1")
    y: float = Field(allow_inf_nan=False, description="top edge, 0-1")
    w: float = Field(allow_inf_nan=False, description="width, > 0, x + w <= 1")
    h: float = Field(allow_inf_nan=False, description="height, > 0, y + h <= 1")


class FiltersRequest(_Strict):
    """Only return images whose label is one of `label` and whose attributes take one of the listed values."""

    label: list[str] | None = Field(default=None, max_length=200)
    attributes: dict[str, list[str]] | None = None

    def to_filters(self) -> SearchFilters:
        return SearchFilters(
            labels=frozenset(self.label) if self.label else None,
            attributes={name: frozenset(values) for name, values in (self.attributes or {}).items()},
        )


class SearchRequest(_Strict):
    """Exactly one of `image`, `url`, `key` or `upload` names the query."""

    image: str | None = Field(
        default=None, description="the query photo, base64-encoded; a data URL (data:image/jpeg;base64,...) is accepted"
    )
    url: str | None = Field(default=None, max_length=2048, description="an http(s) address of the query photo")
    key: str | None = Field(
        default=None,
        max_length=MAX_KEY_LENGTH,
        description='an indexed image\'s key: "more like this" without re-embedding',
    )
    upload: str | None = Field(
        default=None,
        max_length=128,
        description="the id of an uploaded photo the server kept (a search response's `upload`): a shared search",
    )
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K, description="how many results, 1-100")
    filters: FiltersRequest | None = None
    crop: CropRequest | None = None
    regions: bool = Field(
        default=False,
        description="also propose up to four object regions (hotspots) of an uncropped image or url query",
    )
    colour: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="weight of colour similarity fused with appearance, 0-1 (0: off; the UI's 'match colour' sends 0.5)",
    )

    @field_validator("k", mode="before")
    @classmethod
    def _k_is_not_a_boolean(cls, value):
        # Pydantic's lax mode would read true as 1; a boolean k is a client bug worth reporting.
        if isinstance(value, bool):
            raise ValueError("k must be a whole number, not a boolean")
        return value

    @field_validator("colour", mode="before")
    @classmethod
    def _colour_is_not_a_boolean(cls, value):
        if isinstance(value, bool):
            raise ValueError("colour must be a number from 0 to 1, not a boolean")
        return value


class SearchResult(BaseModel):
    key: str
    score: float = Field(description="cosine similarity: 1.0 is the same image, higher is more similar")
    url: str = Field(description="where a browser can load the image (a server path or a presigned URL)")
    label: str | None = None
    width: int
    height: int
    attributes: dict[str, str] = Field(default_factory=dict, description="the catalogue's other columns")
    title: str | None = Field(default=None, description="the product's name")
    price: float | None = Field(default=None, description="in units of `currency`")
    currency: str | None = Field(default=None, description="ISO 4217 code, e.g. EUR")
    product_url: str | None = Field(default=None, description="the product's page in the shop (http or https)")
    brand: str | None = None


class RegionProposal(BaseModel):
    """A part of the query photo that looks like an object of its own, as fractions of the photo's size."""

    x: float
    y: float
    w: float
    h: float
    score: float = Field(description="how strongly the region stands out, 0-1; regions come strongest first")


class SearchResponse(BaseModel):
    results: list[SearchResult]
    took_ms: float = Field(description="server-side time to handle the request, in milliseconds")
    regions: list[RegionProposal] = Field(
        default_factory=list,
        description="up to four object regions of an uncropped image or URL query, to search one with `crop`",
    )
    upload: str | None = Field(
        default=None,
        description="the id under which the uploaded photo is kept for a while (null when the server keeps none): "
        "send it back as `upload` to search with the same photo",
    )


class RegionsResponse(BaseModel):
    regions: list[RegionProposal] = Field(
        description="up to four object regions of the photo, strongest first; none when it shows a single item"
    )
    took_ms: float = Field(description="server-side time to handle the request, in milliseconds")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. invalid_image, url_refused, validation_error")
    message: str = Field(description="a sentence a shopper or developer can act on")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class StatsResponse(BaseModel):
    count: int
    dimension: int | None = None
    model_id: str | None = None
    labels: dict[str, int] = Field(default_factory=dict, description="records per label; unlabelled omitted")
    backend: str
    centre: dict[str, Any] | None = Field(
        default=None, description="the query-domain centre searches use ({centre_id, photos}); null: none"
    )
    adaptation: dict[str, Any] | None = Field(
        default=None, description="live learning of the centre from searches (counts only); null: off"
    )


class HealthResponse(BaseModel):
    status: str = "ok"
    model_id: str | None = None
