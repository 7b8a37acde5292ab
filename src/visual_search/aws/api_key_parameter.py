"""Reads the search API's key from SSM Parameter Store (a SecureString), so that it never sits in the function's
environment, where anyone allowed lambda:GetFunctionConfiguration could read it."""

from __future__ import annotations

from visual_search.core.errors import BackendUnavailableError


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
