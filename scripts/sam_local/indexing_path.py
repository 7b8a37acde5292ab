"""The template's indexing path (bucket notifications -> IndexQueue -> IndexFunction, failures -> the dead-letter
queue), read from template.yaml and recreated in moto for `make sam-local`.

Every value comes from the template: the queue's visibility timeout, retention and redrive policy, the DLQ's
retention, the notification's events and prefix filter, the event source mapping's batch size, batching window,
response types and concurrency, the function's timeout. Parameters take their defaults unless overridden as for
`sam deploy --parameter-overrides`, from SAM_LOCAL_PARAMETERS ("Name=Value Name=Value"); locally ImagesPrefix is
"images/" (where the seeded catalogue lives) unless that says otherwise. One value is not a parameter and may be
shortened for tests only: SAM_LOCAL_VISIBILITY_TIMEOUT_S (the template's 540 s makes a redelivery wait 9 minutes).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account, the one the sample bucket's name carries
LOCAL_PARAMETERS = {"ImagesPrefix": "images/"}
QUEUE_NAME = "sam-local-IndexQueue"
DEAD_LETTER_QUEUE_NAME = "sam-local-IndexDeadLetterQueue"


class TemplateValues:
    """Resolves the intrinsic functions the indexing path uses (Ref to a parameter, Fn::If over a condition built
    from Fn::Equals/Fn::Not, AWS::NoValue) with the parameters' defaults and the given overrides."""

    NO_VALUE = object()

    def __init__(self, template: dict, overrides: dict[str, str]):
        self.template = template
        self.parameters = {
            name: str(overrides.get(name, spec.get("Default", "")))
            for name, spec in template.get("Parameters", {}).items()
        }
        unknown = set(overrides) - set(self.parameters)
        if unknown:
            raise ValueError(f"SAM_LOCAL_PARAMETERS names parameters template.yaml does not have: {sorted(unknown)}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not self.NO_VALUE]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            if value["Ref"] == "AWS::NoValue":
                return self.NO_VALUE
            return self.parameters[value["Ref"]]
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return self.resolve(when_true if self.condition(condition) else when_false)
        if set(value) == {"Fn::GetAtt"}:
            return value  # another resource's attribute: the caller knows which resource it names
        return {key: resolved for key, item in value.items() if (resolved := self.resolve(item)) is not self.NO_VALUE}

    def condition(self, name_or_expression: Any) -> bool:
        expression = (
            self.template["Conditions"][name_or_expression]
            if isinstance(name_or_expression, str)
            else name_or_expression
        )
        if set(expression) == {"Fn::Equals"}:
            left, right = (str(self.resolve(side)) for side in expression["Fn::Equals"])
            return left == right
        if set(expression) == {"Fn::Not"}:
            return not self.condition(expression["Fn::Not"][0])
        if set(expression) == {"Condition"}:
            return self.condition(expression["Condition"])
        raise ValueError(f"a condition this script does not evaluate: {expression}")


@dataclass(frozen=True)
class IndexingPath:
    visibility_timeout_s: int
    retention_s: int
    dead_letter_retention_s: int
    max_receive_count: int
    notification_events: tuple[str, ...]
    prefix: str
    batch_size: int
    batching_window_s: int
    reports_batch_item_failures: bool
    max_concurrency: int
    function_timeout_s: int
    function_name: str = "IndexFunction"

    @classmethod
    def from_template(cls, template_path: Path | None = None, env: Mapping[str, str] | None = None) -> IndexingPath:
        from samtranslator.yaml_helper import yaml_parse  # SAM CLI's own reader: it knows the short-form tags

        if env is None:
            env = os.environ
        overrides = dict(LOCAL_PARAMETERS)
        overrides.update(_parameter_overrides(env.get("SAM_LOCAL_PARAMETERS", "")))
        template = yaml_parse((template_path or REPO / "template.yaml").read_text())
        values = TemplateValues(template, overrides)
        resources = template["Resources"]
        queue = values.resolve(resources["IndexQueue"]["Properties"])
        dead_letter = values.resolve(resources["IndexDeadLetterQueue"]["Properties"])
        function = resources["IndexFunction"]["Properties"]
        mapping = values.resolve(_sqs_event_source(function)["Properties"])
        notifications = values.resolve(resources["ImagesBucket"]["Properties"]["NotificationConfiguration"])
        queue_notifications = [
            entry
            for entry in notifications["QueueConfigurations"]
            if entry["Queue"] == {"Fn::GetAtt": ["IndexQueue", "Arn"]}
        ]
        prefixes = {
            rule["Value"]
            for entry in queue_notifications
            for rule in entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            if rule["Name"] == "prefix"
        }
        if len(prefixes) > 1:
            raise ValueError(f"the queue's notifications filter different prefixes: {sorted(prefixes)}")
        return cls(
            visibility_timeout_s=int(env.get("SAM_LOCAL_VISIBILITY_TIMEOUT_S") or queue["VisibilityTimeout"]),
            retention_s=int(queue["MessageRetentionPeriod"]),
            dead_letter_retention_s=int(dead_letter["MessageRetentionPeriod"]),
            max_receive_count=int(queue["RedrivePolicy"]["maxReceiveCount"]),
            notification_events=tuple(entry["Event"] for entry in queue_notifications),
            prefix=next(iter(prefixes), ""),
            batch_size=int(mapping["BatchSize"]),
            batching_window_s=int(mapping.get("MaximumBatchingWindowInSeconds", 0)),
            reports_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
            max_concurrency=int(mapping.get("ScalingConfig", {}).get("MaximumConcurrency", 1000)),
            function_timeout_s=int(values.resolve(function.get("Timeout", 3))),
        )


def _sqs_event_source(function: dict) -> dict:
    sources = [event for event in function.get("Events", {}).values() if event.get("Type") == "SQS"]
    if len(sources) != 1:
        raise ValueError(f"IndexFunction has {len(sources)} SQS event sources; the local loop expects one")
    return sources[0]


def _parameter_overrides(text: str) -> dict[str, str]:
    pairs = [word.split("=", 1) for word in shlex.split(text)]
    bad = [pair[0] for pair in pairs if len(pair) != 2]
    if bad:
        raise ValueError(f"SAM_LOCAL_PARAMETERS takes Name=Value pairs, not {bad}")
    return dict(pairs)


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def create_in_moto(path: IndexingPath, sqs, s3, bucket: str) -> dict[str, str]:
    """The dead-letter queue, the queue redriving to it and the bucket's notifications to the queue, as the
    template declares them; returns the queues' URLs and ARNs. The bucket must exist."""
    dead_letter_url = sqs.create_queue(
        QueueName=DEAD_LETTER_QUEUE_NAME, Attributes={"MessageRetentionPeriod": str(path.dead_letter_retention_s)}
    )["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(DEAD_LETTER_QUEUE_NAME), "maxReceiveCount": path.max_receive_count}
    queue_url = sqs.create_queue(
        QueueName=QUEUE_NAME,
        Attributes={
            "VisibilityTimeout": str(path.visibility_timeout_s),
            "MessageRetentionPeriod": str(path.retention_s),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    key_filter = {"Key": {"FilterRules": [{"Name": "prefix", "Value": path.prefix}]}} if path.prefix else None
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": f"index-queue-{number}",
                    "QueueArn": queue_arn(QUEUE_NAME),
                    "Events": [event],
                    **({"Filter": key_filter} if key_filter else {}),
                }
                for number, event in enumerate(path.notification_events)
            ]
        },
    )
    return {
        "queue_url": queue_url,
        "queue_arn": queue_arn(QUEUE_NAME),
        "dead_letter_queue_url": dead_letter_url,
        "dead_letter_queue_arn": queue_arn(DEAD_LETTER_QUEUE_NAME),
    }
