"""POST /internal/events: the payment core publishes webhook events here (not GraphQL).

Authenticated by a platform token (PLATFORM_EVENT_TOKENS, compared as SHA-256 digests in
constant time, so the configuration may hold digests only); the endpoint answers 404 when no
token is configured. An accepted event is committed, with the state of its delivery, before
the 202 goes out: an acknowledged event is never lost, and nothing is sent from here.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from pydantic import SecretStr
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from db.clock import database_now
from db.engine import Tx
from gql_api.context import AppState
from gql_api.errors import INTERNAL_MESSAGE, DomainError
from gql_api.i18n import Message, _
from gql_api.ids import global_id
from gql_api.logs import current_request_id
from gql_api.mutations import run_unit
from gql_api.request_json import NotAnObjectError, decode_request_json
from gql_api.webhooks import outbox
from gql_api.webhooks.events import EventInput, EventStatus, check_event

logger = logging.getLogger("gql_api.webhooks.intake")

PATH = "/internal/events"
_CHALLENGE = 'Bearer realm="internal-events"'
_NOT_AN_EVENT = _("The body must be one event, a JSON object.")


def token_digests(tokens: Sequence[SecretStr]) -> tuple[bytes, ...]:
    """SHA-256 of each configured token; `sha256:<hex>` entries are digests already."""
    digests = []
    for token in tokens:
        text = token.get_secret_value()
        if text.startswith("sha256:"):
            digests.append(bytes.fromhex(text.removeprefix("sha256:")))
        else:
            digests.append(hashlib.sha256(text.encode()).digest())
    return tuple(digests)


def token_matches(header: str | None, digests: Sequence[bytes]) -> bool:
    scheme, _sep, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    presented = hashlib.sha256(given.strip().encode()).digest()
    matched = False
    for digest in digests:  # every digest compared: the time does not tell which one matched
        matched |= hmac.compare_digest(presented, digest)
    return matched


def _request() -> dict[str, Any]:
    return {"requestId": current_request_id()}


def _errors(status: int, *errors: dict[str, Any]) -> Response:
    return JSONResponse({"errors": list(errors)}, status_code=status)


def _error(field: list[str] | None, code: str, message: Message | str) -> dict[str, Any]:
    """One problem of an answer; a Message is rendered in the request's language (a str is a
    text rendered so already: decode_request_json's reasons)."""
    text = message.render() if isinstance(message, Message) else message
    return {"field": field, "code": code, "message": text}


@dataclass(frozen=True)
class Answer:
    event_pk: int
    event_id: str
    status: str
    duplicate: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": global_id("WebhookEvent", self.event_pk),
            "eventId": self.event_id,
            "status": self.status,
            "duplicate": self.duplicate,
        }

    def response(self) -> Response:
        return JSONResponse(self.as_json(), status_code=200 if self.duplicate else 202)


async def publish_event(state: AppState, event: EventInput) -> Answer:
    """Accept `event` in a transaction of its own (raises outbox.StoreNotFound); shared by the
    endpoint and `integration-api event publish`."""

    async def accept(tx: Tx) -> Answer:
        now = await database_now(tx.db)  # due times are compared by workers on other hosts
        accepting = await outbox.prepare_publish(db=tx.db, event=event, now=now)  # reads
        found = accepting.existing
        if found is not None:
            assert found.id is not None
            return Answer(found.id, found.event_id, found.status, duplicate=True)
        # Short: one INSERT under the write lock (and a read by key, to skip).
        async with tx.write(short=True) as db:
            values = await outbox.confirm_skipped(
                db=db, event=event, values=accepting.values, now=now
            )
            pk = await outbox.insert_published(db=db, values=values)
        return Answer(pk, event.event_id, values["status"], duplicate=False)

    try:
        async with state.session_factory() as session:
            answer = await run_unit(session, state.engine, accept)
    except IntegrityError:  # published concurrently under the same id: that one stands
        async with state.session_factory() as session:
            store = await outbox.live_store(session, event.store_id)
            assert store.id is not None
            row = await outbox.find_event(session, store.id, event.event_id)
            if row is None or row.id is None:
                raise
            answer = Answer(row.id, row.event_id, row.status, duplicate=True)
    outcome = (
        "duplicate"
        if answer.duplicate
        else ("skipped" if answer.status == EventStatus.SKIPPED.value else "accepted")
    )
    state.metrics.webhook_events_published.labels(outcome=outcome).inc()
    if outcome == "skipped":  # it reached its end at once: a message skipped, like a later skip
        state.metrics.webhook_messages.labels(outcome="skipped").inc()
    return answer


def intake_endpoint(state: AppState, wake: Callable[[], None] | None) -> Callable[[Request], Any]:
    digests = token_digests(state.settings.platform_event_tokens)

    async def endpoint(request: Request) -> Response:
        if not digests:
            return JSONResponse({"errors": [_error(None, "NOT_FOUND", _("Not found."))]}, 404)
        if not token_matches(request.headers.get("authorization"), digests):
            response = _errors(
                401, _error(None, "UNAUTHENTICATED", _("A platform event token is required."))
            )
            response.headers["WWW-Authenticate"] = _CHALLENGE
            return response
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return _errors(
                415,
                _error(None, "UNSUPPORTED_MEDIA_TYPE", _("Send the event as application/json.")),
            )
        try:
            body = decode_request_json(await request.body())
        except NotAnObjectError:  # its reason speaks of GraphQL
            return _errors(400, _error(None, "BAD_REQUEST", _NOT_AN_EVENT))
        except HTTPException as refused:  # its reason is in the request's language already
            return _errors(400, _error(None, "BAD_REQUEST", refused.reason))
        except ClientDisconnect:
            return Response(status_code=400)
        if not isinstance(body, dict):  # a list passes decode_request_json (GraphQL batches)
            return _errors(400, _error(None, "BAD_REQUEST", _NOT_AN_EVENT))
        try:
            event = check_event(body)
        except DomainError as invalid:
            return _errors(
                422,
                *(
                    _error(list(problem.field or ()), problem.code.value, problem.message)
                    for problem in invalid.errors
                ),
            )
        try:
            answer = await publish_event(state, event)
        except outbox.StoreNotFound:
            return _errors(404, _error(["storeId"], "NOT_FOUND", _("No store with this storeId.")))
        # SQLite's write lock not granted in time, the connection lost, no connection free in
        # the pool: publishing again is safe (an id is never stored twice).
        except (DBAPIError, PoolTimeout):
            logger.exception("could not store a published event", extra=_request())
            response = _errors(
                503,
                _error(
                    None,
                    "UNAVAILABLE",
                    _("The event was not stored; publish it again (an id is never stored twice)."),
                ),
            )
            response.headers["Retry-After"] = "1"
            return response
        except Exception:  # masked, logged with the request id
            logger.exception("unexpected error publishing an event", extra=_request())
            return _errors(500, _error(None, "INTERNAL", INTERNAL_MESSAGE) | _request())
        if wake is not None and not answer.duplicate:
            wake()
        logger.info(
            "webhook event published",
            extra={"event": answer.event_id[:64], "status": answer.status},
        )
        return answer.response()

    return endpoint
