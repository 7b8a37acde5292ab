"""Where an OpenSearch index lives and how to talk to it: URL forms, auth modes, retries and error translation.

URL forms (the path is exactly one segment, the index name):
  ``opensearch://host:9200/index``  plain HTTP (port 9200 when omitted)
  ``opensearchs://host/index``      HTTPS (port 443 when omitted)
  ``https://host/index``            HTTPS (port 443 when omitted)
  ``http://host:9200/index``        plain HTTP (port 80 when omitted, as for any http URL)
Auth: basic from the URL's userinfo (``http://user:pass@host:9200/index``) or an explicit BasicAuth; AWS SigV4
(AwsSigV4Auth) for Amazon OpenSearch Service (service "es") and Serverless ("aoss"), chosen automatically for
``*.REGION.es.amazonaws.com`` and ``*.REGION.aoss.amazonaws.com`` hosts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from visual_search.core import deadline as request_deadline
from visual_search.core.errors import BackendUnauthorizedError, InvalidRequestError

_SCHEMES = {"opensearch": (False, 9200), "opensearchs": (True, 443), "http": (False, 80), "https": (True, 443)}
_AWS_HOST = re.compile(r"\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.(?P<service>es|aoss)\.amazonaws\.com$")
# OpenSearch's own rules: lowercase, no leading '-', '_' or '+', none of these characters, not '.' or '..'.
_INDEX_NAME = re.compile(r"^(?![-_+.])[a-z0-9._+-]{1,255}$")


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password in logs or tracebacks
        return f"BasicAuth(username={self.username!r}, password='***')"


@dataclass(frozen=True)
class AwsSigV4Auth:
    """Sign requests with boto3's default credential chain; `service` is "es" (managed) or "aoss" (Serverless)."""

    region: str
    service: str = "es"


Auth = BasicAuth | AwsSigV4Auth | None


@dataclass(frozen=True)
class OpenSearchLocation:
    host: str
    port: int
    use_tls: bool
    index_name: str
    auth: Auth = None

    @property
    def endpoint(self) -> str:
        """The node's address without credentials, for messages."""
        return f"{'https' if self.use_tls else 'http'}://{self.host}:{self.port}"


def parse_opensearch_url(url: str, auth: Auth = None) -> OpenSearchLocation:
    """Parse one of the URL forms above. An explicit `auth` wins over userinfo and over the AWS host guess."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise InvalidRequestError(
            f"not an OpenSearch URL (expected opensearch://, opensearchs://, http:// or https://): {url!r}"
        )
    use_tls, default_port = _SCHEMES[parts.scheme]
    index_name = parts.path.strip("/")
    if not parts.hostname or not _INDEX_NAME.match(index_name):
        raise InvalidRequestError(
            "an OpenSearch URL needs a host and one lowercase index name as its path, "
            f"e.g. opensearch://127.0.0.1:9200/products; got {parts.scheme}://{parts.hostname}/{index_name}"
        )
    if auth is None and parts.username:
        auth = BasicAuth(unquote(parts.username), unquote(parts.password or ""))
    if auth is None and (aws_host := _AWS_HOST.search(parts.hostname)):
        auth = AwsSigV4Auth(region=aws_host["region"], service=aws_host["service"])
    return OpenSearchLocation(parts.hostname, parts.port or default_port, use_tls, index_name, auth)


def configured_auth(
    *, mode: str | None, username: str | None, password: str | None, aws_service: str = "es", region: str | None
) -> Auth:
    """The auth that Settings name (bootstrap passes them in; library code reads no environment).

    A username gives basic auth; mode "sigv4" gives SigV4 for `aws_service` (es|aoss) in `region`.
    """
    if (mode or "").lower() == "sigv4":
        if not region:
            raise InvalidRequestError("SigV4 auth for OpenSearch needs AWS_REGION (or AWS_DEFAULT_REGION)")
        return AwsSigV4Auth(region=region, service=aws_service or "es")
    if username:
        return BasicAuth(username, password or "")
    return None


def aws_signer(auth: AwsSigV4Auth):
    """An opensearch-py urllib3 SigV4 signer over boto3's default credential chain (env, profile, role).

    Raises BackendUnauthorizedError when the chain finds no credentials. boto3 is imported here, not at module
    import, because only AWS deployments need it.
    """
    if auth.service not in ("es", "aoss"):
        raise InvalidRequestError(f"AWS service for OpenSearch must be 'es' or 'aoss', not {auth.service!r}")
    import boto3
    from opensearchpy import Urllib3AWSV4SignerAuth

    credentials = boto3.Session(region_name=auth.region).get_credentials()
    if credentials is None:
        raise BackendUnauthorizedError(
            "no AWS credentials found for signing OpenSearch requests (env, profile or role)"
        )
    return Urllib3AWSV4SignerAuth(credentials, auth.region, auth.service)


def deadline_transport(timeout_s: float):
    """opensearch-py's Transport, each request's timeout shortened to what is left of the request's deadline
    (core/deadline.py); with none left, DeadlineExceededError instead of a request."""
    from opensearchpy import Transport

    class DeadlineTransport(Transport):
        def perform_request(self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None):
            if request_deadline.remaining_s() is not None:
                request_deadline.check(f"ask OpenSearch ({method} {url})")
                timeout = request_deadline.capped(timeout or timeout_s)
            return super().perform_request(
                method, url, params=params, body=body, timeout=timeout, ignore=ignore, headers=headers
            )

    return DeadlineTransport


def build_client(location: OpenSearchLocation, *, timeout_s: float, verify_certs: bool = True):
    """An opensearch-py client for `location`. Its own retries are off: OpenSearchSession backs off instead."""
    from opensearchpy import OpenSearch

    if isinstance(location.auth, AwsSigV4Auth):
        http_auth = aws_signer(location.auth)
    elif isinstance(location.auth, BasicAuth):
        http_auth = (location.auth.username, location.auth.password)
    else:
        http_auth = None
    return OpenSearch(
        hosts=[{"host": location.host, "port": location.port}],
        transport_class=deadline_transport(timeout_s),
        use_ssl=location.use_tls,
        verify_certs=verify_certs and location.use_tls,
        ssl_show_warn=False,
        http_auth=http_auth,
        # Vectors are long JSON arrays that gzip roughly halves: worth it over a network, not over loopback.
        http_compress=location.host not in ("127.0.0.1", "localhost", "::1"),
        timeout=timeout_s,
        max_retries=0,
    )
