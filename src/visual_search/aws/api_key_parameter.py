"""Reads the search API's keys from SSM Parameter Store (SecureStrings), so that they never sit in the function's
environment, where anyone allowed lambda:GetFunctionConfiguration could read them.

Two keys (Settings.read_api_key / write_api_key), each from its own parameter (read_api_key_parameter /
write_api_key_parameter); the one key of before (api_key_parameter) still sets both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from visual_search.core.errors import BackendUnavailableError
from visual_search.core.settings import Settings

# (the field holding a key, the field naming the parameter it may come from)
KEY_PARAMETERS = (
    ("api_key", "api_key_parameter"),
    ("read_api_key", "read_api_key_parameter"),
    ("write_api_key", "write_api_key_parameter"),
)


def read_api_key_parameter(name: str, *, client=None, region_name: str | None = None) -> str:
    """The decrypted value of parameter `name`. Raises BackendUnavailableError (503) when it cannot be read or is
    empty: the function then answers every request with that error instead of running without a key."""
    from botocore.exceptions import BotoCoreError, ClientError

    if client is None:
        import boto3

        client = boto3.client("ssm", region_name=region_name)
    try:
        value = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise BackendUnavailableError(f"the API key parameter {name} could not be read: {code}") from None
    except BotoCoreError as exc:
        raise BackendUnavailableError(f"SSM could not be reached for the API key parameter {name}: {exc}") from None
    if not value.strip():
        raise BackendUnavailableError(f"the API key parameter {name} is empty")
    return value.strip()


def with_parameter_keys(settings: Settings, *, read_parameter: Callable[..., str] = read_api_key_parameter) -> Settings:
    """`settings` with each key that is not set itself read from the parameter naming it (a key given directly,
    as locally, wins). Raises BackendUnavailableError when a named parameter cannot be read: never an open API."""
    found: dict[str, Any] = {
        key_field: read_parameter(getattr(settings, parameter_field), region_name=settings.aws_region)
        for key_field, parameter_field in KEY_PARAMETERS
        if not getattr(settings, key_field) and getattr(settings, parameter_field)
    }
    return replace(settings, **found)
