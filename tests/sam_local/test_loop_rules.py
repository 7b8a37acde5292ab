"""The local loop's rules, without Docker: the event source poller's reading of a function response (AWS's partial
batch rules), the Lambda SQS event it builds, the indexing path read from template.yaml, and the Debian mirror
read from apt's sources."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "scripts" / "sam_local"))
event_source = importlib.import_module("event_source")
indexing_path = importlib.import_module("indexing_path")
apt_mirror = importlib.import_module("apt_mirror")

IDS = ["m-1", "m-2", "m-3"]


@pytest.mark.parametrize(
    "response",
    [b"", b"null", b"{}", b'{"batchItemFailures": []}', b'{"batchItemFailures": null}'],
    ids=["empty", "null", "empty object", "empty list", "null list"],
)
def test_a_response_without_failures_is_a_complete_success(response):
    assert event_source.failed_message_ids(response, IDS, True) == ([], None)


def test_listed_failures_leave_only_those_messages_on_the_queue():
    response = json.dumps({"batchItemFailures": [{"itemIdentifier": "m-2"}]}).encode()
    assert event_source.failed_message_ids(response, IDS, True) == (["m-2"], None)


@pytest.mark.parametrize(
    "response",
    [
        b"not json",
        b'"a string"',
        b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
        b'{"batchItemFailures": [{"itemIdentifier": null}]}',
        b'{"batchItemFailures": [{"id": "m-1"}]}',
        b'{"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]}',
        b'{"batchItemFailures": "m-1"}',
    ],
    ids=["not json", "not an object", "empty id", "null id", "bad key name", "unknown id", "not a list"],
)
def test_an_invalid_response_fails_the_whole_batch(response):
    failed, why = event_source.failed_message_ids(response, IDS, True)
    assert failed == IDS and why


def test_without_report_batch_item_failures_any_success_deletes_the_batch():
    response = json.dumps({"batchItemFailures": [{"itemIdentifier": "m-2"}]}).encode()
    assert event_source.failed_message_ids(response, IDS, False) == ([], None)


def test_the_event_is_the_one_lambda_sends_and_the_index_function_reads():
    from visual_search.aws.s3_events import parse_event

    s3_event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "images/a+photo.jpg", "size": 1, "eTag": "e"}},
            }
        ]
    }
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "handle",
        "Body": json.dumps(s3_event),
        "MD5OfBody": "md5",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "x"}},
    }
    event = event_source.lambda_event([message], "arn:aws:sqs:us-east-1:123456789012:q")
    record = event["Records"][0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":q")
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["kind"]["stringValue"] == "x"
    parsed = parse_event(event)
    assert parsed.from_sqs and [(o.key, o.message_id) for o in parsed.objects] == [("images/a photo.jpg", "m-1")]


def test_the_indexing_path_takes_the_templates_values():
    template = yaml_parse((REPO_ROOT / "template.yaml").read_text())
    parameters = template["Parameters"]
    resources = template["Resources"]
    path = indexing_path.IndexingPath.from_template(env={})
    assert path.visibility_timeout_s == resources["IndexQueue"]["Properties"]["VisibilityTimeout"]
    assert path.max_receive_count == int(parameters["IndexMaxReceiveCount"]["Default"])
    assert path.batch_size == int(parameters["IndexBatchSize"]["Default"])
    mapping = resources["IndexFunction"]["Properties"]["Events"]["ImageEvents"]["Properties"]
    assert path.batching_window_s == mapping["MaximumBatchingWindowInSeconds"]
    assert path.reports_batch_item_failures
    assert set(path.notification_events) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    assert path.prefix == "images/"  # the local value of ImagesPrefix: where the seeded catalogue lives
    assert path.function_timeout_s == resources["IndexFunction"]["Properties"]["Timeout"]


def test_parameter_overrides_work_as_for_sam_deploy_and_unknown_names_are_refused():
    path = indexing_path.IndexingPath.from_template(
        env={"SAM_LOCAL_PARAMETERS": "IndexMaxReceiveCount=2 ImagesPrefix=", "SAM_LOCAL_VISIBILITY_TIMEOUT_S": "30"}
    )
    assert (path.max_receive_count, path.prefix, path.visibility_timeout_s) == (2, "", 30)
    with pytest.raises(ValueError, match="NoSuchParameter"):
        indexing_path.IndexingPath.from_template(env={"SAM_LOCAL_PARAMETERS": "NoSuchParameter=1"})


def test_the_debian_mirror_is_the_main_archive_of_the_apt_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("# nothing here\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nEnabled: no\nURIs: http://disabled.example/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\n# a comment inside\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\n"
    )
    (tmp_path / "sources.list.d" / "other.list.disabled").write_text(
        "deb http://ignored.example/debian bookworm main\n"
    )
    assert apt_mirror.debian_mirror(apt_mirror.apt_sources(tmp_path)) == "http://mirror.example/debian"


def test_one_line_sources_with_options_are_read(tmp_path):
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm-backports main\n"
        "deb [signed-by=/k.gpg] http://two.example/debian bookworm main\n"
    )
    assert apt_mirror.debian_mirror(apt_mirror.apt_sources(tmp_path)) == "http://two.example/debian"


def test_no_debian_archive_among_the_sources_gives_no_mirror(tmp_path):
    (tmp_path / "sources.list").write_text("deb http://ppa.example/ubuntu jammy-updates main\n")
    assert apt_mirror.debian_mirror(apt_mirror.apt_sources(tmp_path)) is None
