"""Who may read the metrics: on a listener of their own (METRICS_PORT) or behind a bearer token
(METRICS_TOKEN), one of which production requires; development keeps /metrics open.

The listener is a small threaded WSGI server (prometheus_client's) started with the app and
stopped with it, so it serves the registry of this very app, under any ASGI server. Under
`serve --workers N` the supervising process runs it instead, reading what every worker wrote
(gql_api.metrics, multiprocess mode), since N workers cannot all listen on one port.
"""

from __future__ import annotations

import hmac
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gql_api.metrics import Metrics
from gql_api.settings import Settings

_UNAUTHORIZED = b"Metrics need Authorization: Bearer <METRICS_TOKEN>.\n"
_CHALLENGE = 'Bearer realm="metrics"'

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `token`, compared in constant time."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _token(settings: Settings) -> str | None:
    return settings.metrics_token.get_secret_value() if settings.metrics_token else None


def metrics_routes(settings: Settings, metrics: Metrics) -> list[Route]:
    """/metrics on the API's port, unless the metrics have a listener of their own."""
    if settings.metrics_port is not None:
        return []
    token = _token(settings)

    async def endpoint(request: Request) -> Response:
        if token is not None and not bearer_matches(request.headers.get("authorization"), token):
            return Response(_UNAUTHORIZED, 401, {"WWW-Authenticate": _CHALLENGE}, "text/plain")
        return Response(metrics.render(), media_type=metrics.content_type)

    return [Route("/metrics", endpoint, methods=["GET"])]


def _guarded(app: WsgiApp, token: str | None) -> WsgiApp:
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if token is not None and not bearer_matches(environ.get("HTTP_AUTHORIZATION"), token):
            headers = [("WWW-Authenticate", _CHALLENGE), ("Content-Type", "text/plain")]
            start_response("401 Unauthorized", headers)
            return [_UNAUTHORIZED]
        return app(environ, start_response)

    return guarded


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No plain-text line per scrape on stderr (the logs are JSON)."""


@contextmanager
def metrics_listener(settings: Settings, registry: CollectorRegistry) -> Iterator[None]:
    """Serves `registry` on METRICS_HOST:METRICS_PORT (if set) while the block runs."""
    if settings.metrics_port is None:
        yield
        return
    app = _guarded(make_wsgi_app(registry), _token(settings))
    host = settings.metrics_host
    family = socket.getaddrinfo(
        host, settings.metrics_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0][0]
    server_class = type("MetricsServer", (ThreadingWSGIServer,), {"address_family": family})
    server: WSGIServer = make_server(
        host, settings.metrics_port, app, server_class, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
