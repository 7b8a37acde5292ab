"""Issue 22, classes 3-5: every text field has a length and shape, URLs are read as browsers read them, and no
caller's value reaches the file system, the recursion limit or a constraint as a 500.

The probe's cases through POST /items (5 MB attribute values, 100,000-character names and nested brackets, keys
of 300 and 1,020 characters, `new1.jpg/x.jpg` after `new1.jpg`, bidi overrides, look-alike dots, NUL, non-ASCII
digits, `https://shop.example\\.evil.example/`, port 0), then generated variants of each class (hypothesis).
"""

from __future__ import annotations

import json
import shutil
import unicodedata

import pytest
from corpus import MULTIPART, multipart_body, real_jpeg
from fakes import HistogramEmbedder
from fastapi.testclient import TestClient
from hostile_support import assert_no_stack_trace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visual_search.core.errors import InvalidRequestError
from visual_search.core.keys import key_problem
from visual_search.core.products import checked_product_url, product_from_columns
from visual_search.core.settings import Settings
from visual_search.core.text_rules import attributes_from_json, checked_attributes, checked_label
from visual_search.indexes.local.index import LocalIndex
from visual_search.server.app import create_app
from visual_search.services.duplicates import checked_threshold
from visual_search.services.search import SearchService

pytestmark = pytest.mark.timeout(300)
KEY = "hostile-text-key"
# Every format character, line and paragraph separator Unicode has (bidi overrides and isolates, zero-width ones).
SHAPING = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in ("Cf", "Zl", "Zp")]
# Characters NFKC folds into '.', '/' or '\\' (fullwidth, small, one-dot leader, two-dot leader...).
LOOK_ALIKES = [
    chr(c)
    for c in range(0x80, 0x110000)
    if set(unicodedata.normalize("NFKC", chr(c))) & set("./\\") and chr(c) not in "./\\"
]


@pytest.fixture(scope="module")
def client(hostile_index_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("text-index") / "index"
    shutil.copytree(hostile_index_dir, directory)
    uploads = tmp_path_factory.mktemp("uploads")
    settings_ = Settings(index=str(directory), api_key=KEY, image_store=str(uploads))
    service = SearchService(HistogramEmbedder(), LocalIndex(directory, writable=False))
    app = create_app(settings_, search_service=service, frontend_dir=tmp_path_factory.mktemp("no-ui"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    service.index.close()


def add(client, **fields):
    files = {"file": ("photo.jpg", real_jpeg(), "image/jpeg")}
    body = multipart_body({name: value for name, value in fields.items() if value is not None}, files)
    return client.post("/items", content=body, headers={"Content-Type": MULTIPART, "X-API-Key": KEY})


# -- the probe's cases ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"key": "big-value.jpg", "attributes": json.dumps({"notes": "x" * 5_000_000})}, 400),
        ({"key": "long-name.jpg", "attributes": json.dumps({"n" * 100_000: "x"})}, 400),
        ({"key": "nested.jpg", "attributes": "[" * 100_000}, 400),
        ({"key": "nested-object.jpg", "attributes": '{"a":' * 50_000}, 400),
        ({"key": "too-many.jpg", "attributes": json.dumps({f"a{n}": "x" for n in range(51)})}, 422),
        ({"key": "k" * 296 + ".jpg"}, 400),
        ({"key": "k" * 1016 + ".jpg"}, 400),
        ({"key": "/".join(["d" * 200] * 3) + ".jpg"}, 400),  # every part fits a file name; the key is > 512 bytes
        ({"key": "gpj\u202e.jpg"}, 400),
        ({"key": "line\u2028sep.jpg"}, 400),
        ({"key": "\uff0e\uff0e/evil.jpg"}, 400),
        ({"key": "zero\u200bwidth.jpg"}, 400),
        ({"key": "nul-label.jpg", "label": "sho\x00es"}, 400),
        ({"key": "bidi-title.jpg", "title": "Boots \u202egnp.exe"}, 400),
        ({"key": "sep-brand.jpg", "brand": "Acme\u2029Corp"}, 400),
        ({"key": "digits.jpg", "price": "\uff11\uff19", "currency": "EUR"}, 400),
        ({"key": "arabic.jpg", "price": "\u0661\u0669.\u0669\u0669", "currency": "EUR"}, 400),
        ({"key": "backslash.jpg", "product_url": "https://shop.example\\.evil.example/"}, 400),
        ({"key": "port0.jpg", "product_url": "https://shop.example:0/item"}, 400),
        ({"key": "schemeless.jpg", "product_url": "https:evil.example/item"}, 400),
        (
            {
                "key": "fine-emoji-\U0001f45f.jpg",
                "title": "Shoes \U0001f469\u200d\U0001f467",
                "price": "19.99",
                "currency": "EUR",
                "product_url": "https://shop.example/p/1",
            },
            201,
        ),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else str(value),
)
def test_the_probes_fields_are_refused_with_a_4xx(client, fields, status):
    response = add(client, **fields)
    assert response.status_code == status, response.text[:300]
    assert_no_stack_trace(response.text)


def test_a_key_under_a_key_that_is_a_file_is_a_409_not_a_500(client):
    assert add(client, key="new1.jpg").status_code == 201
    nested = add(client, key="new1.jpg/x.jpg")
    assert nested.status_code == 409 and nested.json()["error"]["code"] == "key_conflict", nested.text[:300]
    assert add(client, key="folder2/y.jpg").status_code == 201
    assert add(client, key="folder2").status_code == 400  # no image suffix
    over = add(client, key="folder2.jpg/z.jpg")
    assert over.status_code == 201, over.text[:300]
    under = add(client, key="folder2.jpg")
    assert under.status_code == 409, under.text[:300]


def test_a_threshold_of_non_ascii_digits_is_a_400(client):
    for threshold in ("\uff10.\uff19", "\u0660.\u0669", "0_9", " 0.9e0"):
        response = client.get(f"/duplicates?threshold={threshold}", headers={"X-API-Key": KEY})
        assert response.status_code == 400, (threshold, response.text[:200])
    with pytest.raises(InvalidRequestError):
        checked_threshold("\uff10.\uff19")
    assert checked_threshold("0.95") == 0.95


# -- the classes, generated ----------------------------------------------------------------------------------


@given(st.sampled_from(SHAPING), st.text(alphabet="abc/", max_size=8), st.integers(0, 8))
def test_every_format_and_separator_character_is_refused_in_keys_and_labels(character, stem, at):
    key = (stem + ".jpg")[:at] + character + (stem + ".jpg")[at:]
    assert key_problem(key), repr(key)
    with pytest.raises(InvalidRequestError):
        checked_label("la" + character + "bel")
    with pytest.raises(InvalidRequestError):
        checked_attributes({"colour" + character: "red"})


@given(st.sampled_from(LOOK_ALIKES), st.sampled_from(["{}{}/evil.jpg", "a{}jpg", "x/{}/y.jpg", "{}.jpg"]))
def test_every_character_that_normalises_to_a_path_character_is_refused_in_keys(character, pattern):
    assert key_problem(pattern.format(character, character)), repr(pattern.format(character, character))


@given(st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), max_size=600))
def test_a_key_is_accepted_only_within_every_backends_byte_bounds(text):
    key = text + ".jpg"
    problem = key_problem(key)
    parts_fit = all(len(part.encode()) <= 255 for part in key.split("/"))
    if len(key.encode()) > 512 or not parts_fit:
        assert problem, "an over-long key was accepted"


@given(st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=6))
def test_prices_are_read_only_from_ascii_digits(digits):
    columns = {"price": digits, "currency": "EUR"}
    if digits.isascii():
        assert product_from_columns(columns).price == float(digits)
    else:
        with pytest.raises(InvalidRequestError):
            product_from_columns(columns)


@settings(deadline=None)  # a 200,000-character body takes a while to scan on a loaded machine
@given(st.integers(1, 200_000))
def test_nesting_of_any_depth_in_attributes_is_a_400_never_a_recursion_error(depth):
    for text in ("[" * depth, '{"a":' * depth, "[" * depth + "]" * depth):
        with pytest.raises(InvalidRequestError):
            attributes_from_json(text)


@given(
    st.sampled_from(["shop.example", "127.0.0.1", "xn--bcher-kva.example", "[::1]"]),
    st.sampled_from(["\\", "\\\\", "/\\", "\\@", "%5C", "%2e"]),
    st.sampled_from(["evil.example", ".evil.example", "@evil.example"]),
)
def test_urls_that_browsers_read_with_another_host_are_refused(host, separator, rest):
    url = f"https://{host}{separator}{rest}/"
    try:
        accepted = checked_product_url(url)
    except InvalidRequestError:
        return
    import ada_url

    assert ada_url.parse_url(accepted)["hostname"] == ada_url.parse_url(f"https://{host}/")["hostname"], url


_FIELD_TEXT = st.text(max_size=400) | st.sampled_from(["", " ", "\x00", "\u202e", "{" * 3000, "１９", "0" * 400])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.none() | _FIELD_TEXT.map(lambda text: text + ".jpg") | _FIELD_TEXT,
    label=st.none() | _FIELD_TEXT,
    title=st.none() | _FIELD_TEXT,
    price=st.none() | _FIELD_TEXT | st.decimals(allow_nan=False, allow_infinity=False).map(str),
    currency=st.none() | _FIELD_TEXT,
    product_url=st.none() | _FIELD_TEXT.map(lambda text: "https://" + text),
    brand=st.none() | _FIELD_TEXT,
    attributes=st.none()
    | _FIELD_TEXT
    | st.dictionaries(_FIELD_TEXT, _FIELD_TEXT, max_size=4).map(json.dumps)
    | st.recursive(st.text(max_size=3), lambda inner: st.lists(inner, max_size=3), max_leaves=20).map(json.dumps),
)
def test_no_field_value_of_post_items_gives_a_5xx(
    client, key, label, title, price, currency, product_url, brand, attributes
):
    fields = dict(
        key=key,
        label=label,
        title=title,
        price=price,
        currency=currency,
        product_url=product_url,
        brand=brand,
        attributes=attributes,
    )
    encodable = {name: value.encode("utf-8", "surrogatepass") for name, value in fields.items() if value is not None}
    response = add(client, **encodable)
    assert response.status_code < 500, (fields, response.text[:300])
    assert_no_stack_trace(response.text)


@pytest.mark.parametrize(
    "url", ["https://shop.example\\.evil.example/a.jpg", "http://127.0.0.1\\@evil.example/", "https://shop.example:0/"]
)
def test_the_url_fetcher_refuses_what_browsers_read_otherwise_before_resolving_anything(url):
    from visual_search.core.errors import FetchRefusedError
    from visual_search.fetching.url_fetch import UrlFetcher

    def no_resolving(host, port):
        raise AssertionError(f"resolved {host!r}")

    with pytest.raises(FetchRefusedError) as refused:
        UrlFetcher(resolver=no_resolving).fetch(url)
    assert refused.value.code == "url_malformed"
