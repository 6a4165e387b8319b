"""The ASGI application: /graphql (API and GraphiQL), /healthz, /readyz, / (points at them)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLSchema
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.types import QueryParams
from strawberry.schema.exceptions import (
    CannotGetOperationTypeError,
    InvalidOperationTypeError,
)
from strawberry.types import ExecutionResult
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from db import sqlite_reads
from db.clock import ClockSkew, host_clock_skew
from db.engine import PoolOptions, create_engine, create_session_factory
from db.types import utcnow
from gql_api import persisted_queries
from gql_api.access_log import CALLER_KEY, AccessLogMiddleware, BodyTooLargeError
from gql_api.api_secrets.auth import SecretVerifier
from gql_api.api_secrets.verified import VerifiedSecrets
from gql_api.auth import authenticate
from gql_api.caller import Caller
from gql_api.client_address import client_address
from gql_api.context import AppState, Context
from gql_api.errors import (
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_MESSAGE,
    RETRY_AFTER_SECONDS,
    ApiErrorCode,
    RateLimited,
    Unauthenticated,
    masked_extensions,
)
from gql_api.fairness import Fairness
from gql_api.graphiql import ASSETS_PATH, graphiql_assets_app, graphiql_response
from gql_api.http_conventions import (
    GRAPHQL_RESPONSE_JSON,
    WWW_AUTHENTICATE,
    content_type,
    get_cache_headers,
    negotiate,
)
from gql_api.http_conventions import JSON as JSON_MEDIA
from gql_api.i18n import LocaleMiddleware, _
from gql_api.i18n import Message as I18nMessage
from gql_api.logs import current_request_id, new_request_id, set_request_id
from gql_api.metrics import Metrics, forget_this_process, sample_event_loop_lag
from gql_api.metrics_access import metrics_listener, metrics_routes
from gql_api.pg_catalog.catalog import load_catalog
from gql_api.request_json import decode_request_json
from gql_api.runtime import tune_garbage_collector
from gql_api.schema import build_schema
from gql_api.security.encryption import encryptor_from_settings
from gql_api.security.passwords import PasswordHashing
from gql_api.settings import Settings, get_settings
from gql_api.webhooks import intake
from gql_api.webhooks.worker import Worker, WorkerConfig

logger = logging.getLogger("gql_api.app")

_CONTEXT_KEY = "gql_api.context"
_MEDIA_KEY = "gql_api.media"
_SUB_RESPONSE_KEY = "gql_api.sub_response"
_LANE_KEY = "gql_api.lane"
_REQUEST_ERROR_CODES = frozenset(
    {GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, ApiErrorCode.QUERY_TOO_COMPLEX.value}
)
READY_TIMEOUT_SECONDS = 5.0  # a loaded host may take seconds to open a first connection


class GraphQLApp(GraphQL[Context, None]):
    """strawberry's ASGI view, with one database session and the caller resolved up front."""

    def __init__(self, state: AppState) -> None:
        schema = build_schema(state.settings)
        super().__init__(
            schema,
            graphql_ide="graphiql" if state.settings.graphiql_on else None,
            allow_queries_via_get=True,  # queries only: a mutation over GET is 405
            multipart_uploads_enabled=False,
        )
        self.state = state
        self.graphql_schema: GraphQLSchema = schema._schema  # persisted documents validate here

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await Response("Not found", status_code=404)(scope, receive, send)
            return
        request = Request(scope)
        accepts = request.headers.getlist("accept")
        media = negotiate(", ".join(accepts) if accepts else None)
        # A browser opening /graphql gets GraphiQL (strawberry decides), whatever it accepts.
        opening_ide = request.method == "GET" and not request.query_params
        if media is None and not opening_ide:
            response = _error_response(
                _("Accept {graphql} or {json}.", graphql=GRAPHQL_RESPONSE_JSON, json=JSON_MEDIA),
                406,
                media=JSON_MEDIA,
            )
            await response(scope, receive, send)
            return
        scope[_MEDIA_KEY] = media = media or JSON_MEDIA
        if request.method not in ("GET", "POST"):  # HEAD, OPTIONS, PUT, …: GraphQL-shaped
            response = _error_response(_("GraphQL is served over GET and POST."), 405, media=media)
            response.headers["Allow"] = "GET, POST"
            await response(scope, receive, send)
            return
        # Light until its cost says otherwise, until its answer is sent (gql_api.fairness).
        with self.state.fairness.request() as lane:
            scope[_LANE_KEY] = lane
            await self._answer(request, media, scope, receive, send)

    async def _answer(
        self, request: Request, media: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        caller = None
        header = request.headers.get("authorization")
        if header is not None and request.method in ("GET", "POST"):
            try:
                caller = await authenticate(
                    self.state.verifier,
                    header,
                    client_address=client_address(scope),
                    user_agent=request.headers.get("user-agent"),
                )
            except (Unauthenticated, RateLimited) as error:
                status = 429 if isinstance(error, RateLimited) else 401
                response = _error_response(error.message, status, media=media, **error.extensions)
                await response(scope, receive, send)
                return
            except Exception as error:  # authentication reads the database
                # It commits only attempts (throttling, lastUsedAt): safe to send again.
                response = _masked_response(error, commit_begun=False, media=media)
                await response(scope, receive, send)
                return
        scope[CALLER_KEY] = caller
        try:
            response = await self.run(Request(scope, receive))
        except MethodNotAllowed as error:
            response = _error_response(error.reason, 405, media=media)
            response.headers["Allow"] = "POST"
        except OperationNotFound as error:  # a request error, answered as the others are
            status = 200 if media == JSON_MEDIA else 400
            response = _error_response(
                error.reason, status, media=media, code=GRAPHQL_VALIDATION_FAILED
            )
        except persisted_queries.PersistedQueryError as error:
            # PersistedQueryNotFound is 200 whatever the media type (the protocol's normal step);
            # the others are request errors: 400 as graphql-response+json, 200 as plain JSON.
            status = 200 if media == JSON_MEDIA else error.status_code
            response = _error_response(error.reason, status, media=media, code=error.code)
            response.headers.update(error.headers)
        except HTTPException as error:
            reason = STRAWBERRY_REASONS.get(error.reason, error.reason)
            response = _error_response(reason, error.status_code, media=media)
        except ClientDisconnect:
            return  # the client went away before sending its whole request: nobody to answer
        except BodyTooLargeError:
            raise  # answered by RequestContextMiddleware
        except Exception as error:  # masked like any unexpected error, never a plain-text 500
            context = scope.get(_CONTEXT_KEY)
            response = _masked_response(
                error, commit_begun=context is not None and context.commit_begun, media=media
            )
        finally:
            context = scope.get(_CONTEXT_KEY)
            if context is not None:
                await context.close()  # the database connection goes back before the reply
        await response(scope, receive, send)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET naming its document by hash (persisted queries) asks for data, not GraphiQL,
        # whatever it accepts (a browser's fetch() and curl accept */*).
        if "extensions" in request.query_params:
            return False
        return super().should_render_graphql_ide(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        # GraphiQL with every asset served by this service (see gql_api.graphiql), not unpkg.com.
        return graphiql_response()

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as refused:
            # A mutation over GET: GET is for reads (cacheable, safe to repeat); say so.
            if request_adapter.method == "GET" and isinstance(
                refused.__cause__, InvalidOperationTypeError
            ):
                raise MethodNotAllowed(
                    405, _("Mutations are sent with POST.").render()
                ) from refused
            if isinstance(refused.__cause__, CannotGetOperationTypeError):
                raise OperationNotFound(400, refused.reason) from refused
            raise

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        """GET's query string: `variables` and `extensions` are JSON (empty: absent)."""
        parsed: dict[str, Any] = {}
        for name, value in dict(params).items():
            if name not in ("variables", "extensions"):
                parsed[name] = value
            elif value:
                try:
                    parsed[name] = self.parse_json(value)
                except HTTPException as refused:
                    message = _(
                        "`{name}` in the query string is not JSON: {reason}",
                        name=name,
                        reason=refused.reason,
                    )
                    raise HTTPException(400, message.render()) from None
        return parsed

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        parsed = await super().parse_http_body(request)
        if isinstance(parsed, list):  # batching is off: strawberry refuses lists before this
            raise HTTPException(400, _("Batched requests are not supported.").render())
        if not isinstance(parsed.operation_name, str | None):
            raise HTTPException(
                400, _("`operationName` must be a string or null, if provided.").render()
            )
        return await persisted_queries.resolve(self.state, parsed, schema=self.graphql_schema)

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        negotiated = sub_response.headers.get("content-type")
        if negotiated is not None:  # one Content-Type: the negotiated one, not strawberry's
            response.headers["content-type"] = negotiated
        return response

    def decode_json(self, data: str | bytes) -> object:
        return decode_request_json(data)

    def encode_json(self, data: object) -> bytes:
        # orjson: a dashboard answer is some 160 kB of JSON, several times faster than json.
        return orjson.dumps(data)

    async def get_context(self, request: Request, response: Response | None = None) -> Context:  # type: ignore[override]
        request.scope[_SUB_RESPONSE_KEY] = response
        if response is not None:  # the answer's media type (gql_api.http_conventions)
            response.headers["content-type"] = content_type(request.scope[_MEDIA_KEY])
        caller: Caller | None = request.scope[CALLER_KEY]
        context = Context(
            request=request,
            response=response,
            app=self.state,
            principal=caller.principal if caller else None,
            caller_merchant=caller.merchant if caller else None,
            request_id=current_request_id(),
            client_address=client_address(request.scope),
            lane=request.scope.get(_LANE_KEY),
        )
        request.scope[_CONTEXT_KEY] = context
        return context

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Status code and headers by gql_api.http_conventions: over application/json every
        GraphQL response is 200; over application/graphql-response+json a request error is
        400, and a request the database failed whole is 503 (500 when a COMMIT may have been
        applied). A request error has no `data` key. GET answers say how they may be cached."""
        data = await super().process_result(request, result)
        errors: list[dict[str, Any]] = list(data.get("errors") or [])  # type: ignore[arg-type]
        sub_response = request.scope.get(_SUB_RESPONSE_KEY)
        if sub_response is None:
            return data
        if request.method == "GET":
            authenticated = request.scope.get(CALLER_KEY) is not None or (
                "authorization" in request.headers
            )
            sub_response.headers.update(
                get_cache_headers(authenticated=authenticated, errors=bool(errors))
            )
        if not errors:
            return data
        # Every error has its code, set where it was made (gql_api.document_errors).
        extensions = [e.get("extensions") or {} for e in errors]
        strict = request.scope[_MEDIA_KEY] == GRAPHQL_RESPONSE_JSON
        if data.get("data") is None and any(
            e.get("code") in _REQUEST_ERROR_CODES for e in extensions
        ):
            del data["data"]  # the document never ran: there is no data, not even null
            if strict:
                sub_response.status_code = 400
        elif (
            strict
            and not any((data.get("data") or {}).values())
            and all("retryable" in e for e in extensions)
        ):
            # No field answered, only the database unavailable (gql_api.errors). Nothing of
            # the request committed: 503, as when it fails before it runs, so that proxies and
            # clients retry it. A mutation whose COMMIT was sent may be applied: 500, which
            # neither is told to repeat.
            if all(e["retryable"] for e in extensions):
                sub_response.status_code = 503
                sub_response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            else:
                sub_response.status_code = 500
        return data


class MethodNotAllowed(HTTPException):
    """Answered 405 with `Allow: POST`."""


class OperationNotFound(HTTPException):
    """`operationName` names no operation of the document: a request error."""


def _masked_response(error: Exception, *, commit_begun: bool, media: str) -> Response:
    """An unexpected error that failed the whole request, masked (gql_api.errors) and logged
    with the request id: 503 with Retry-After when the database was unavailable for the
    moment and nothing of the request can have been committed (`commit_begun`: see
    gql_api.context.Context.commit_begins), else 500."""
    request_id = current_request_id()
    extensions = masked_extensions(error, request_id, commit_begun=commit_begun)
    extra = {"request_id": request_id}
    if not extensions.get("retryable"):
        logger.exception("unexpected error serving /graphql", extra=extra)
        return _error_response(INTERNAL_MESSAGE, 500, media=media, **extensions)
    logger.warning("database unavailable serving /graphql", exc_info=error, extra=extra)
    response = _error_response(INTERNAL_MESSAGE, 503, media=media, **extensions)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# strawberry's own refusals of a request, in the request's language like ours (an unknown
# text, from a strawberry newer than these, is shown as strawberry wrote it).
STRAWBERRY_REASONS: dict[str, I18nMessage] = {
    "Batching is not enabled": _("Batched requests are not supported."),
    "No GraphQL query found in the request": _("No GraphQL query found in the request."),
    "Unsupported content type": _(
        "Unsupported content type; send application/json (POST) or a query string (GET)."
    ),
    "The GraphQL operation's `query` must be a string or null, if provided.": _(
        "The GraphQL operation's `query` must be a string or null, if provided."
    ),
    "The GraphQL operation's `variables` must be an object or null, if provided.": _(
        "The GraphQL operation's `variables` must be an object or null, if provided."
    ),
    "The GraphQL operation's `extensions` must be an object or null, if provided.": _(
        "The GraphQL operation's `extensions` must be an object or null, if provided."
    ),
    "Too many operations": _("Too many operations."),
    "Unable to parse the multipart body": _("Unable to parse the multipart body."),
    "File(s) missing in form data": _("File(s) missing in form data."),
    "GraphQL only supports GET and POST requests.": _("GraphQL is served over GET and POST."),
    "Not Found": _("Not found."),
}


def _error_response(
    message: I18nMessage | str, status_code: int, *, media: str, **extensions: str | int | bool
) -> Response:
    """A request refused before it ran, GraphQL-shaped: no `data` key (nothing ran). The
    message in the request's language (a str: already rendered, or a library's own text)."""
    code = extensions.pop("code", "BAD_REQUEST")
    text = message.render() if isinstance(message, I18nMessage) else message
    body = {"errors": [{"message": text, "extensions": {"code": code, **extensions}}]}
    headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if status_code == 401 else None
    # The standard library's encoder: this answer must not depend on what may have failed.
    content = json.dumps(body, ensure_ascii=False).encode()
    return Response(content, status_code, headers=headers, media_type=content_type(media))


class RequestContextMiddleware:
    """Gives every request an id (also sent back as X-Request-ID) and caps the body size."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        set_request_id(request_id)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        declared = Request(scope).headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _too_large(scope, receive, send_with_id)
            return
        try:
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLargeError:
            await _too_large(scope, receive, send_with_id)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    accepts = Request(scope).headers.getlist("accept")
    media = negotiate(", ".join(accepts) if accepts else None) or JSON_MEDIA
    response = _error_response(_("Request body too large."), 413, media=media)
    await response(scope, receive, send)


def pool_options(settings: Settings) -> PoolOptions:
    return PoolOptions(
        size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        timeout_seconds=settings.db_pool_timeout_seconds,
        recycle_seconds=settings.db_pool_recycle_seconds,
        statement_cache=settings.db_statement_cache,
    )


def create_state(settings: Settings) -> AppState:
    engine = create_engine(settings.database_url, pool=pool_options(settings))
    hashing = PasswordHashing(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        max_concurrency=settings.argon2_max_concurrency,
    )
    metrics = Metrics(engine)
    return AppState(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine),
        hashing=hashing,
        catalog=load_catalog(),
        encryptor=encryptor_from_settings(settings),
        verifier=SecretVerifier(
            engine=engine, hashing=hashing, verified=VerifiedSecrets(), metrics=metrics
        ),
        metrics=metrics,
        fairness=Fairness(
            heavy_cost=settings.heavy_query_cost,
            heavy_concurrency=settings.heavy_query_concurrency,
        ),
    )


def create_app(
    settings: Settings | None = None,
    *,
    supervised: bool = False,
    host_clock: Callable[[], datetime] = utcnow,
) -> Starlette:
    """The application. `supervised`: this process is one of `serve --workers N`, whose
    supervisor serves METRICS_PORT for all of them, and without which it must not live on.
    `host_clock`: this host's clock, as compared with the database's (db.clock)."""
    settings = settings or get_settings()
    state = create_state(settings)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def root(_: Request) -> Response:
        """`/` points at the API, so that opening the bare address is never a dead end: to
        GraphiQL when it is on, else a small index of the paths (no version, nothing secret)."""
        if settings.graphiql_on:
            return RedirectResponse("/graphql", status_code=307)
        return JSONResponse({"graphql": "/graphql", "health": "/healthz", "ready": "/readyz"})

    async def measure_clock() -> ClockSkew:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), state.engine.connect() as conn:
            skew = await host_clock_skew(conn, host_clock=host_clock)
        state.metrics.clock_skew.set(skew.seconds)
        if skew.beyond(settings.clock_skew_tolerance_seconds):
            logger.warning(
                "this host's clock is %.3f s (± %.3f s) from the database's, beyond "
                "CLOCK_SKEW_TOLERANCE_SECONDS=%s: not ready",
                skew.seconds,
                skew.uncertainty,
                settings.clock_skew_tolerance_seconds,
                extra={"clock_skew_seconds": skew.seconds},
            )
        return skew

    async def readyz(_: Request) -> Response:
        """Ready: the database answers, and this host's clock agrees with it (within
        CLOCK_SKEW_TOLERANCE_SECONDS: see db.clock)."""
        try:
            skew = await measure_clock()
        except Exception:  # any failure means "not ready"
            logger.warning("readiness check failed", exc_info=True)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        answer = {
            "status": "ok",
            "database": "ok",
            "clockSkewSeconds": round(skew.seconds, 3),
            "clockSkewUncertaintySeconds": round(skew.uncertainty, 3),
        }
        if skew.beyond(settings.clock_skew_tolerance_seconds):
            return JSONResponse({**answer, "status": "unavailable", "clock": "skewed"}, 503)
        return JSONResponse(answer)

    worker = (
        Worker(
            engine=state.engine,
            session_factory=state.session_factory,
            encryptor=state.encryptor,
            metrics=state.metrics,
            config=WorkerConfig.from_settings(settings),
        )
        if settings.webhook_worker == "embedded"
        else None
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        tune_garbage_collector()
        try:  # measured once at start, so the gauge means something before the first /readyz
            await measure_clock()
        except Exception:  # the database may come up later: /readyz says so meanwhile
            logger.warning("could not compare this host's clock with the database's")
        delivering = asyncio.create_task(worker.run()) if worker is not None else None
        orphaned = asyncio.create_task(_exit_when_orphaned()) if supervised else None
        lag = asyncio.create_task(sample_event_loop_lag(state.metrics.event_loop_lag))
        try:
            if supervised:
                yield {}
            else:
                with metrics_listener(settings, state.metrics.exposition_registry()):
                    yield {}
        finally:
            lag.cancel()
            if orphaned is not None:
                orphaned.cancel()
            if worker is not None and delivering is not None:
                worker.stop()  # stops claiming; finishes or releases what it holds
                await delivering
            await asyncio.gather(lag, return_exceptions=True)  # its cancellation, collected
            state.hashing.close()
            sqlite_reads.close(state.engine)
            await state.engine.dispose()
            forget_this_process()

    graphql = GraphQLApp(state)
    app = Starlette(
        routes=[
            Route("/", root, methods=["GET"]),  # and HEAD, as for every GET route
            Route("/graphql", graphql),  # every method: GraphQLApp answers the others 405
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route(
                intake.PATH,
                intake.intake_endpoint(state, worker.wake if worker is not None else None),
                methods=["POST"],
            ),
            *metrics_routes(settings, state.metrics),
        ],
        lifespan=lifespan,
    )
    if settings.graphiql_on:
        app.mount(ASSETS_PATH, graphiql_assets_app(), name="graphiql-assets")
    app.state.app_state = state
    app.add_middleware(AccessLogMiddleware, metrics=state.metrics)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_bytes)
    # Outside the request-id middleware: its 413 answer is in the request's language too.
    app.add_middleware(LocaleMiddleware, default=settings.default_locale)
    if settings.forwarded_allow_ips:
        # Outermost: everything after it sees the client a trusted proxy forwarded for.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app


SUPERVISOR_PID_ENV = "INTEGRATION_API_SUPERVISOR_PID"  # set by `serve` for its workers


def create_worker_app() -> Starlette:
    """The application in each process of `serve --workers N` (uvicorn's factory)."""
    return create_app(supervised=True)


ORPHAN_CHECK_SECONDS = 1.0


async def _exit_when_orphaned() -> None:
    """A worker of `serve --workers N` whose supervisor is gone (killed with SIGKILL, say)
    would go on serving its share of the port, unseen by the process manager: it shuts down
    gracefully instead, as on SIGTERM."""
    # The supervisor's pid as it said it (a worker starting late may find it already gone).
    supervisor = int(os.environ.get(SUPERVISOR_PID_ENV) or os.getppid())
    while True:  # no event tells a process its parent died: look every second
        if os.getppid() != supervisor:
            break
        await asyncio.sleep(ORPHAN_CHECK_SECONDS)
    logger.error("the supervising serve process is gone: this worker shuts down")
    os.kill(os.getpid(), signal.SIGTERM)
