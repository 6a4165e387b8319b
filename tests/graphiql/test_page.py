"""The GraphiQL page over HTTP: every asset from this service, none from another host; headers
never kept in the browser; a default document that is valid against the schema served."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from graphql import OperationDefinitionNode, OperationType, parse, validate

from gql_api.app import create_app
from gql_api.graphiql import ASSETS, ASSETS_PATH, DEFAULT_DOCUMENT, LICENCES, STATIC_DIR
from gql_api.schema import build_schema
from gql_api.settings import Settings
from tests.conftest import make_settings

HTML = {"Accept": "text/html"}
ROOT = Path(__file__).resolve().parents[2]
# An XML namespace name in the inline SVG favicon (a data: URL): an identifier, never fetched.
NOT_FETCHED = {"http://www.w3.org/2000/svg"}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href"):
            value = attributes.get(name)
            if value is not None:
                self.refs.append((tag, value, attributes))


def _refs(page: str) -> list[tuple[str, str, dict[str, str | None]]]:
    parser = _Refs()
    parser.feed(page)
    return parser.refs


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


async def _page(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response


async def test_page_refers_to_no_other_host(client: httpx.AsyncClient) -> None:
    page = (await _page(client)).text
    refs = _refs(page)
    assert len([r for r in refs if r[0] in ("script", "link")]) >= len(ASSETS)
    for tag, value, _ in refs:
        parts = urlsplit(value)
        assert parts.scheme in ("", "data"), f"<{tag}> refers to {value[:80]}"
        assert not parts.netloc, f"<{tag}> refers to another host: {value[:80]}"
    # Nor anywhere else in the page, inline script included.
    urls = set(re.findall(r"\b(?:https?|wss?)://[^\s\"'<>`)%]+", page))
    assert urls <= NOT_FETCHED
    assert "unpkg" not in page
    assert "cdn" not in page.lower()


async def test_every_asset_is_served_and_matches_its_integrity(client: httpx.AsyncClient) -> None:
    page = (await _page(client)).text
    tags = [
        (value, attrs)
        for tag, value, attrs in _refs(page)
        if tag == "script" or (tag == "link" and attrs.get("rel") == "stylesheet")
    ]
    assert {urlsplit(value).path for value, _ in tags} == {
        f"{ASSETS_PATH}/{asset.file}" for asset in ASSETS
    }
    for value, attrs in tags:
        response = await client.get(value)
        assert response.status_code == 200, value
        expected_type = "text/css" if value.split("?")[0].endswith(".css") else "javascript"
        assert expected_type in response.headers["content-type"]
        assert attrs.get("integrity") == _sri(response.content), value
        assert "max-age" in response.headers["cache-control"]
    for licence in LICENCES:
        response = await client.get(f"{ASSETS_PATH}/{licence.file}")
        assert response.status_code == 200
        assert b"Permission is hereby granted" in response.content


async def test_content_security_policy_allows_only_this_origin(
    client: httpx.AsyncClient,
) -> None:
    policy = (await _page(client)).headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert directives["script-src"].startswith("'self' 'sha256-")
    assert "http" not in policy and "*" not in policy


async def test_the_page_keeps_the_headers_editor_and_uses_this_endpoint(
    client: httpx.AsyncClient,
) -> None:
    page = (await _page(client)).text
    assert "isHeadersEditorEnabled: true" in page
    assert 'window.location.href.split("?")[0]' in page


async def test_the_page_never_persists_headers(client: httpx.AsyncClient) -> None:
    """GraphiQL's option; tests/graphiql/test_browser.py checks the browser's storage itself."""
    page = (await _page(client)).text
    assert "shouldPersistHeaders: false" in page
    assert "shouldPersistHeaders: true" not in page
    assert "storage: storage" in page  # the storage that keeps headers out of the history


async def test_the_page_carries_the_default_document(client: httpx.AsyncClient) -> None:
    page = (await _page(client)).text
    literal = re.search(r"const DEFAULT_DOCUMENT = (\"(?:[^\"\\]|\\.)*\");", page)
    assert literal is not None
    assert json.loads(literal.group(1)) == DEFAULT_DOCUMENT
    assert "defaultQuery: DEFAULT_DOCUMENT" in page


def _indented_examples(document: str) -> list[str]:
    """The examples in the document's comments: runs of comment lines indented 6 spaces."""
    examples: list[list[str]] = []
    previous = False
    for line in document.splitlines():
        example = line.startswith("#      ")
        if example:
            if not previous:
                examples.append([])
            examples[-1].append(line.removeprefix("#      "))
        previous = example
    return ["\n".join(lines) for lines in examples]


def test_the_default_document_is_the_dashboard_and_valid(settings: Settings) -> None:
    schema = build_schema(settings)._schema
    document = parse(DEFAULT_DOCUMENT)
    assert validate(schema, document) == []
    # One query, so that Ctrl-Enter runs it with nothing to choose.
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert [(o.operation, o.name and o.name.value) for o in operations] == [
        (OperationType.QUERY, "Dashboard")
    ]
    for field in ("viewer", "merchant", "stores", "channels", "webhookSettings"):
        assert re.search(rf"^\s+{field}\b", DEFAULT_DOCUMENT, re.MULTILINE), field


def test_the_default_documents_sign_in_steps_are_valid(settings: Settings) -> None:
    """The comments show how to get a token and where to put it: the sign-up mutation is
    valid against the schema, the log-in mutation exists, the header is JSON."""
    schema = build_schema(settings)._schema
    sign_up, header, catalog = _indented_examples(DEFAULT_DOCUMENT)
    assert "merchantSignUp" in sign_up
    assert validate(schema, parse(sign_up)) == []
    assert validate(schema, parse(catalog)) == []
    assert json.loads(header) == {"Authorization": "Bearer pos_…"}
    mutations = schema.mutation_type
    assert mutations is not None
    assert {"merchantSignUp", "sessionCreate"} <= set(mutations.fields)
    assert "sessionCreate(input: {email:" in DEFAULT_DOCUMENT


def test_static_files_match_their_integrity_and_strawberrys_page() -> None:
    for asset in ASSETS:
        assert _sri((STATIC_DIR / asset.file).read_bytes()) == asset.integrity, asset.file
    for licence in LICENCES:
        assert (STATIC_DIR / licence.file).is_file()
    spec = importlib.util.find_spec("strawberry")
    assert spec is not None and spec.origin is not None
    strawberry_page = (Path(spec.origin).parent / "static" / "graphiql.html").read_text()
    assert {a.integrity for a in ASSETS} <= set(re.findall(r'integrity="([^"]+)"', strawberry_page))


def test_fetch_script_check_mode_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fetch_graphiql_assets.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        {"graphiql_enabled": False},
        {
            "app_env": "production",
            "argon2_memory_kib": 19456,
            "argon2_time_cost": 2,
            "metrics_token": "metrics-token-for-the-tests-0123456789",
        },
    ],
    ids=["GRAPHIQL_ENABLED=false", "APP_ENV=production"],
)
async def test_graphiql_off(database_url: str, overrides: dict[str, object]) -> None:
    settings = make_settings(database_url, **overrides)
    assert not settings.graphiql_on
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get("/graphql", headers=HTML)
            assert response.status_code == 404
            assert "GraphiQL" not in response.text
            asset = await http.get(f"{ASSETS_PATH}/{ASSETS[0].file}")
            assert asset.status_code == 404
            # The API itself still answers.
            api = await http.post("/graphql", json={"query": "{ __typename }"})
            assert api.json() == {"data": {"__typename": "Query"}}
    finally:
        await app.state.app_state.engine.dispose()
