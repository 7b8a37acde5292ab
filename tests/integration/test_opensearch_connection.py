"""OpenSearch URL forms and auth modes, offline: parsing, AWS host detection, and building a SigV4 signer."""

from __future__ import annotations

import pytest

from visual_search.core.errors import BackendUnauthorizedError, InvalidRequestError
from visual_search.indexes.opensearch.connection import (
    AwsSigV4Auth,
    BasicAuth,
    aws_signer,
    build_client,
    parse_opensearch_url,
)


@pytest.mark.parametrize(
    ("url", "endpoint", "use_tls"),
    [
        ("opensearch://127.0.0.1:9200/products", "http://127.0.0.1:9200", False),
        ("opensearch://search.internal/products", "http://search.internal:9200", False),
        ("opensearchs://search.internal/products", "https://search.internal:443", True),
        ("https://search.internal/products", "https://search.internal:443", True),
        ("http://127.0.0.1:9200/products/", "http://127.0.0.1:9200", False),
    ],
)
def test_each_url_form_names_endpoint_tls_and_index(url, endpoint, use_tls):
    location = parse_opensearch_url(url)
    assert (location.endpoint, location.use_tls, location.index_name, location.auth) == (
        endpoint,
        use_tls,
        "products",
        None,
    )


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/products",
        "opensearch://127.0.0.1:9200",
        "opensearch://127.0.0.1:9200/Products",
        "opensearch://127.0.0.1:9200/a/b",
        "opensearch:///products",
    ],
)
def test_urls_without_one_valid_index_name_are_refused(url):
    with pytest.raises(InvalidRequestError):
        parse_opensearch_url(url)


def test_userinfo_becomes_basic_auth_whose_repr_hides_the_password():
    location = parse_opensearch_url("https://admin:p%40ss@search.internal/products")
    assert location.auth == BasicAuth("admin", "p@ss")
    assert "p@ss" not in repr(location) and location.endpoint == "https://search.internal:443"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("search-shop-abc123.eu-west-1.es.amazonaws.com", AwsSigV4Auth("eu-west-1", "es")),
        ("abc123xyz.us-east-1.aoss.amazonaws.com", AwsSigV4Auth("us-east-1", "aoss")),
    ],
)
def test_amazon_hosts_choose_sigv4_with_their_region_and_service(host, expected):
    assert parse_opensearch_url(f"https://{host}/products").auth == expected


def test_explicit_auth_wins_over_the_host_guess():
    auth = BasicAuth("u", "p")
    assert parse_opensearch_url("https://x.eu-west-1.es.amazonaws.com/products", auth).auth is auth


def auth_from_env(environ: dict):
    from visual_search.bootstrap import opensearch_auth
    from visual_search.core.settings import Settings

    return opensearch_auth(Settings.from_env(environ))


def test_auth_from_env_reads_basic_and_sigv4_settings():
    assert auth_from_env({}) is None
    assert auth_from_env(
        {"VISUAL_SEARCH_OPENSEARCH_USERNAME": "u", "VISUAL_SEARCH_OPENSEARCH_PASSWORD": "p"}
    ) == BasicAuth("u", "p")
    assert auth_from_env(
        {
            "VISUAL_SEARCH_OPENSEARCH_AUTH": "sigv4",
            "AWS_REGION": "eu-west-1",
            "VISUAL_SEARCH_OPENSEARCH_AWS_SERVICE": "aoss",
        }
    ) == AwsSigV4Auth("eu-west-1", "aoss")
    assert auth_from_env({"VISUAL_SEARCH_OPENSEARCH_AUTH": "sigv4", "AWS_DEFAULT_REGION": "us-east-2"}) == AwsSigV4Auth(
        "us-east-2", "es"
    )
    with pytest.raises(InvalidRequestError, match="AWS_REGION"):
        auth_from_env({"VISUAL_SEARCH_OPENSEARCH_AUTH": "sigv4"})


@pytest.fixture
def fake_aws_credentials(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFORTESTS0000",
        "AWS_SECRET_ACCESS_KEY": "fake-secret",
        "AWS_SESSION_TOKEN": "fake-token",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_a_sigv4_signer_signs_offline_from_the_boto3_credential_chain(fake_aws_credentials, service):
    signer = aws_signer(AwsSigV4Auth("eu-west-1", service))
    headers = signer("GET", "https://x.eu-west-1.es.amazonaws.com/products/_count", None, {})
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKEFORTESTS0000/")
    assert f"/eu-west-1/{service}/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "fake-token"
    client = build_client(parse_opensearch_url(f"https://abc.eu-west-1.{service}.amazonaws.com/products"), timeout_s=5)
    assert client.transport.kwargs["http_auth"].service == service


def test_sigv4_without_any_credentials_is_an_unauthorized_error(monkeypatch):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(BackendUnauthorizedError, match="no AWS credentials"):
        aws_signer(AwsSigV4Auth("eu-west-1", "es"))


def test_an_unknown_aws_service_is_refused(fake_aws_credentials):
    with pytest.raises(InvalidRequestError, match="'es' or 'aoss'"):
        aws_signer(AwsSigV4Auth("eu-west-1", "s3"))
