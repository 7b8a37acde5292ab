"""Request and response bodies of the catalogue routes (GET/POST /items, DELETE /items/{key}, GET /duplicates)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from visual_search.api.models import SearchResult
from visual_search.core.keys import MAX_KEY_LENGTH
from visual_search.core.records import MAX_PAGE
from visual_search.core.text_rules import bounded_json
from visual_search.services.duplicates import DEFAULT_THRESHOLD

MAX_LABEL_CHARS = 200
MAX_ATTRIBUTES = 50


class ItemsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(default=0, ge=0, le=1_000_000)
    limit: int = Field(default=48, ge=1, le=MAX_PAGE)
    label: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)


class DuplicatesQuery(BaseModel):
    """GET /duplicates' query (documentation: the route checks the threshold itself, 400 outside 0.5-1)."""

    threshold: float = Field(default=DEFAULT_THRESHOLD, description="similarity from which two images are one")


class AddItemForm(BaseModel):
    """The multipart fields of POST /items besides `file`. Product fields are checked as a catalogue CSV's are."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(default=None, max_length=MAX_KEY_LENGTH, description="default: the uploaded file's name")
    label: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    title: str | None = None
    price: str | None = None
    currency: str | None = None
    product_url: str | None = None
    brand: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict, description="a JSON object of text values")

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes_from_json(cls, value):
        if isinstance(value, str):
            try:  # bounded before parsing: deep nesting is a 400, never a RecursionError
                value = bounded_json(value, "attributes")
            except ValueError:
                raise ValueError('attributes must be a JSON object such as {"colour": "red"}') from None
        if not isinstance(value, dict) or len(value) > MAX_ATTRIBUTES:
            raise ValueError(f"attributes must be a JSON object of at most {MAX_ATTRIBUTES} text values")
        if not all(isinstance(name, str) and isinstance(text, str) for name, text in value.items()):
            raise ValueError("attribute names and values must be text")
        return value


class ItemsResponse(BaseModel):
    items: list[SearchResult] = Field(description="result-shaped items ordered by key; `score` is always 1")
    total: int = Field(description="how many items match the label filter")
    label_counts: dict[str, int] = Field(description="items per label in the whole catalogue")


class DeletedResponse(BaseModel):
    deleted: str


class DuplicateGroupModel(BaseModel):
    items: list[SearchResult] = Field(description="`score` is the member's best similarity within the group")


class DuplicatesResponse(BaseModel):
    threshold: float
    images_scanned: int
    groups: list[DuplicateGroupModel]
