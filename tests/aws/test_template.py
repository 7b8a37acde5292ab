"""template.yaml, transformed offline with samtranslator, and the invariants the deployment relies on."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aws_fixtures import REPO_ROOT

from visual_search.aws.handlers import INDEX_SETTINGS, REFIT_SETTINGS, SEARCH_SETTINGS
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


def test_opensearch_is_reachable_only_by_the_function_roles_and_the_optional_operator(transformed):
    domain = transformed["Resources"]["SearchDomain"]["Properties"]
    principals = [statement["Principal"]["AWS"] for statement in _domain_statements(transformed)]
    index_role, search_role, refit_role = (
        {"Fn::GetAtt": ["IndexFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["SearchFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["RefitFunctionRole", "Arn"]},
    )
    operator = {"Ref": "OpenSearchAdminPrincipal"}
    assert principals and all(principal in (index_role, search_role, refit_role, operator) for principal in principals)
    conditional = {
        s["Fn::If"][1]["Sid"]: s["Fn::If"][0] for s in domain["AccessPolicies"]["Statement"] if "Fn::If" in s
    }
    assert conditional == {
        "RefitFunctionReprojects": "LiveLearning",
        "SearchFunctionReadsLearningSums": "LiveLearning",
        "SearchFunctionAddsToLearningSums": "LiveLearning",
        "OperatorBackfills": "HasAdminPrincipal",
    }
    unconditional = [s for s in domain["AccessPolicies"]["Statement"] if "Fn::If" not in s]
    assert refit_role not in [s["Principal"]["AWS"] for s in unconditional]  # live learning off: no refit role
    assert index_role in principals and search_role in principals
    assert domain["EncryptionAtRestOptions"]["Enabled"] and domain["NodeToNodeEncryptionOptions"]["Enabled"]
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"]


def test_the_search_role_can_only_read_the_index(transformed):
    """POST is how OpenSearch writes (_bulk, _doc, _delete_by_query): the search function may POST only queries to
    the products index, and (live learning on) scripted updates of documents of its side index, nothing else."""
    statements = _role_statements(transformed, "SearchFunctionRole")
    statements += [
        s
        for s in _domain_statements(transformed)
        if s["Principal"]["AWS"] == {"Fn::GetAtt": ["SearchFunctionRole", "Arn"]}
    ]
    posting = [s for s in statements if "es:ESHttpPost" in s["Action"]]
    assert posting
    updates = []
    for statement in posting:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            text = json.dumps(resource)
            if text.endswith('${OpenSearchIndexName}-adaptation/_update/*"}'):
                updates.append(statement["Sid"])
                continue
            assert re.search(r"/(_search|_mget|_count)\"", text), f"search role may POST to {text}"
    assert sorted(updates) == ["AddToLearningSums", "SearchFunctionAddsToLearningSums"]
    assert not [s for s in statements if {"es:ESHttpPut", "es:ESHttpDelete"} & set(s["Action"])]


def test_live_learning_is_off_by_default_and_its_grants_and_refit_function_come_only_with_it(source, transformed):
    parameter = source["Parameters"]["LiveLearningEvery"]
    assert parameter["Default"] == 0 and parameter["MinValue"] == 0
    assert source["Conditions"]["LiveLearning"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "LiveLearningEvery"}, 0]}]}
    for name in ("RefitFunction", "RefitFunctionRole", "RefitFunctionLogGroup"):
        assert source["Resources"][name]["Condition"] == "LiveLearning", name
    role = transformed["Resources"]["SearchFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    conditional = {s["Fn::If"][1]["Sid"]: s["Fn::If"][0] for s in role["Statement"] if "Fn::If" in s}
    assert conditional["ReadLearningSums"] == conditional["AddToLearningSums"] == "LiveLearning"
    variables = source["Resources"]["SearchFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["VISUAL_SEARCH_ADAPT_LIVE_EVERY"] == {"Ref": "LiveLearningEvery"}
    assert variables["VISUAL_SEARCH_ADAPT_LIVE_CLIENT_SALT"] == {
        "Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]
    }


def test_the_refit_function_runs_alone_on_a_schedule_and_never_deletes(source, transformed):
    function = source["Resources"]["RefitFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == 1  # two refits at once would rewrite to two centres
    assert function["Timeout"] == 900
    (event,) = function["Events"].values()
    assert event["Type"] == "Schedule" and event["Properties"]["Schedule"].startswith("rate(")
    statements = _role_statements(transformed, "RefitFunctionRole")
    es_actions = {action for s in statements for action in s["Action"] if action.startswith("es:")}
    assert es_actions == {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"}
    assert "sagemaker:InvokeEndpoint" not in json.dumps(statements) and "s3:" not in json.dumps(statements)


def test_no_role_reaches_opensearch_beyond_the_products_index(transformed):
    """Every es: statement names the index (or its live-learning side index `<index>-adaptation`, and what is under
    them), never the domain's cluster APIs."""
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
    for function, wanted in (
        ("SearchFunction", SEARCH_SETTINGS),
        ("IndexFunction", INDEX_SETTINGS),
        ("RefitFunction", REFIT_SETTINGS),
    ):
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
        or (str(Path(sys.executable).parent / "sam") if (Path(sys.executable).parent / "sam").exists() else None)
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
    """(namespace, metric, dimensions) of a one-metric alarm; a metric-math alarm's first queried metric."""
    metric = alarm if "MetricName" in alarm else alarm["Metrics"][0]["MetricStat"]["Metric"]
    return metric["Namespace"], metric["MetricName"], {d["Name"]: d["Value"] for d in metric["Dimensions"]}


def test_alarms_watch_the_dead_letters_both_functions_the_api_and_the_cluster(transformed):
    watched = {_watched(alarm)[:2]: (alarm, _watched(alarm)[2]) for alarm in _alarms(transformed).values()}
    dead_letters, dimensions = watched[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    assert dimensions == {"QueueName": {"Fn::GetAtt": ["IndexDeadLetterQueue", "QueueName"]}}
    assert (dead_letters["ComparisonOperator"], dead_letters["Threshold"]) == ("GreaterThanThreshold", 0)
    lambda_alarms = {
        (_watched(a)[1], _watched(a)[2]["FunctionName"]["Ref"])
        for a in _alarms(transformed).values()
        if _watched(a)[0] == "AWS/Lambda"
    }
    assert lambda_alarms == {
        (metric, function) for metric in ("Errors", "Throttles") for function in ("IndexFunction", "SearchFunction")
    } | {("Errors", "RefitFunction")}
    assert transformed["Resources"]["RefitFunctionErrorsAlarm"]["Condition"] == "LiveLearning"
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


def test_the_api_keys_come_from_parameter_store_not_the_environment(source, transformed):
    """Two keys, two SecureStrings, each readable by the search role only when named (a conditional statement)."""
    variables = source["Resources"]["SearchFunction"]["Properties"]["Environment"]["Variables"]
    assert not {"VISUAL_SEARCH_API_KEY", "VISUAL_SEARCH_READ_API_KEY", "VISUAL_SEARCH_WRITE_API_KEY"} & set(variables)
    assert not [name for name in source["Parameters"] if name.endswith("ApiKey")]
    statements = transformed["Resources"]["SearchFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    conditional = {s["Fn::If"][0]: s["Fn::If"][1] for s in statements["Statement"] if "Fn::If" in s}
    for level, condition in (("Read", "HasReadApiKey"), ("Write", "HasWriteApiKey")):
        parameter = f"{level}ApiKeyParameterName"
        assert variables[f"VISUAL_SEARCH_{level.upper()}_API_KEY_PARAMETER"] == {"Ref": parameter}
        statement = conditional[condition]
        assert (
            statement["Action"] == "ssm:GetParameter"
            and f"parameter${{{parameter}}}" in statement["Resource"]["Fn::Sub"]
        )
        assert source["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
    assert source["Outputs"]["ApiKeyRequired"]["Value"]["Fn::If"][0] == "HasReadApiKey"


def test_the_model_role_pulls_only_the_default_images_repository_or_this_accounts_registry(transformed):
    pull = next(s for s in _role_statements(transformed, "EmbeddingModelRole") if s.get("Sid") == "PullImage")
    condition, default, custom = pull["Resource"]["Fn::If"]
    assert condition == "DefaultInferenceImage"
    assert default["Fn::Sub"].endswith(":${InferenceImageAccount}:repository/pytorch-inference")
    assert custom["Fn::Sub"].endswith(":${AWS::AccountId}:repository/*")


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


def test_the_search_role_writes_objects_only_under_the_images_prefix_and_shared_uploads(transformed):
    """POST /items puts and DELETE /items removes an object (the bucket's events index it); the shoppers' shared
    query photos live under shared-uploads/ (expired by the bucket's lifecycle); nothing wider."""
    statements = _role_statements(transformed, "SearchFunctionRole")
    writing = {
        json.dumps(_listed(s["Resource"])): sorted(_listed(s["Action"]))
        for s in statements
        if {"s3:PutObject", "s3:DeleteObject"} & set(_listed(s["Action"]))
    }
    assert writing == {
        json.dumps([{"Fn::Sub": "${ImagesBucket.Arn}/${ImagesPrefix}*"}]): ["s3:DeleteObject", "s3:PutObject"],
        json.dumps([{"Fn::Sub": "${ImagesBucket.Arn}/shared-uploads/*"}]): [
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:PutObject",
        ],
    }
    s3_actions = {action for s in statements for action in _listed(s["Action"]) if action.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"}
    variables = transformed["Resources"]["SearchFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["VISUAL_SEARCH_IMAGE_STORE"] == {"Fn::Sub": "s3://${ImagesBucket}/${ImagesPrefix}"}


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- issue 23: a stack that is safe to leave running


def _alarm_watching(transformed, namespace: str, metric: str) -> dict:
    (alarm,) = [a for a in _alarms(transformed).values() if _watched(a)[:2] == (namespace, metric)]
    return alarm


def test_the_5xx_alarm_is_a_rate_over_enough_requests_not_one_answer(transformed):
    """A fresh stack's first page view (one 503 index_not_ready) must not mail the operator."""
    alarm = _alarms(transformed)["Api5xxAlarm"]
    queries = {metric["Id"]: metric for metric in alarm["Metrics"]}
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in queries.values() if "MetricStat" in q} == {"5xx", "Count"}
    (expression,) = [q for q in queries.values() if "Expression" in q]
    assert expression["ReturnData"] is True and all(
        q.get("ReturnData") is False for q in queries.values() if q != expression
    )

    def rate(errors: float, requests: float) -> float:  # the expression, evaluated as CloudWatch does
        text = expression["Expression"]
        match = re.fullmatch(r"IF\(requests >= (\d+), 100 \* errors / requests, 0\)", text)
        assert match, text
        return 100 * errors / requests if requests >= int(match.group(1)) else 0

    assert rate(1, 1) <= alarm["Threshold"], "one 5xx of one request breaches"
    assert rate(2, 10) <= alarm["Threshold"], "a quiet stack's two cold-start errors breach"
    assert rate(10, 100) > alarm["Threshold"]
    assert alarm["DatapointsToAlarm"] >= 2 and alarm["EvaluationPeriods"] >= alarm["DatapointsToAlarm"]


def test_failed_index_events_are_alarmed_from_the_functions_own_metric(transformed):
    from visual_search.aws.index_metrics import DIMENSION, FAILED_EVENTS_METRIC, NAMESPACE

    alarm = _alarm_watching(transformed, NAMESPACE, FAILED_EVENTS_METRIC)
    assert _watched(alarm)[2] == {DIMENSION: {"Ref": "IndexFunction"}}
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == ("Sum", "GreaterThanThreshold", 0)
    # It must fire well before the dead-letter queue would (maxReceiveCount x visibility timeout, about 45 min).
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 15 * 60


def test_alarms_on_the_queue_age_the_endpoint_and_the_cluster(transformed):
    age = _alarm_watching(transformed, "AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert _watched(age)[2] == {"QueueName": {"Fn::GetAtt": ["IndexQueue", "QueueName"]}}
    assert age["Statistic"] == "Maximum" and 60 <= age["Threshold"] <= 3600
    endpoint = {"EndpointName": {"Fn::GetAtt": ["EmbeddingEndpoint", "EndpointName"]}, "VariantName": "main"}
    errors = _alarm_watching(transformed, "AWS/SageMaker", "Invocation5XXErrors")
    latency = _alarm_watching(transformed, "AWS/SageMaker", "ModelLatency")
    assert _watched(errors)[2] == _watched(latency)[2] == endpoint
    assert latency["Threshold"] >= 1_000_000, "ModelLatency is in microseconds"
    domain = {"DomainName": {"Ref": "SearchDomain"}, "ClientId": {"Ref": "AWS::AccountId"}}
    blocked = _alarm_watching(transformed, "AWS/ES", "ClusterIndexWritesBlocked")
    cpu = _alarm_watching(transformed, "AWS/ES", "CPUUtilization")
    assert _watched(blocked)[2] == _watched(cpu)[2] == domain
    assert (blocked["ComparisonOperator"], blocked["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert cpu["Threshold"] == 80 and cpu["DatapointsToAlarm"] == 3


def test_the_deploy_guide_counts_the_alarms_the_template_has(transformed):
    guide = (REPO_ROOT / "docs" / "DEPLOY.md").read_text()
    table = guide.split("## Alarms and visibility", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`(\w+Alarm)`", table))
    assert named == set(_alarms(transformed))
    assert f"{len(_alarms(transformed))} alarms" in guide


def test_everything_the_stack_makes_goes_with_it(source):
    """Layers are deleted (not retained) by `sam delete` and on each update; every log group is the stack's,
    with retention, the endpoint's included (created before the endpoint, so SageMaker uses it)."""
    resources = source["Resources"]
    for layer in ("CoreLayer", "DepsLayer"):
        assert resources[layer]["Properties"]["RetentionPolicy"] == "Delete"
    groups = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert all(group["RetentionInDays"] == {"Ref": "LogRetentionDays"} for group in groups.values())
    endpoint = resources["EmbeddingEndpoint"]
    assert endpoint["DependsOn"] == "EmbeddingEndpointLogGroup"
    name = endpoint["Properties"]["EndpointName"]["Fn::Sub"]
    assert groups["EmbeddingEndpointLogGroup"]["LogGroupName"] == {"Fn::Sub": f"/aws/sagemaker/Endpoints/{name}"}
    assert not [r for r in resources.values() if r.get("DeletionPolicy") == "Retain"]


def test_bucket_versioning_is_offered_and_shared_uploads_expire(source):
    bucket = source["Resources"]["ImagesBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {
        "Fn::If": ["ImagesVersioned", {"Status": "Enabled"}, {"Ref": "AWS::NoValue"}]
    }
    assert source["Parameters"]["ImagesBucketVersioning"]["Default"] == "Disabled"
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireSharedUploads"]["Prefix"] == "shared-uploads/"
    assert rules["ExpireSharedUploads"]["ExpirationInDays"] == {"Ref": "SharedUploadsExpiryDays"}
    assert source["Parameters"]["SharedUploadsExpiryDays"]["Default"] == 1
    noncurrent = rules["ExpireNoncurrentVersions"]
    assert noncurrent["Status"] == {"Fn::If": ["ImagesVersioned", "Enabled", "Disabled"]}
    assert noncurrent["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "NoncurrentVersionDays"}}


def test_outputs_give_the_dead_letter_queue_arn_the_redrive_command_takes(source):
    assert source["Outputs"]["IndexDeadLetterQueueArn"]["Value"] == {"Fn::GetAtt": ["IndexDeadLetterQueue", "Arn"]}
    guide = (REPO_ROOT / "docs" / "DEPLOY.md").read_text()
    assert 'start-message-move-task --source-arn "$(out IndexDeadLetterQueueArn)"' in guide


def test_the_ui_is_served_with_security_headers_and_a_strict_csp(source):
    behaviour = source["Resources"]["FrontendDistribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "FrontendSecurityHeaders"}
    config = source["Resources"]["FrontendSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
    headers = config["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] in (
        "no-referrer",
        "strict-origin-when-cross-origin",
        "same-origin",
    )
    csp = frontend_csp(source)
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp and "*" not in directives["script-src"] + directives["style-src"]


def frontend_csp(
    source, *, region: str = "us-east-1", bucket: str = "visual-search-images-123456789012-0123456789ab"
) -> str:
    """The CSP as CloudFront sends it for a stack in `region` whose images bucket is `bucket`."""
    policy = source["Resources"]["FrontendSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
    text, variables = policy["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    values = {"AWS::Region": region, "AWS::URLSuffix": "amazonaws.com"}
    api = variables["Api"]["Fn::Sub"]
    images_text = variables["Images"]["Fn::Sub"][0]
    for name, value in values.items():
        api = api.replace(f"${{{name}}}", value)
        images_text = images_text.replace(f"${{{name}}}", value)
    images_text = images_text.replace("${Bucket}", bucket)
    return " ".join(text.replace("${Api}", api).replace("${Images}", images_text).split())


def test_the_csps_image_hosts_are_where_presigned_urls_point(source, aws_env, monkeypatch):
    """Both host forms boto3 signs (the global one in us-east-1, the regional one elsewhere) are allowed."""
    from visual_search.stores.s3 import S3ImageStore

    bucket = "visual-search-images-123456789012-0123456789ab"
    for region in ("us-east-1", "eu-west-1"):
        monkeypatch.setenv("AWS_DEFAULT_REGION", region)
        monkeypatch.setenv("AWS_REGION", region)
        host = re.match(r"https://[^/]+", S3ImageStore(bucket).url_for("images/a.jpg")).group(0)
        directives = dict(
            d.strip().split(" ", 1) for d in frontend_csp(source, region=region, bucket=bucket).split(";")
        )
        assert host in directives["img-src"].split() and host in directives["connect-src"].split(), (region, host)


def test_the_csp_names_the_images_bucket_by_the_name_the_bucket_gets(source):
    derived = source["Resources"]["ImagesBucket"]["Properties"]["BucketName"]
    policy = source["Resources"]["FrontendSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
    images = policy["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"][1]["Images"]
    assert images["Fn::Sub"][1]["Bucket"] == derived


def test_the_index_is_created_with_the_replicas_parameter_and_one_node_has_none(source):
    variables = source["Resources"]["IndexFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["VISUAL_SEARCH_INDEX"]["Fn::Sub"].endswith(
        "/${OpenSearchIndexName}?replicas=${OpenSearchReplicas}"
    )
    assert source["Parameters"]["OpenSearchReplicas"]["Default"] == 0
    rule = source["Rules"]["OneNodeHasNoReplicas"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "OpenSearchInstanceCount"}, 1]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "OpenSearchReplicas"}, 0]}


def test_two_or_more_nodes_are_spread_over_zones(source):
    cluster = source["Resources"]["SearchDomain"]["Properties"]["ClusterConfig"]
    assert source["Conditions"]["OpenSearchMultiNode"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "OpenSearchInstanceCount"}, 1]}]
    }
    assert cluster["ZoneAwarenessEnabled"] == {"Fn::If": ["OpenSearchMultiNode", True, False]}
    condition, config, _none = cluster["ZoneAwarenessConfig"]["Fn::If"]
    assert condition == "OpenSearchMultiNode" and config == {
        "AvailabilityZoneCount": {"Ref": "OpenSearchAvailabilityZones"}
    }


def test_opensearch_runs_the_tested_version_behind_a_forward_secret_tls_policy(source):
    tested = re.search(r"^OPENSEARCH_VERSION=(\d+\.\d+)", (REPO_ROOT / "scripts" / "opensearch.sh").read_text(), re.M)
    assert source["Parameters"]["OpenSearchEngineVersion"]["Default"] == f"OpenSearch_{tested.group(1)}"
    policy = source["Resources"]["SearchDomain"]["Properties"]["DomainEndpointOptions"]["TLSSecurityPolicy"]
    assert "PFS" in policy and "TLS-1-2" in policy


def test_the_expensive_routes_are_throttled_and_search_concurrency_is_capped(source, transformed):
    routes = source["Resources"]["HttpApi"]["Properties"]["RouteSettings"]
    assert routes["POST /search"]["ThrottlingRateLimit"] == {"Ref": "SearchRateLimit"}
    assert routes["GET /duplicates"]["ThrottlingRateLimit"] == {"Ref": "DuplicatesRateLimit"}
    parameters = source["Parameters"]
    assert parameters["SearchRateLimit"]["Default"] < parameters["ApiRateLimit"]["Default"]
    assert parameters["DuplicatesRateLimit"]["Default"] < parameters["SearchRateLimit"]["Default"]
    stage = next(r["Properties"] for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage")
    assert set(stage["RouteSettings"]) == {"POST /search", "GET /duplicates"}, "SAM dropped the route settings"
    reserved = source["Resources"]["SearchFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {
        "Fn::If": ["HasSearchReservedConcurrency", {"Ref": "SearchReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert parameters["SearchReservedConcurrency"]["Default"] > 0


def test_an_upload_burst_leaves_endpoint_slots_for_searches(source):
    """Each index invocation makes one endpoint request at a time (a batch of at most 10 is one request), so the
    event source mapping's MaximumConcurrency bounds indexing's share of the serverless endpoint's slots."""
    parameters = source["Parameters"]
    assert parameters["IndexMaxConcurrency"]["Default"] < parameters["ServerlessMaxConcurrency"]["Default"]
    events = source["Resources"]["IndexFunction"]["Properties"]["Events"]["ImageEvents"]["Properties"]
    assert events["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "IndexMaxConcurrency"}


def test_both_queues_refuse_plain_http_and_only_the_index_queue_may_dead_letter(source):
    policies = [r["Properties"] for r in source["Resources"].values() if r["Type"] == "AWS::SQS::QueuePolicy"]
    for queue in ("IndexQueue", "IndexDeadLetterQueue"):
        (policy,) = [p for p in policies if p["Queues"] == [{"Ref": queue}]]
        (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert deny["Action"] == "sqs:*" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    allow = source["Resources"]["IndexDeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    queue_name = source["Resources"]["IndexQueue"]["Properties"]["QueueName"]["Fn::Sub"]
    assert allow["sourceQueueArns"] == [
        {"Fn::Sub": f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{queue_name}"}
    ]


def test_the_functions_read_only_the_images_prefix_the_manifest_and_thumbnails(transformed):
    for role in ("IndexFunctionRole", "SearchFunctionRole"):
        reads = [
            resource
            for s in _role_statements(transformed, role)
            if "s3:GetObject" in _listed(s["Action"])
            for resource in _listed(s["Resource"])
        ]
        allowed = {
            "${ImagesBucket.Arn}/${ImagesPrefix}*",
            "${ImagesBucket.Arn}/thumbnails/*",
            "${ImagesBucket.Arn}/shared-uploads/*",
            "${ImagesBucket.Arn}/${CatalogueManifestKey}",
        }
        assert reads and {r["Fn::Sub"] for r in reads} <= allowed, role
        assert {"Fn::Sub": "${ImagesBucket.Arn}/*"} not in reads


def test_sagemaker_assumes_the_model_role_only_for_this_account(source):
    (trust,) = source["Resources"]["EmbeddingModelRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    logs = [
        s
        for policy in source["Resources"]["EmbeddingModelRole"]["Properties"]["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
        if any(a.startswith("logs:") for a in _listed(s["Action"]))
    ]
    assert logs and all(s["Resource"] == {"Fn::GetAtt": ["EmbeddingEndpointLogGroup", "Arn"]} for s in logs)


def test_the_endpoint_runs_under_network_isolation(source):
    """The archive installs nothing at start (test_model_archive.py starts it with sockets blocked)."""
    assert source["Resources"]["EmbeddingModel"]["Properties"]["EnableNetworkIsolation"] is True


def test_the_search_function_routes_are_the_route_tables(source):
    """API Gateway routes exactly what api/routes.py declares for the Lambda front end (a `{name:path}` parameter
    is API Gateway's greedy `{key+}`): a route added to the table without its event, or the reverse, fails here."""
    import re

    from visual_search.api.routes import ROUTES

    events = source["Resources"]["SearchFunction"]["Properties"]["Events"].values()
    deployed = {(event["Properties"]["Method"], event["Properties"]["Path"]) for event in events}
    declared = {
        (route.method, re.sub(r"\{\w+:path\}", "{key+}", route.path)) for route in ROUTES if not route.local_only
    }
    assert deployed == declared
