"""One JSON access-log line per request, and the request counters: never variables or bodies."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql_api.caller import Caller
from gql_api.client_address import client_address
from gql_api.metrics import OPERATION_KEY, OTHER, OUTCOME_KEY, ROOT_FIELD_KEY, Metrics

logger = logging.getLogger("gql_api.access")
CALLER_KEY = "gql_api.caller"  # set by gql_api.app once the caller is known


class BodyTooLargeError(Exception):
    """The body passed MAX_REQUEST_BYTES while being read; gql_api.app answers it with 413."""


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BodyTooLargeError:
            status = 413  # answered outside this middleware: not a server error
            raise
        finally:
            self._log(scope, status, time.perf_counter() - started)

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        path = scope.get("path", "")
        caller = scope.get(CALLER_KEY)
        kind = caller.principal.kind.value if isinstance(caller, Caller) else "anonymous"
        if status == 401:
            kind = "refused"
        codes: list[str] = scope.get(OUTCOME_KEY) or []
        outcome = _outcome(status, codes)
        operation = root_field = None
        if path == "/graphql" and scope.get("method") == "POST":
            operation = scope.get(OPERATION_KEY)
            root_field = scope.get(ROOT_FIELD_KEY) or OTHER
            self.metrics.requests.labels(operation=root_field, outcome=outcome).inc()
            self.metrics.latency.labels(operation=root_field).observe(seconds)
            for code in codes:
                self.metrics.errors.labels(code=code).inc()
            if status >= 400 and not codes:
                self.metrics.errors.labels(code=_status_code_label(status)).inc()
        logger.info(
            "%s %s %d",
            scope.get("method"),
            path,
            status,
            extra={
                "method": scope.get("method"),
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "operation": operation,
                "root_field": root_field,
                "principal": kind,
                "client": client_address(scope),
                "outcome": outcome,
            },
        )


def _outcome(status: int, codes: list[str]) -> str:
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    if codes:
        return "error"
    return "ok"


def _status_code_label(status: int) -> str:
    return {401: "UNAUTHENTICATED", 413: "BAD_REQUEST", 429: "RATE_LIMITED"}.get(
        status, "BAD_REQUEST"
    )
