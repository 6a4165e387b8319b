"""Prometheus metrics: requests by operation and outcome, errors by code, webhook test calls
and event delivery, database connections in use. The operation label is a root field of the
schema (or `other`), never a name the client chose, nor a variable.

Several processes of one host (`serve --workers N`) report together through the client
library's multiprocess mode: with PROMETHEUS_MULTIPROC_DIR set (serve sets it for its
workers), each process writes its values to files there and any scrape adds up all of them.
Gauges say how: connections in use add up over live processes, the delivery backlog (which
every worker sees whole) takes the highest.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from graphql import DocumentNode, FieldNode, GraphQLSchema, get_operation_ast
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.extensions import SchemaExtension

OPERATION_KEY = "gql_api.operation"  # the client's operationName, shortened: for the log only
ROOT_FIELD_KEY = "gql_api.root_field"  # the operation label
OTHER = "other"
OPERATION_NAME_MAX_LENGTH = 64
OUTCOME_KEY = "gql_api.outcome"
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory several processes share their metrics through, if they do."""
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


class _LiveProcessesCollector(Collector):
    """The client library's MultiProcessCollector, after dropping the live gauges of processes
    that are gone: a worker uvicorn's supervisor restarted after a crash or a hang never ran
    its own clean-up (forget_this_process), and its connections in use would stay counted."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._files = multiprocess.MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        for pid in {_pid_of(file) for file in self._path.glob("gauge_live*_*.db")}:
            if pid is not None and not _running(pid):
                multiprocess.mark_process_dead(pid, str(self._path))  # type: ignore[no-untyped-call]
        collected: Iterable[Metric] = self._files.collect()  # type: ignore[no-untyped-call]
        return collected


def _pid_of(file: Path) -> int | None:
    tail = file.stem.rpartition("_")[2]
    return int(tail) if tail.isdigit() else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def all_processes_registry() -> CollectorRegistry:
    """A registry that reads the values every live process (and the counters of every process)
    wrote to the multiprocess directory."""
    path = multiprocess_dir()
    assert path is not None, "PROMETHEUS_MULTIPROC_DIR is not set"
    registry = CollectorRegistry()
    registry.register(_LiveProcessesCollector(path))
    return registry


def forget_this_process() -> None:
    """Drop this process's live gauges from the shared directory as it exits (its counters
    stay: they count what happened)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


LAG_SAMPLE_INTERVAL_SECONDS = 0.05


async def sample_event_loop_lag(histogram: Histogram) -> None:
    """Until cancelled: a timer every LAG_SAMPLE_INTERVAL_SECONDS, how late it fired observed.

    A callback that holds the loop (a long synchronous stretch: building a large result,
    hashing on the loop by mistake) delays every request by as much, and shows here whatever
    the requests' own latencies say.
    """
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LAG_SAMPLE_INTERVAL_SECONDS
        await asyncio.sleep(LAG_SAMPLE_INTERVAL_SECONDS)
        histogram.observe(max(0.0, loop.time() - due))


class Metrics:
    """One registry per app, so tests and several apps in a process do not collide (in
    multiprocess mode a process has one app)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, engine: AsyncEngine) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "graphql_requests_total",
            "GraphQL requests by operation (its first root field) and outcome.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "graphql_request_duration_seconds",
            "GraphQL request latency by operation (its first root field).",
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
        self.api_secret_refusals = Counter(
            "api_secret_refusals_total",
            "Uses of an API secret, or of a token exchanged for it, refused although it may be "
            "genuine: reason NETWORK_NOT_ALLOWED (outside the secret's network rules); "
            "credential: api_secret, access_token or refresh_token.",
            ["reason", "credential"],
            registry=self.registry,
        )
        self.webhook_tests = Counter(
            "webhook_test_calls_total",
            "Webhook test calls by result.",
            ["result"],
            registry=self.registry,
        )
        self.webhook_events_published = Counter(
            "webhook_events_published_total",
            "Webhook events published: accepted (due), skipped (nowhere to send) or duplicate.",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_messages = Counter(
            "webhook_messages_total",
            "Webhook events that reached an end: succeeded, exhausted or skipped.",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "webhook_attempts_total",
            "Webhook delivery attempts by trigger (EVENT, MANUAL) and status class "
            "(2xx, 3xx, 4xx, 5xx, or none when nothing came back).",
            ["trigger", "status_class"],
            registry=self.registry,
        )
        self.webhook_due_backlog = Gauge(
            "webhook_due_backlog",
            "Webhook events due for an attempt and not being attempted (as a worker last saw).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.webhook_oldest_due_seconds = Gauge(
            "webhook_oldest_due_age_seconds",
            "How long the oldest due webhook event has waited (as a worker last saw).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.webhook_delivery_latency = Histogram(
            "webhook_delivery_latency_seconds",
            "From an event's publication to its first successful delivery.",
            registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 8 * 3600),
        )
        self.login_delays = Counter(
            "login_attempts_delayed_total",
            "Log-in attempts delayed because their email passed LOGIN_EMAIL_SLOWDOWN_AFTER.",
            registry=self.registry,
        )
        self.clock_skew = Gauge(
            "host_clock_skew_seconds",
            "How far this host's clock is ahead of the database's (negative: behind), as "
            "/readyz last measured it.",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.event_loop_lag = Histogram(
            "event_loop_lag_seconds",
            "How late the event loop ran a timer set to fire every "
            f"{LAG_SAMPLE_INTERVAL_SECONDS:g} s: the longest any request waited for the loop "
            "is about the highest of these.",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.pool_in_use = Gauge(
            "db_pool_connections_in_use",
            "Database connections checked out of the pools (of every live process).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        _count_checkouts(engine, self.pool_in_use)

    def exposition_registry(self) -> CollectorRegistry:
        """What a scrape reports: every process of the host in multiprocess mode, else this
        app's own registry."""
        return all_processes_registry() if multiprocess_dir() is not None else self.registry

    def render(self) -> bytes:
        return generate_latest(self.exposition_registry())


def _count_checkouts(engine: AsyncEngine, gauge: Gauge) -> None:
    """Follow the pool's checkouts and checkins (SQLAlchemy calls checkin exactly once for
    every successful checkout, an invalidated connection included), rather than asking the
    pool at scrape time: in multiprocess mode the scrape runs in one process of several."""

    def checked_out(*_: Any) -> None:
        gauge.inc()

    def checked_in(*_: Any) -> None:
        gauge.dec()

    event.listen(engine.sync_engine, "checkout", checked_out)
    event.listen(engine.sync_engine, "checkin", checked_in)


def root_field(
    schema: GraphQLSchema, document: DocumentNode | None, operation_name: str | None
) -> str:
    """The first field at the root of the operation that the schema's root type has, else
    `other`: whatever a client sends, the label takes one of a few dozen values."""
    operation = get_operation_ast(document, operation_name) if document is not None else None
    root = schema.get_root_type(operation.operation) if operation is not None else None
    if operation is None or root is None:
        return OTHER
    for selection in operation.selection_set.selections:
        if isinstance(selection, FieldNode) and selection.name.value in root.fields:
            return selection.name.value
    return OTHER


class OperationMetrics(SchemaExtension):
    """Notes the operation (its root field, and the client's name for it) and the error codes of
    each request for the access log and the metrics."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        scope = getattr(getattr(context, "request", None), "scope", None)
        if scope is None:
            return
        execution = self.execution_context
        name = execution.operation_name
        scope[OPERATION_KEY] = name[:OPERATION_NAME_MAX_LENGTH] if name else None
        scope[ROOT_FIELD_KEY] = root_field(
            execution.schema._schema, execution.graphql_document, name
        )
        result = self.execution_context.result
        errors = getattr(result, "errors", None) or []
        codes = [str((getattr(e, "extensions", None) or {}).get("code")) for e in errors]
        scope[OUTCOME_KEY] = codes
