"""Prometheus metrics: requests by operation and outcome, errors by code, webhook test calls,
database connections in use. Labels carry operation names, never variables."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.extensions import SchemaExtension

from gql_api.errors import request_error_code

MAX_OPERATION_NAMES = 200  # client-chosen names: cap the label's cardinality
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
OPERATION_KEY = "gql_api.operation"
OUTCOME_KEY = "gql_api.outcome"


class Metrics:
    """One registry per app, so tests and several apps in a process do not collide."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, engine: AsyncEngine) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "graphql_requests_total",
            "GraphQL requests by operation name and outcome.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "graphql_request_duration_seconds",
            "GraphQL request latency by operation name.",
            ["operation"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.errors = Counter(
            "graphql_errors_total",
            "GraphQL errors by extensions.code.",
            ["code"],
            registry=self.registry,
        )
        self.api_secret_verifications = Counter(
            "api_secret_verifications_total",
            "API secrets presented without a cached verify: ok and failed ran argon2; "
            "refused_tag and refused_throttled did not.",
            ["result"],
            registry=self.registry,
        )
        self.webhook_tests = Counter(
            "webhook_test_calls_total",
            "Webhook test calls by result.",
            ["result"],
            registry=self.registry,
        )
        self.login_delays = Counter(
            "login_attempts_delayed_total",
            "Log-in attempts delayed because their email passed LOGIN_EMAIL_SLOWDOWN_AFTER.",
            registry=self.registry,
        )
        pool = Gauge(
            "db_pool_connections_in_use",
            "Database connections checked out of the pool.",
            registry=self.registry,
        )
        pool.set_function(lambda: _checked_out(engine))
        self._names: set[str] = set()
        self._lock = threading.Lock()

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _NAME.match(name):
            return "invalid"
        with self._lock:
            if name in self._names:
                return name
            if len(self._names) >= MAX_OPERATION_NAMES:
                return "other"
            self._names.add(name)
            return name

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _checked_out(engine: AsyncEngine) -> float:
    checked_out = getattr(engine.sync_engine.pool, "checkedout", None)
    return float(checked_out()) if callable(checked_out) else 0.0


class OperationMetrics(SchemaExtension):
    """Notes the operation name and the error codes of each request for the access log."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        scope = getattr(getattr(context, "request", None), "scope", None)
        if scope is None:
            return
        scope[OPERATION_KEY] = self.execution_context.operation_name
        result = self.execution_context.result
        errors = getattr(result, "errors", None) or []
        codes = [
            str((getattr(e, "extensions", None) or {}).get("code") or request_error_code(e.message))
            for e in errors
        ]
        scope[OUTCOME_KEY] = codes
