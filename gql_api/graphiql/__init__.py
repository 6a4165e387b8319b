"""GraphiQL served entirely by this service, so that it works without internet access.

strawberry's bundled page loads React, GraphiQL, the explorer plugin and js-cookie from unpkg.com.
Here the same files (same sha384, fetched from the npm registry by
`scripts/fetch_graphiql_assets.py`, licences alongside) live in `static/` and are served under
`/graphiql-assets/`; the page (`graphiql.html`, strawberry's with local asset tags) points at them
and its Content-Security-Policy allows no other origin. Someone with nothing saved sees
DEFAULT_DOCUMENT in the editor; headers (a session token) are never kept in the browser's storage.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from functools import lru_cache
from pathlib import Path

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gql_api.graphiql.assets import ASSETS, ASSETS_PATH, LICENCES, STATIC_DIR, Asset
from gql_api.graphiql.default_document import DEFAULT_DOCUMENT

__all__ = [
    "ASSETS",
    "ASSETS_PATH",
    "DEFAULT_DOCUMENT",
    "LICENCES",
    "STATIC_DIR",
    "graphiql_assets_app",
    "graphiql_html",
    "graphiql_response",
]

_TEMPLATE = Path(__file__).resolve().parent / "graphiql.html"
_HEAD_MARKER = "<!-- graphiql-assets:head -->"
_BODY_MARKER = "<!-- graphiql-assets:body -->"
_DOCUMENT_MARKER = '/* graphiql:default-document */ ""'
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
# The assets never change under a URL: it carries a piece of the file's hash.
_ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"


def asset_url(asset: Asset) -> str:
    version = asset.integrity.removeprefix("sha384-")[:16]
    version = version.replace("+", "-").replace("/", "_")
    return f"{ASSETS_PATH}/{asset.file}?v={version}"


def _tag(asset: Asset) -> str:
    url = html.escape(asset_url(asset))
    if asset.kind == "style":
        return f'<link rel="stylesheet" href="{url}" integrity="{asset.integrity}" />'
    return f'<script src="{url}" integrity="{asset.integrity}"></script>'


def _tags(place: str) -> str:
    return "\n    ".join(_tag(a) for a in ASSETS if a.place == place)


@lru_cache(maxsize=1)
def graphiql_html() -> str:
    """The GraphiQL page, every script and stylesheet from this service."""
    page = _TEMPLATE.read_text(encoding="utf-8")
    if any(marker not in page for marker in (_HEAD_MARKER, _BODY_MARKER, _DOCUMENT_MARKER)):
        raise RuntimeError(f"{_TEMPLATE} lacks its markers")
    return (
        page.replace(_HEAD_MARKER, _tags("head"))
        .replace(_BODY_MARKER, _tags("body"))
        .replace(_DOCUMENT_MARKER, _js_string(DEFAULT_DOCUMENT))
    )


def _js_string(text: str) -> str:
    """`text` as a JavaScript string literal that cannot end the <script> it stands in."""
    return json.dumps(text).replace("<", "\\u003c")


@lru_cache(maxsize=1)
def content_security_policy() -> str:
    """Only this origin (and data: for the inline favicon and fonts); the inline script by hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(graphiql_html())
    )
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {hashes}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def graphiql_response() -> Response:
    return HTMLResponse(
        graphiql_html(),
        headers={
            "Content-Security-Policy": content_security_policy(),
            "Cache-Control": "no-cache",
        },
    )


class _AssetFiles(StaticFiles):
    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = _ASSET_CACHE_CONTROL
        return response


def graphiql_assets_app() -> StaticFiles:
    """The ASGI app that serves `static/`, to mount at ASSETS_PATH."""
    return _AssetFiles(directory=STATIC_DIR)
