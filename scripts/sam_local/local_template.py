"""Writes the template that `sam build` builds for local emulation: template.yaml with its functions and layers
on x86_64 (no arm64 Python 3.12 image can be had offline, and a laptop emulates arm64 slowly), the code paths
pointing back at the checkout, the service endpoints declared as (empty) function variables, and the HTTP API's
CORS origins spelled out.

Why declare them: `sam local` passes a function only the variables its template declares, so without them
`--env-vars` could not point boto3 at the local stand-ins (AWS_ENDPOINT_URL_S3, ..._SAGEMAKER_RUNTIME) nor give
SearchFunction the local write key (VISUAL_SEARCH_WRITE_API_KEY).
Why spell out the origins: the deployed list names the CloudFront domain, which only exists once deployed, and
`sam local start-api` fails on an origin it cannot resolve (a TypeError). Locally the UI is served from
SAM_LOCAL_UI_ORIGINS (comma-separated; default http://127.0.0.1:8080,http://localhost:8080).
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


def local_template(text: str, relative_root: str, ui_origins: str = DEFAULT_UI_ORIGINS) -> str:
    """template.yaml's text, rewritten for local emulation; raises if the template's shape was not recognised,
    so a changed template fails loudly here rather than building arm64 code that cannot run."""
    text, architectures = _ARCHITECTURE.subn(r"\1[x86_64]", text)
    text, build_architectures = _BUILD_ARCHITECTURE.subn(r"\1x86_64", text)
    text, code_paths = _CODE_PATH.subn(lambda m: m.group(1) + _rebase(m.group(2), relative_root), text)
    text, function_environments = _FUNCTION_VARIABLES.subn(_declare_local_variables, text)
    origins = ", ".join(f'"{origin.strip()}"' for origin in ui_origins.split(",") if origin.strip())
    text, api_origins = _API_ORIGINS.subn(lambda m: f"{m.group(1)}AllowOrigins: [{origins}]\n", text)
    if "arm64" in text:
        raise ValueError("template.yaml names arm64 in a form this script does not rewrite; update local_template.py")
    if not (architectures and build_architectures and code_paths and function_environments and api_origins):
        raise ValueError(
            "template.yaml no longer has the Architectures/BuildArchitecture/CodeUri/Variables/"
            "AllowOrigins this script rewrites; update local_template.py"
        )
    return text


def _rebase(path: str, relative_root: str) -> str:
    return path if path.startswith(("s3://", "/")) else f"{relative_root}/{path}"


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
