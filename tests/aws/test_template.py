"""template.yaml, transformed offline with samtranslator, and the invariants the deployment relies on."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from aws_fixtures import REPO_ROOT

from visual_search.aws.handlers import INDEX_SETTINGS, SEARCH_SETTINGS
from visual_search.core.settings import ENV_PREFIX, Settings

TEMPLATE = REPO_ROOT / "template.yaml"
PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::Region",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NoValue",
    "AWS::NotificationARNs",
}


class _NoManagedPolicies:
    """samtranslator asks IAM for managed policy ARNs only when a function lists policies by name; ours do not."""

    def load(self):
        return {}


@pytest.fixture(scope="module")
def source() -> dict:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.loads(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def transformed(source) -> dict:
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.transform import transform

    # The translator asks boto3 for a region only to fill in pseudo parameters; a test run configures none.
    ArnGenerator.BOTO_SESSION_REGION_NAME = "us-east-1"
    packaged = json.loads(json.dumps(source))
    for resource in packaged["Resources"].values():  # what `sam package` does: local folders become S3 objects
        for name in ("CodeUri", "ContentUri"):
            if name in resource.get("Properties", {}):
                resource["Properties"][name] = f"s3://artifacts/{resource['Properties'][name].strip('/')}.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return json.loads(json.dumps(transform(packaged, {}, _NoManagedPolicies())))


def walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_every_ref_getatt_and_sub_variable_resolves(transformed):
    names = set(transformed["Resources"]) | set(transformed.get("Parameters", {})) | PSEUDO_PARAMETERS
    unresolved = []
    for node in walk(transformed):
        if not isinstance(node, dict):
            continue
        if "Ref" in node and node["Ref"] not in names:
            unresolved.append(("Ref", node["Ref"]))
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            resource = target[0] if isinstance(target, list) else target.split(".")[0]
            if resource not in transformed["Resources"]:
                unresolved.append(("GetAtt", resource))
        if "Fn::Sub" in node:
            text, local = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
            for variable in re.findall(r"\$\{([^}!]+)\}", text):
                if variable.split(".")[0] not in names | set(local):
                    unresolved.append(("Sub", variable))
    assert not unresolved


def statements_of(document_statements: list) -> list[dict]:
    """A policy's statements, a conditional one (Fn::If) counted as the statement it may become."""
    found = []
    for statement in document_statements:
        if "Fn::If" in statement:
            found += [branch for branch in statement["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"}]
        else:
            found.append(statement)
    return found


def _policy_statements(transformed):
    for resource in transformed["Resources"].values():
        properties = resource.get("Properties", {})
        documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        documents += [properties[name] for name in ("PolicyDocument", "AccessPolicies") if name in properties]
        for document in documents:
            yield from statements_of(document["Statement"])


def _domain_statements(transformed) -> list[dict]:
    return statements_of(transformed["Resources"]["SearchDomain"]["Properties"]["AccessPolicies"]["Statement"])


def _role_statements(transformed, role: str) -> list[dict]:
    return [
        s
        for policy in transformed["Resources"][role]["Properties"]["Policies"]
        for s in statements_of(policy["PolicyDocument"]["Statement"])
    ]


def test_no_iam_statement_allows_a_wildcard_action(transformed):
    actions = []
    for statement in _policy_statements(transformed):
        if statement["Effect"] == "Allow":
            listed = statement.get("Action", [])
            actions += [listed] if isinstance(listed, str) else listed
    assert actions and not [action for action in actions if "*" in action]
    assert "es:ESHttpPut" in actions and "es:*" not in actions


def test_both_buckets_deny_every_action_over_plain_http(transformed):
    for bucket in ("ImagesBucket", "FrontendBucket"):
        policy = next(
            r["Properties"]
            for r in transformed["Resources"].values()
            if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
        )
        deny = next(s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny")
        assert deny["Action"] == "s3:*" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert {"Fn::GetAtt": [bucket, "Arn"]} in deny["Resource"]  # bucket-level calls too, not only objects
        assert {"Fn::Sub": f"${{{bucket}.Arn}}/*"} in deny["Resource"]


def test_opensearch_is_reachable_only_by_the_two_function_roles_and_the_optional_operator(transformed):
    domain = transformed["Resources"]["SearchDomain"]["Properties"]
    principals = [statement["Principal"]["AWS"] for statement in _domain_statements(transformed)]
    index_role, search_role = (
        {"Fn::GetAtt": ["IndexFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["SearchFunctionRole", "Arn"]},
    )
    operator = {"Ref": "OpenSearchAdminPrincipal"}
    assert principals and all(principal in (index_role, search_role, operator) for principal in principals)
    conditional = [s for s in domain["AccessPolicies"]["Statement"] if "Fn::If" in s]
    assert [s["Fn::If"][0] for s in conditional] == ["HasAdminPrincipal"]
    assert index_role in principals and search_role in principals
    assert domain["EncryptionAtRestOptions"]["Enabled"] and domain["NodeToNodeEncryptionOptions"]["Enabled"]
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"]


def test_the_search_role_can_only_read_the_index(transformed):
    """POST is how OpenSearch writes (_bulk, _doc, _delete_by_query): the search function may POST only queries."""
    statements = _role_statements(transformed, "SearchFunctionRole")
    statements += [
        s
        for s in _domain_statements(transformed)
        if s["Principal"]["AWS"] == {"Fn::GetAtt": ["SearchFunctionRole", "Arn"]}
    ]
    posting = [s for s in statements if "es:ESHttpPost" in s["Action"]]
    assert posting
    for statement in posting:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            text = json.dumps(resource)
            assert re.search(r"/(_search|_mget|_count)\"", text), f"search role may POST to {text}"
    assert not [s for s in statements if {"es:ESHttpPut", "es:ESHttpDelete"} & set(s["Action"])]


def test_no_role_reaches_opensearch_beyond_the_products_index(transformed):
    """Every es: statement names the index (and what is under it), never the domain's cluster APIs."""
    statements = [
        s
        for name, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        for s in _role_statements(transformed, name)
    ]
    statements += _domain_statements(transformed)
    es_statements = [s for s in statements if any(a.startswith("es:") for a in s["Action"])]
    assert es_statements
    for statement in es_statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert "${OpenSearchIndexName}" in json.dumps(resource), f"{statement.get('Sid')} reaches {resource}"


def test_cors_never_allows_every_origin(transformed):
    names = {"alloworigins", "allowedorigins"}  # the HTTP API's OpenAPI body spells it allowOrigins
    origins = [
        value
        for node in walk(transformed)
        if isinstance(node, dict)
        for key, value in node.items()
        if key.lower() in names
    ]
    assert len(origins) >= 2  # the HTTP API and the images bucket
    assert "*" not in json.dumps(origins)
    cors = transformed["Resources"]["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"]
    assert set(cors) >= {"allowOrigins", "allowMethods", "allowHeaders"}, "SAM replaced the CORS object"


def test_buckets_are_private_and_encrypted(transformed):
    for name in ("ImagesBucket", "FrontendBucket"):
        bucket = transformed["Resources"][name]["Properties"]
        assert all(bucket["PublicAccessBlockConfiguration"].values())
        assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]


def test_both_functions_set_exactly_the_settings_they_read(source):
    fields = {field.name for field in dataclasses.fields(Settings)}
    for function, wanted in (("SearchFunction", SEARCH_SETTINGS), ("IndexFunction", INDEX_SETTINGS)):
        variables = source["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert set(wanted) <= fields, "the handlers name a setting that does not exist"
        assert {ENV_PREFIX + name.upper() for name in wanted} == {v for v in variables if v.startswith(ENV_PREFIX)}
    assert (
        source["Resources"]["SearchFunction"]["Properties"]["Environment"]["Variables"]["VISUAL_SEARCH_EMBEDDER"]
        == "sagemaker"
    )


def test_every_created_and_removed_object_of_the_prefix_reaches_the_queue(source):
    """No suffix filter (S3's are case-sensitive: x.Jpg would be missed); the handler applies the CLI's rule."""
    rules = source["Resources"]["ImagesBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert sorted(rule["Event"] for rule in rules) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    for rule in rules:
        assert rule["Queue"] == {"Fn::GetAtt": ["IndexQueue", "Arn"]}
        condition, with_prefix, without = rule["Filter"]["Fn::If"]
        assert condition == "HasImagesPrefix" and without == {"Ref": "AWS::NoValue"}
        assert with_prefix == {"S3Key": {"Rules": [{"Name": "prefix", "Value": {"Ref": "ImagesPrefix"}}]}}
        assert "suffix" not in json.dumps(rule)


def test_queue_policy_names_the_bucket_without_a_reference_cycle(source):
    bucket = source["Resources"]["ImagesBucket"]
    assert bucket["DependsOn"] == "IndexQueuePolicy"
    policy = json.dumps(source["Resources"]["IndexQueuePolicy"])
    assert '"Ref": "ImagesBucket"' not in policy and '["ImagesBucket"' not in policy
    assert "visual-search-images-${AWS::AccountId}-${Suffix}" in policy
    assert json.dumps(bucket["Properties"]["BucketName"]).count("${Suffix}") == 1


def test_index_function_reports_partial_batch_failures_and_failures_reach_a_dlq(transformed):
    mapping = next(r for r in transformed["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = transformed["Resources"]["IndexQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IndexDeadLetterQueue", "Arn"]}


def test_core_layer_is_built_from_the_one_source_tree(source):
    layer = source["Resources"]["CoreLayer"]
    assert layer["Properties"]["ContentUri"] == "src/" and layer["Metadata"]["BuildMethod"].startswith("python3")
    assert not list((REPO_ROOT / "layers").rglob("*.py")), "a copy of the library under layers/"
    requirements = (REPO_ROOT / "layers" / "deps" / "requirements.txt").read_text().lower()
    for heavy in ("onnxruntime", "faiss", "fastapi", "torch", "visual"):
        assert not re.search(rf"^{heavy}", requirements, re.MULTILINE), heavy


def test_outputs_name_what_the_deploy_guide_uses(source):
    assert {
        "ApiUrl",
        "FrontendUrl",
        "ImagesBucketName",
        "OpenSearchEndpoint",
        "EmbeddingEndpointName",
        "FrontendBucketName",
        "FrontendDistributionId",
        "ApiKeyRequired",
    } <= set(source["Outputs"])


def test_cfn_lint_finds_no_error_or_warning():
    from cfnlint.api import ManualArgs, lint

    matches = lint(TEMPLATE.read_text(), config=ManualArgs(regions=["us-east-1"]))
    serious = [match for match in matches if not match.rule.id.startswith("I")]  # informational hints aside
    assert not serious, "\n".join(str(match) for match in serious)


def _sam_cli() -> str | None:
    return (
        os.environ.get("VISUAL_SEARCH_SAM_CLI")
        or shutil.which("sam")
        or ("/tmp/samvenv/bin/sam" if Path("/tmp/samvenv/bin/sam").exists() else None)
    )


@pytest.mark.parametrize("arguments", [["--lint"], ["--region", "us-east-1"]], ids=["lint", "region"])
def test_sam_validate_passes_offline(arguments):
    sam = _sam_cli()
    if sam is None:
        pytest.skip("aws-sam-cli is not installed (pip install aws-sam-cli, or set VISUAL_SEARCH_SAM_CLI)")
    environment = dict(os.environ, SAM_CLI_TELEMETRY="0", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    result = subprocess.run(
        [sam, "validate", "--template-file", str(TEMPLATE), *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env=environment,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def _alarms(transformed) -> dict[str, dict]:
    return {
        name: r["Properties"] for name, r in transformed["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def _watched(alarm: dict) -> tuple[str, str, dict]:
    return alarm["Namespace"], alarm["MetricName"], {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_alarms_watch_the_dead_letters_both_functions_the_api_and_the_cluster(transformed):
    watched = {_watched(alarm)[:2]: (alarm, _watched(alarm)[2]) for alarm in _alarms(transformed).values()}
    dead_letters, dimensions = watched[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    assert dimensions == {"QueueName": {"Fn::GetAtt": ["IndexDeadLetterQueue", "QueueName"]}}
    assert (dead_letters["ComparisonOperator"], dead_letters["Threshold"]) == ("GreaterThanThreshold", 0)
    lambda_alarms = {
        (_watched(a)[1], _watched(a)[2]["FunctionName"]["Ref"])
        for a in _alarms(transformed).values()
        if a["Namespace"] == "AWS/Lambda"
    }
    assert lambda_alarms == {
        (metric, function) for metric in ("Errors", "Throttles") for function in ("IndexFunction", "SearchFunction")
    }
    api, dimensions = watched[("AWS/ApiGateway", "5xx")]
    assert dimensions == {"ApiId": {"Ref": "HttpApi"}}
    domain = {"DomainName": {"Ref": "SearchDomain"}, "ClientId": {"Ref": "AWS::AccountId"}}
    red, red_dimensions = watched[("AWS/ES", "ClusterStatus.red")]
    storage, storage_dimensions = watched[("AWS/ES", "FreeStorageSpace")]
    jvm, jvm_dimensions = watched[("AWS/ES", "JVMMemoryPressure")]
    assert red_dimensions == storage_dimensions == jvm_dimensions == domain
    assert (red["ComparisonOperator"], red["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert storage["ComparisonOperator"].startswith("LessThan") and storage["Statistic"] == "Minimum"
    assert jvm["ComparisonOperator"].startswith("GreaterThan") and jvm["Threshold"] >= 75


def test_every_alarm_notifies_the_optional_email_topic(transformed):
    topic = transformed["Resources"]["AlarmTopic"]
    assert topic["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    for name, alarm in _alarms(transformed).items():
        assert alarm["AlarmActions"] == {
            "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
        }, name


def test_the_dashboard_names_only_resources_of_the_stack(transformed):
    body, variables = transformed["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    assert {w["properties"]["title"] for w in widgets} >= {"Search API", "Functions", "Indexing queue", "OpenSearch"}
    names = set(transformed["Resources"]) | PSEUDO_PARAMETERS | set(variables)
    assert {v.split(".")[0] for v in re.findall(r"\$\{([^}]+)\}", body)} <= names


def test_api_access_logs_and_optional_tracing(transformed):
    stage = next(r["Properties"] for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage")
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert json.loads(stage["AccessLogSettings"]["Format"])["status"] == "$context.status"
    for function in ("IndexFunction", "SearchFunction"):
        assert transformed["Resources"][function]["Properties"]["TracingConfig"] == {"Mode": {"Ref": "Tracing"}}
        traces = [s for s in _role_statements(transformed, f"{function}Role") if s.get("Sid") == "Traces"]
        assert traces and traces[0]["Action"] == ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


def test_retry_budgets_nest_inside_the_timeouts(source):
    """The endpoint budget (per request: a cold start's describe, then the embedding) fits the function's timeout,
    which fits API Gateway's 30 s (search) and a sixth of the queue's visibility timeout (index)."""
    from visual_search.aws.handlers import INDEX_BATCH_SIZE

    resources = source["Resources"]

    def budget(function):
        return float(resources[function]["Properties"]["Environment"]["Variables"]["VISUAL_SEARCH_SAGEMAKER_BUDGET_S"])

    search_timeout = resources["SearchFunction"]["Properties"]["Timeout"]
    index_timeout = resources["IndexFunction"]["Properties"]["Timeout"]
    endpoint_requests_per_batch = -(-source["Parameters"]["IndexBatchSize"]["MaxValue"] // INDEX_BATCH_SIZE)
    assert 2 * budget("SearchFunction") < search_timeout < 30
    assert (1 + endpoint_requests_per_batch) * budget("IndexFunction") < index_timeout
    assert 6 * index_timeout <= resources["IndexQueue"]["Properties"]["VisibilityTimeout"]


def test_the_api_key_comes_from_parameter_store_not_the_environment(source, transformed):
    variables = source["Resources"]["SearchFunction"]["Properties"]["Environment"]["Variables"]
    assert "VISUAL_SEARCH_API_KEY" not in variables
    assert variables["VISUAL_SEARCH_API_KEY_PARAMETER"] == {"Ref": "ApiKeyParameterName"}
    assert "ApiKey" not in source["Parameters"]
    read = [s for s in _role_statements(transformed, "SearchFunctionRole") if s.get("Sid") == "ReadApiKey"]
    assert read[0]["Action"] == "ssm:GetParameter" and "${ApiKeyParameterName}" in read[0]["Resource"]["Fn::Sub"]


def test_the_model_role_may_pull_a_custom_image_from_this_accounts_registry(transformed):
    pull = next(s for s in _role_statements(transformed, "EmbeddingModelRole") if s.get("Sid") == "PullImage")
    assert any("${AWS::AccountId}:repository/*" in r["Fn::Sub"] for r in pull["Resource"])
    assert any("${InferenceImageAccount}:repository/*" in r["Fn::Sub"] for r in pull["Resource"])


def test_no_ineffective_minimum_tls_version_on_the_default_certificate(source):
    certificate = source["Resources"]["FrontendDistribution"]["Properties"]["DistributionConfig"]["ViewerCertificate"]
    assert certificate == {"CloudFrontDefaultCertificate": True}


def test_the_lambda_layer_is_locked_with_exact_pins_and_no_unused_grpc():
    lines = [
        line.strip()
        for line in (REPO_ROOT / "layers" / "deps" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.]*", line) for line in lines), lines
    names = {line.split("==")[0].lower().replace("_", "-") for line in lines}
    direct = {
        re.split(r"[<>=!~ ]", line.strip())[0].lower()
        for line in (REPO_ROOT / "layers" / "deps" / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert direct <= names, "requirements.txt is not the lock of requirements.in"
    assert not {"grpcio", "opensearch-protobufs", "protobuf"} & names
    assert next(line for line in lines if line.startswith("opensearch-py==")).startswith("opensearch-py==2.")


def test_the_search_function_serves_the_catalogue_routes_it_handles(source):
    events = source["Resources"]["SearchFunction"]["Properties"]["Events"].values()
    routes = {(event["Properties"]["Method"], event["Properties"]["Path"]) for event in events}
    assert {("GET", "/items"), ("POST", "/items"), ("DELETE", "/items/{key+}"), ("GET", "/duplicates")} <= routes
    cors = source["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert "DELETE" in cors["AllowMethods"], "the catalogue page deletes items cross-origin"


def test_the_search_role_writes_objects_only_under_the_images_prefix(transformed):
    """POST /items puts and DELETE /items removes an object (the bucket's events index it); nothing wider."""
    statements = _role_statements(transformed, "SearchFunctionRole")
    writing = [s for s in statements if {"s3:PutObject", "s3:DeleteObject"} & set(_listed(s["Action"]))]
    assert len(writing) == 1
    assert sorted(_listed(writing[0]["Action"])) == ["s3:DeleteObject", "s3:PutObject"]
    assert _listed(writing[0]["Resource"]) == [{"Fn::Sub": "${ImagesBucket.Arn}/${ImagesPrefix}*"}]
    s3_actions = {action for s in statements for action in _listed(s["Action"]) if action.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"}
    variables = transformed["Resources"]["SearchFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["VISUAL_SEARCH_IMAGE_STORE"] == {"Fn::Sub": "s3://${ImagesBucket}/${ImagesPrefix}"}


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]
