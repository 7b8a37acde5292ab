"""The deployed UI's Content-Security-Policy (template.yaml, FrontendSecurityHeaders) holds for the real UI in
Debian's Chromium: frontend/ served with that header from its own origin, as CloudFront serves it, with
config.json naming the API on another origin (the real server over the demo catalogue, standing in for the HTTP
API, whose /images routes stand in for the presigned S3 URLs). Searching, opening a result, a region search of
it and the catalogue page run without one CSP violation; the same pages under a CSP missing one source the UI
needs do report one, so the listener is shown to hear them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from live_server import free_port, serving
from shop import DEMO, DESKTOP, QUERY_KEY, browser, demo_search_service  # noqa: F401 - a fixture

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[2]
FRONTEND = REPO_ROOT / "frontend"


# Predicates as functions: a string expression is eval'd in the page, which this CSP forbids.
FIRST_IMAGES_LOADED = """selector => {
    const images = [...document.querySelectorAll(selector)].slice(0, 3);
    return images.length > 0 && images.every(image => image.complete && image.naturalWidth > 0);
}"""


def deployed_csp(api_origin: str, images_origin: str) -> str:
    """template.yaml's CSP with its API and images-bucket sources replaced by the given local origins."""
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.loads((REPO_ROOT / "template.yaml").read_text())
    policy = template["Resources"]["FrontendSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
    text, _variables = policy["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    assert set(re.findall(r"\$\{(\w+)\}", text)) == {"Api", "Images"}, "the CSP names a source this test does not map"
    return " ".join(text.replace("${Api}", api_origin).replace("${Images}", images_origin).split())


def frontend_app(csp: str, api_origin: str) -> FastAPI:
    """frontend/ as CloudFront serves it: every response with the CSP; config.json pointing at the API. Result
    images ("/images/<key>" locally) are redirected to the API origin, as a presigned URL leaves the UI's."""
    app = FastAPI()

    @app.middleware("http")
    async def add_csp(request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = csp
        return response

    @app.get("/config.json")
    def config():
        return JSONResponse({"apiBase": api_origin, "apiKeyRequired": False})

    @app.get("/images/{key:path}")
    def image(key: str, w: int | None = None):
        return RedirectResponse(f"{api_origin}/images/{key}" + (f"?w={w}" if w else ""), status_code=302)

    app.mount("/", StaticFiles(directory=FRONTEND, html=True))
    return app


@pytest.fixture(scope="module")
def api_origin(tmp_path_factory):
    frontend_port = free_port()
    settings = Settings(
        index=str(tmp_path_factory.mktemp("unused")),
        cache_dir=str(tmp_path_factory.mktemp("cache")),
        cors_origins=(f"http://127.0.0.1:{frontend_port}",),
    )
    with serving(create_app(settings, search_service=demo_search_service())) as url:
        yield url, frontend_port


def csp_messages(browser, csp: str, api_origin: str, frontend_port: int, *, whole_visit: bool = True) -> list[str]:  # noqa: F811
    """Every console message about the CSP while a shopper searches, opens a result and opens the catalogue page,
    with frontend/ served under `csp`. `whole_visit` False stops after the search is sent (a CSP that breaks the
    page leaves nothing to wait for)."""
    messages: list[str] = []
    with serving(frontend_app(csp, api_origin), port=frontend_port) as base_url:
        context = browser.new_context(**DESKTOP)
        page = context.new_page()
        page.on("console", lambda message: messages.append(message.text))
        page.on("pageerror", lambda error: messages.append(str(error)))
        try:
            page.goto(base_url)
            page.wait_for_selector("body[data-ready=true]")
            if not whole_visit:
                page.set_input_files("#file-input", str(DEMO / "images" / QUERY_KEY))
                for _ in range(120):  # until the browser reports a violation, or 30 s
                    if any("Content Security Policy" in message for message in messages):
                        break
                    page.wait_for_timeout(250)
            else:
                with page.expect_response("**/search") as answer:
                    page.set_input_files("#file-input", str(DEMO / "images" / QUERY_KEY))
                assert answer.value.status == 200
                # (the first cards' images: the rest load lazily, when scrolled to)
                page.wait_for_function(FIRST_IMAGES_LOADED, arg="#results .result img")
                page.locator("#results .result .result-open").first.click()
                page.wait_for_timeout(1500)
                page.goto(f"{base_url}/catalogue.html")
                page.locator("#items .item-open img").first.wait_for()
                page.wait_for_function(FIRST_IMAGES_LOADED, arg="#items .item-open img")
        finally:
            context.close()
    return [message for message in messages if "Content Security Policy" in message]


def test_the_ui_runs_under_the_deployed_csp_without_a_violation(browser, api_origin):  # noqa: F811
    origin, frontend_port = api_origin
    csp = deployed_csp(origin, origin)
    assert "'unsafe-inline'" not in csp and "default-src 'none'" in csp
    assert csp_messages(browser, csp, origin, frontend_port) == []


@pytest.mark.parametrize(
    "missing, source",
    [("img-src", "{api}"), ("connect-src", "{api}"), ("style-src", "'self'")],
    ids=["images", "api-calls", "stylesheets"],
)
def test_a_csp_missing_a_source_the_ui_needs_is_reported(browser, api_origin, missing, source):  # noqa: F811
    origin, frontend_port = api_origin
    directives = [d.strip() for d in deployed_csp(origin, origin).split(";")]
    drop = source.format(api=origin)
    weakened = "; ".join(
        " ".join(part for part in d.split(" ") if part != drop) if d.startswith(missing + " ") else d
        for d in directives
    )
    assert weakened != "; ".join(directives)
    found = csp_messages(browser, weakened, origin, frontend_port, whole_visit=False)
    assert found, f"no violation reported with {missing} lacking {drop}: the listener hears nothing"
