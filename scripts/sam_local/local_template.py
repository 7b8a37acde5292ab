"""Writes the template that `sam build` builds for local emulation: template.yaml with its functions and layers
on x86_64 (no arm64 Python 3.12 image can be had offline, and a laptop emulates arm64 slowly), the code paths
pointing back at the checkout, the service endpoints declared as (empty) function variables, the HTTP API's
CORS origins spelled out, and the HTTP API given an OpenAPI body that only lists binary media types.

Why declare them: `sam local` passes a function only the variables its template declares, so without them
`--env-vars` could not point boto3 at the local stand-ins (AWS_ENDPOINT_URL_S3, ..._SAGEMAKER_RUNTIME) nor give
SearchFunction the local write key (VISUAL_SEARCH_WRITE_API_KEY).
Why spell out the origins: the deployed list names the CloudFront domain, which only exists once deployed, and
`sam local start-api` fails on an origin it cannot resolve (a TypeError). Locally the UI is served from
SAM_LOCAL_UI_ORIGINS (comma-separated; default http://127.0.0.1:8080,http://localhost:8080).
Why the media types: API Gateway's HTTP API hands a function every binary body base64-encoded, while
`sam local start-api` encodes only the types an OpenAPI body lists and answers 502 to any other binary body, so
a photo upload (POST /search with image/*, POST /items with multipart/form-data) could not be tried locally.
template.yaml itself stays as deployed (arm64, no endpoint variables); this copy lives under .aws-sam/.

    python scripts/sam_local/local_template.py [TEMPLATE] [OUTPUT]
    (defaults: template.yaml, .aws-sam/template.x86_64.yaml; scripts/sam-local.sh passes its own OUTPUT)
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The stand-ins' endpoints, and the local write key (on AWS it comes from an SSM SecureString, never the environment).
LOCAL_ONLY_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "VISUAL_SEARCH_WRITE_API_KEY")
DEFAULT_UI_ORIGINS = "http://127.0.0.1:8080,http://localhost:8080"

_ARCHITECTURE = re.compile(r"^([ \t]*(?:Architectures|CompatibleArchitectures):\s*)\[\s*arm64\s*\]", re.MULTILINE)
_BUILD_ARCHITECTURE = re.compile(r"^([ \t]*BuildArchitecture:\s*)arm64[ \t]*$", re.MULTILINE)
_CODE_PATH = re.compile(r"^([ \t]*(?:CodeUri|ContentUri):\s*)(\S+)[ \t]*$", re.MULTILINE)
_FUNCTION_VARIABLES = re.compile(r"^([ \t]*)Variables:\s*\n(?=\s+VISUAL_SEARCH_)", re.MULTILINE)
# The HTTP API's AllowOrigins: a block list, comments allowed between its items (the bucket's is AllowedOrigins).
_API_ORIGINS = re.compile(r"^([ \t]*)AllowOrigins:[ \t]*\n(?:\1[ \t]+(?:- |#).*\n)+", re.MULTILINE)
_HTTP_API_PROPERTIES = re.compile(r"^([ \t]*)Type: AWS::Serverless::HttpApi[ \t]*\n\1Properties:[ \t]*\n", re.MULTILINE)
# The bodies API Gateway's HTTP API base64-encodes for the function (every non-text body does; SAM's start-api
# encodes only the media types an API's OpenAPI document lists, and fails on any other binary body with a 502).
BINARY_MEDIA_TYPES = (
    "multipart/form-data",
    "application/octet-stream",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/tiff",
)


def local_template(text: str, relative_root: str, ui_origins: str = DEFAULT_UI_ORIGINS) -> str:
    """template.yaml's text, rewritten for local emulation; raises if the template's shape was not recognised,
    so a changed template fails loudly here rather than building arm64 code that cannot run."""
    text, architectures = _ARCHITECTURE.subn(r"\1[x86_64]", text)
    text, build_architectures = _BUILD_ARCHITECTURE.subn(r"\1x86_64", text)
    text, code_paths = _CODE_PATH.subn(lambda m: m.group(1) + _rebase(m.group(2), relative_root), text)
    text, function_environments = _FUNCTION_VARIABLES.subn(_declare_local_variables, text)
    origins = ", ".join(f'"{origin.strip()}"' for origin in ui_origins.split(",") if origin.strip())
    text, api_origins = _API_ORIGINS.subn(lambda m: f"{m.group(1)}AllowOrigins: [{origins}]\n", text)
    text, http_apis = _HTTP_API_PROPERTIES.subn(_binary_media_types, text)
    if "arm64" in text:
        raise ValueError("template.yaml names arm64 in a form this script does not rewrite; update local_template.py")
    if not (architectures and build_architectures and code_paths and function_environments and api_origins):
        raise ValueError(
            "template.yaml no longer has the Architectures/BuildArchitecture/CodeUri/Variables/"
            "AllowOrigins this script rewrites; update local_template.py"
        )
    if http_apis != 1 or text.count("DefinitionBody") != 1 or "DefinitionUri" in text:
        raise ValueError("template.yaml's HttpApi is not the one without an OpenAPI body this script extends")
    return text


def _rebase(path: str, relative_root: str) -> str:
    return path if path.startswith(("s3://", "/")) else f"{relative_root}/{path}"


def _binary_media_types(match: re.Match) -> str:
    """A minimal OpenAPI body whose only content is the binary media types (the routes stay the functions' events)."""
    indent = match.group(1) + "  "
    types = ", ".join(f'"{media_type}"' for media_type in BINARY_MEDIA_TYPES)
    body = (
        f"{indent}DefinitionBody:\n"
        f'{indent}  openapi: "3.0.1"\n'
        f"{indent}  info: {{title: local, version: '1.0'}}\n"
        f"{indent}  paths: {{}}\n"
        f"{indent}  x-amazon-apigateway-binary-media-types: [{types}]\n"
    )
    return match.group(0) + body


def _declare_local_variables(match: re.Match) -> str:
    indent = match.group(1) + "  "
    declared = "".join(f'{indent}{name}: ""\n' for name in LOCAL_ONLY_VARIABLES)
    return f"{match.group(0)}{declared}"


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else REPO / "template.yaml"
    output = Path(argv[2]) if len(argv) > 2 else REPO / ".aws-sam" / "template.x86_64.yaml"
    output.parent.mkdir(parents=True, exist_ok=True)
    relative_root = os.path.relpath(source.resolve().parent, output.resolve().parent)
    ui_origins = os.environ.get("SAM_LOCAL_UI_ORIGINS") or DEFAULT_UI_ORIGINS
    output.write_text(local_template(source.read_text(), relative_root, ui_origins))
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
