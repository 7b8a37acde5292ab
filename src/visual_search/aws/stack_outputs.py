"""The outputs of a deployed stack (template.yaml's Outputs), which the operator commands work from."""

from __future__ import annotations

from visual_search.core.errors import BackendUnavailableError, InvalidRequestError, NotFoundError


def read_stack_outputs(stack_name: str, *, client=None, region_name: str | None = None) -> dict[str, str]:
    """{OutputKey: OutputValue} of `stack_name`. Raises NotFoundError for a stack that does not exist,
    BackendUnavailableError when CloudFormation cannot be asked."""
    from botocore.exceptions import BotoCoreError, ClientError

    if client is None:
        import boto3

        client = boto3.client("cloudformation", region_name=region_name)
    try:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", exc))
        if "does not exist" in message:
            raise NotFoundError(f"no stack named {stack_name!r} in this account and region") from None
        raise BackendUnavailableError(f"CloudFormation refused to describe {stack_name}: {message}") from None
    except BotoCoreError as exc:
        raise BackendUnavailableError(f"CloudFormation could not be reached: {exc}") from None
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def required_outputs(outputs: dict[str, str], stack_name: str, *names: str) -> list[str]:
    """The values of `names`, or InvalidRequestError naming the ones the stack lacks (not a visual-search stack,
    or one deployed from an older template)."""
    missing = [name for name in names if name not in outputs]
    if missing:
        raise InvalidRequestError(
            f"stack {stack_name} has no output {', '.join(missing)}: is it a visual-search stack deployed from this "
            "version of template.yaml?"
        )
    return [outputs[name] for name in names]
