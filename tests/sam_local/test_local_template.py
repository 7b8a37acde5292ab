"""The x86_64 copy of template.yaml that `sam build` builds for `sam local` (no Docker needed for these)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

REPO_ROOT = Path(__file__).resolve().parents[2]


def _module():
    path = REPO_ROOT / "scripts" / "sam_local" / "local_template.py"
    spec = importlib.util.spec_from_file_location("local_template", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


local_template = _module()


@pytest.fixture(scope="module")
def local() -> dict:
    text = local_template.local_template(
        (REPO_ROOT / "template.yaml").read_text(), "..", "http://127.0.0.1:8080,http://localhost:8080"
    )
    return yaml_parse(text)


def test_functions_and_layers_are_x86_64_and_the_deployed_template_stays_arm64(local):
    assert local["Globals"]["Function"]["Architectures"] == ["x86_64"]
    for layer in ("CoreLayer", "DepsLayer"):
        assert local["Resources"][layer]["Properties"]["CompatibleArchitectures"] == ["x86_64"]
        assert local["Resources"][layer]["Metadata"]["BuildArchitecture"] == "x86_64"
    deployed = yaml_parse((REPO_ROOT / "template.yaml").read_text())
    assert deployed["Globals"]["Function"]["Architectures"] == ["arm64"]


def test_code_paths_point_back_at_the_checkout(local):
    for name, resource in local["Resources"].items():
        path = resource.get("Properties", {}).get("CodeUri") or resource.get("Properties", {}).get("ContentUri")
        if isinstance(path, str):
            assert path.startswith("../") and (REPO_ROOT / ".aws-sam" / path).resolve().is_dir(), (name, path)


def test_both_functions_declare_the_endpoint_variables_and_the_api_names_the_local_ui(local):
    for function in ("IndexFunction", "SearchFunction"):
        variables = local["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["AWS_ENDPOINT_URL_S3"] == "" and variables["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == ""
        assert "VISUAL_SEARCH_INDEX" in variables
    cors = local["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["http://127.0.0.1:8080", "http://localhost:8080"]


def test_a_template_of_another_shape_fails_loudly_instead_of_building_arm64_code():
    text = (REPO_ROOT / "template.yaml").read_text()
    reshaped = re.sub(r"Architectures: \[arm64\]", "Architectures:\n      - arm64", text)
    with pytest.raises(ValueError, match="arm64"):
        local_template.local_template(reshaped, "..")


def test_the_http_api_lists_the_binary_media_types_start_api_must_base64_encode(local):
    body = local["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]
    assert body["paths"] == {}, "the routes stay the functions' events"
    binary = body["x-amazon-apigateway-binary-media-types"]
    assert {"multipart/form-data", "image/jpeg", "image/png", "image/webp"} <= set(binary)
    assert "application/json" not in binary and "*/*" not in binary, "JSON bodies stay text, as on API Gateway"
    deployed = yaml_parse((REPO_ROOT / "template.yaml").read_text())
    assert "DefinitionBody" not in deployed["Resources"]["HttpApi"]["Properties"]
