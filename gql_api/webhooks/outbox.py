"""The outbox of webhook events: publishing, claiming due events under a lease, recording each
attempt and scheduling the next (resends: webhooks.resends; retention: webhooks.upkeep).

Every decision is made in the database, so any number of processes may share the work: an
event is accepted once per (store, publisher id) by a unique index; a worker claims due events
with `SELECT … FOR UPDATE SKIP LOCKED` (on SQLite the write transaction is already exclusive)
and a lease (`locked_until`, `lease_token`); only the holder of the current lease may move an
event on, and an event whose lease ran out (its worker died) is due again, with the same
`webhook-id`. No transaction stays open while a receiver is called.
"""

from __future__ import annotations

import logging
import random
import secrets as token_source
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, tuple_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Store, WebhookDelivery, WebhookEvent
from gql_api.channels.rules import IntegrationMode
from gql_api.i18n import SOURCE_LOCALE, Message, _
from gql_api.security.encryption import Encryptor
from gql_api.webhooks import signing
from gql_api.webhooks.events import (
    EventInput,
    EventStatus,
    NotDeliverable,
    Trigger,
    render,
)
from gql_api.webhooks.payloads import ModuleVersionValue
from gql_api.webhooks.sender import DeliveryResult
from gql_api.webhooks.service import EffectiveWebhookSetting, active_secrets, setting_in_force

# What happened to an event or an attempt (WebhookEvent.status_reason, WebhookDelivery.error) is
# recorded once, in English, as a fact of that moment: it is read later in either language, and
# much of it is the receiver's or the network library's own words, which no catalog holds.
UNFINISHED = "Not finished: the attempt was in progress, or its worker stopped before it ended."
MANUAL_RESEND_LIMIT = 5  # per event (PortOne: MAX_WEBHOOK_RETRY_COUNT_REACHED)
LEASE_MARGIN_SECONDS = 10.0
CANDIDATES_PER_CLAIM = 2  # rows looked at per free slot, so that full hosts can be passed over
logger = logging.getLogger("gql_api.webhooks.outbox")


@dataclass(frozen=True)
class RetryPolicy:
    """PortOne's schedule: the first attempt at once, then retries after 1, 4, 16, 64 and 256
    minutes, each with full jitter (a random delay between 0 and the step), 6 attempts in all."""

    schedule_minutes: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0, 256.0)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @property
    def max_attempts(self) -> int:
        return 1 + len(self.schedule_minutes)

    def delay_after(self, attempts_made: int, retry_after: float | None) -> timedelta | None:
        """How long to wait after attempt `attempts_made` failed; None when it was the last.

        A receiver's Retry-After (429, 503) replaces the random delay, never beyond the step's
        bound: the schedule's end stays where PortOne's is."""
        if attempts_made >= self.max_attempts:
            return None
        ceiling = self.schedule_minutes[max(attempts_made, 1) - 1] * 60.0
        if retry_after is not None:
            return timedelta(seconds=min(max(retry_after, 0.0), ceiling))
        return timedelta(seconds=self.rng.uniform(0.0, ceiling))


class StoreNotFound(LookupError):
    """No live store has this storeId."""


@dataclass(frozen=True)
class Published:
    event: WebhookEvent
    duplicate: bool


def recorded(reason: Message) -> str:
    """`reason` as an event or an attempt records it: in English (see UNFINISHED)."""
    return reason.render(SOURCE_LOCALE)


def _initial_state(
    setting: EffectiveWebhookSetting, event: EventInput | WebhookEvent, now: datetime
) -> tuple[EventStatus, str | None, datetime | None]:
    reason = why_not_deliverable(setting, event)
    if reason is not None:
        return EventStatus.SKIPPED, recorded(reason), None
    return EventStatus.PENDING, None, now


def no_url_reason(setting: EffectiveWebhookSetting) -> Message:
    return _(
        "No {module_version} {mode} webhook URL is configured for this store.",
        module_version=setting.module_version.value,
        mode=setting.mode.value,
    )


def why_not_deliverable(
    setting: EffectiveWebhookSetting, event: EventInput | WebhookEvent
) -> Message | None:
    """Why the setting in force cannot carry `event` (no URL, or a body version without this
    type), or None when it can."""
    if setting.url is None:
        return no_url_reason(setting)
    try:
        render(
            module_version=setting.module_version,
            event_type=event.type,
            data=event.data,
            published_at=datetime.now().astimezone(),
            payload_version=setting.payload_version,
            content_type=setting.content_type,
        )
    except NotDeliverable as refused:
        return refused.message
    return None


async def find_event(db: AsyncSession, store_pk: int, event_id: str) -> WebhookEvent | None:
    statement = select(WebhookEvent).where(
        col(WebhookEvent.store_pk) == store_pk, col(WebhookEvent.event_id) == event_id
    )
    return (await db.exec(statement)).first()


async def live_store(db: AsyncSession, store_id: str) -> Store:
    store = (
        await db.exec(
            select(Store).where(col(Store.store_id) == store_id, col(Store.deleted_at).is_(None))
        )
    ).first()
    if store is None:
        raise StoreNotFound(store_id)
    return store


async def publish(*, db: AsyncSession, event: EventInput, now: datetime) -> Published:
    """Accept `event` in the caller's write transaction, with the state of its delivery: due at
    once, or SKIPPED (with the reason) when the setting in force has nowhere to send it.

    Idempotent: the same publisher id for the same store answers with the event already
    accepted (a concurrent duplicate fails the unique index; the caller reads it back).
    """
    store = await live_store(db, event.store_id)
    assert store.id is not None
    existing = await find_event(db, store.id, event.event_id)
    if existing is not None:
        return Published(existing, duplicate=True)
    setting = await setting_in_force(db, store, event.module_version, event.mode)
    status, reason, due = _initial_state(setting, event, now)
    row = WebhookEvent(
        merchant_id=store.merchant_id,
        store_pk=store.id,
        event_id=event.event_id,
        module_version=event.module_version.value,
        mode=event.mode.value,
        type=event.type,
        data=event.data,
        message_id=signing.new_message_id(),
        status=status.value,
        status_reason=reason,
        published_at=now,
        next_attempt_at=due,
        next_trigger=Trigger.EVENT.value,
    )
    db.add(row)
    await db.flush()
    return Published(row, duplicate=False)


@dataclass(frozen=True)
class Request:
    """One attempt's request, as it will be sent (and as it is recorded)."""

    url: str
    headers: list[tuple[str, str]]
    body: str
    require_https: bool

    @property
    def host(self) -> str:
        return receiver_host(self.url)


def receiver_host(url: str) -> str:
    """The receiver, as far as per-host concurrency is concerned: the host as named, in one
    spelling (case, a trailing dot and the default port do not make another host). Other names
    of one machine are bounded by the per-merchant limit instead."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"


SecretsCache = dict[tuple[int, str], list[str]]


async def build_request(
    db: AsyncSession,
    encryptor: Encryptor,
    setting: EffectiveWebhookSetting,
    event: WebhookEvent,
    now: datetime,
    secrets_cache: SecretsCache | None = None,
) -> Request:
    """The signed request for `event` under the setting in force (raises NotDeliverable).
    `secrets_cache` keeps the active secrets per store and mode for one claim."""
    assert setting.url is not None
    rendered = render(
        module_version=setting.module_version,
        event_type=event.type,
        data=event.data,
        published_at=event.published_at,
        payload_version=setting.payload_version,
        content_type=setting.content_type,
    )
    headers = [("content-type", rendered.content_type.media_type)]
    if setting.module_version is ModuleVersionValue.V2:
        timestamp = int(now.timestamp())
        headers += [("webhook-id", event.message_id), ("webhook-timestamp", str(timestamp))]
        key = (setting.source_store_pk, setting.mode.value)
        if secrets_cache is not None and key in secrets_cache:
            in_use = secrets_cache[key]
        else:
            in_use = await active_secrets(db, encryptor, setting.source_store_pk, setting.mode)
            if secrets_cache is not None:
                secrets_cache[key] = in_use
        if in_use:
            signature = signing.signature_header(in_use, event.message_id, timestamp, rendered.body)
            headers.append(("webhook-signature", signature))
    return Request(
        url=setting.url,
        headers=headers,
        body=rendered.body,
        require_https=setting.mode is IntegrationMode.LIVE,
    )


@dataclass(frozen=True)
class Claim:
    """An attempt a worker holds the lease for: send `request`, then finish()."""

    event_pk: int
    merchant_pk: int
    lease_token: str
    delivery_pk: int
    trigger: Trigger
    attempt_number: int
    published_at: datetime
    request: Request


# Where an event goes: the setting in force for its store, module version and mode. A store
# has up to four, each with its own URL, so a slow receiver of one holds up none of the others.
SettingKey = tuple[int, str, str]


def setting_key(event: WebhookEvent) -> SettingKey:
    return (event.store_pk, event.module_version, event.mode)


@dataclass
class ClaimResult:
    claims: list[Claim] = field(default_factory=list)
    skipped: int = 0  # events found undeliverable (SKIPPED) during the claim
    exhausted: int = 0  # events whose last attempt's worker died (their lease ran out)
    # Settings whose due events wait because their receiver host is at its limit.
    passed_over: dict[SettingKey, str] = field(default_factory=dict)


def due(now: datetime, passed_over: set[SettingKey]) -> list[Any]:
    """The conditions of an event due for an attempt at `now` and not leased."""
    conditions: list[Any] = [
        col(WebhookEvent.next_attempt_at) <= now,
        or_(col(WebhookEvent.locked_until).is_(None), col(WebhookEvent.locked_until) < now),
    ]
    if passed_over:
        setting = tuple_(
            col(WebhookEvent.store_pk), col(WebhookEvent.module_version), col(WebhookEvent.mode)
        )
        conditions.append(setting.not_in(sorted(passed_over)))
    return conditions


async def any_due(db: AsyncSession, now: datetime, passed_over: Iterable[SettingKey] = ()) -> bool:
    """Whether anything is due (a plain read: an idle worker takes no write lock to learn it)."""
    statement = select(WebhookEvent.id).where(*due(now, set(passed_over))).limit(1)
    return (await db.exec(statement)).first() is not None


@dataclass(frozen=True)
class Capacity:
    """What a worker has in flight, and how much it allows, per receiver host and merchant."""

    host_in_flight: Mapping[str, int]
    per_host_limit: int
    merchant_in_flight: Mapping[int, int] = field(default_factory=dict)
    per_merchant_limit: int | None = None


async def claim_due(
    *,
    db: AsyncSession,
    encryptor: Encryptor,
    now: datetime,
    limit: int,
    lease: timedelta,
    capacity: Capacity,
    passed_over: Iterable[SettingKey] = (),
    policy: RetryPolicy | None = None,
) -> ClaimResult:
    """Lease up to `limit` due events, in the caller's write transaction, oldest due first.

    Events whose receiver host, or whose merchant, is at its limit in this worker are left for
    later, and settings (`passed_over`) known to send there are not even looked at, so that one
    slow receiver (however many names it is reached by) cannot hold up the others. Each claimed
    attempt is recorded at once as an unfinished delivery, so that an attempt whose worker died
    is visible as such. An attempt whose worker died counts: an event whose last scheduled
    attempt (or a queued resend) did not finish ends EXHAUSTED instead of being tried again,
    so an event that kills its worker cannot do so for ever. An event whose request cannot be
    prepared (a secret no key decrypts) fails that attempt, saying why, and the others go on.
    """
    policy = policy or RetryPolicy()
    result = ClaimResult()
    hosts = dict(capacity.host_in_flight)
    merchants = dict(capacity.merchant_in_flight)
    candidates = (
        await db.exec(
            select(WebhookEvent)
            .where(*due(now, set(passed_over)))
            .order_by(col(WebhookEvent.next_attempt_at), col(WebhookEvent.id))
            .limit(limit * CANDIDATES_PER_CLAIM)
            .with_for_update(skip_locked=True)
        )
    ).all()
    settings: dict[tuple[int, str, str], EffectiveWebhookSetting | None] = {}
    secrets_cache: SecretsCache = {}
    for event in candidates:
        if len(result.claims) >= limit:
            break
        manual = event.next_trigger == Trigger.MANUAL.value
        if event.locked_until is not None and (
            manual or event.attempt_count >= policy.max_attempts
        ):
            _finish_without_sending(
                event,
                EventStatus.EXHAUSTED,
                "The last attempt did not finish: its worker stopped while sending it.",
            )
            result.exhausted += 1
            continue
        if manual and event.manual_resend_count >= MANUAL_RESEND_LIMIT:
            _finish_without_sending(
                event,
                EventStatus.EXHAUSTED,
                f"Not resent: this event was resent {MANUAL_RESEND_LIMIT} times already.",
            )
            result.exhausted += 1
            continue
        setting = await _setting_for(db, event, settings)
        if setting is None:
            _finish_without_sending(event, EventStatus.SKIPPED, "The store was deleted.")
            result.skipped += 1
            continue
        if setting.url is None:
            _finish_without_sending(event, EventStatus.SKIPPED, recorded(no_url_reason(setting)))
            result.skipped += 1
            continue
        host = receiver_host(setting.url)
        merchant_full = (
            capacity.per_merchant_limit is not None
            and merchants.get(event.merchant_id, 0) >= capacity.per_merchant_limit
        )
        if hosts.get(host, 0) >= capacity.per_host_limit or merchant_full:
            result.passed_over[setting_key(event)] = host
            continue
        try:
            request = await build_request(db, encryptor, setting, event, now, secrets_cache)
        except NotDeliverable as refused:  # the payload version cannot carry this type
            _finish_without_sending(event, EventStatus.SKIPPED, recorded(refused.message))
            result.skipped += 1
            continue
        except Exception as error:  # one event's trouble must not stop the others
            logger.exception("could not prepare a webhook attempt", extra={"event": event.id})
            outcome = await _not_prepared(db, event, setting.url, error, now, policy)
            result.exhausted += outcome is EventStatus.EXHAUSTED
            continue
        hosts[host] = hosts.get(host, 0) + 1
        merchants[event.merchant_id] = merchants.get(event.merchant_id, 0) + 1
        result.claims.append(await _lease(db, event, request, now, lease))
    await db.flush()
    return result


async def _not_prepared(
    db: AsyncSession,
    event: WebhookEvent,
    url: str,
    error: Exception,
    now: datetime,
    policy: RetryPolicy,
) -> EventStatus:
    """Record an attempt that could not even be prepared as a failed attempt (nothing sent),
    and schedule the next one as for any failure."""
    trigger, number = _count_attempt(event)
    reason = (
        f"Not sent: the request could not be prepared ({type(error).__name__}); "
        "an operator must look at the service's log."
    )
    failed = WebhookDelivery(
        merchant_id=event.merchant_id,
        store_pk=event.store_pk,
        module_version=event.module_version,
        mode=event.mode,
        trigger=trigger.value,
        url=url,
        request_headers=[],
        request_body="",
        error=reason,
        attempted_at=now,
        event_pk=event.id,
        attempt_number=number,
    )
    db.add(failed)
    delay = policy.delay_after(event.attempt_count, None) if trigger is Trigger.EVENT else None
    _failed(event, reason, delay, now)
    db.add(event)
    return EventStatus(event.status)


def _count_attempt(event: WebhookEvent) -> tuple[Trigger, int]:
    """Count the attempt about to be made: scheduled attempts by attempt_count, queued resends
    by manual_resend_count (counted when sent, so numbers follow the order of sending)."""
    trigger = Trigger(event.next_trigger)
    if trigger is Trigger.EVENT:
        event.attempt_count += 1
        return trigger, event.attempt_count
    event.manual_resend_count += 1
    return trigger, event.manual_resend_count


def _failed(event: WebhookEvent, reason: str, delay: timedelta | None, now: datetime) -> None:
    event.status_reason = reason[:1000]
    event.next_trigger = Trigger.EVENT.value
    event.locked_until = None
    event.lease_token = None
    if delay is None:
        event.status = EventStatus.EXHAUSTED.value
        event.next_attempt_at = None
    else:
        event.status = EventStatus.RETRYING.value
        event.next_attempt_at = now + delay


async def _setting_for(
    db: AsyncSession,
    event: WebhookEvent,
    cache: dict[tuple[int, str, str], EffectiveWebhookSetting | None],
) -> EffectiveWebhookSetting | None:
    key = (event.store_pk, event.module_version, event.mode)
    if key not in cache:
        store = await db.get(Store, event.store_pk)
        cache[key] = (
            None
            if store is None or store.deleted_at is not None
            else await setting_in_force(
                db, store, ModuleVersionValue(event.module_version), IntegrationMode(event.mode)
            )
        )
    return cache[key]


def _finish_without_sending(event: WebhookEvent, status: EventStatus, reason: str) -> None:
    event.status = status.value
    event.status_reason = reason
    event.next_attempt_at = None
    event.next_trigger = Trigger.EVENT.value
    event.locked_until = None
    event.lease_token = None


async def _lease(
    db: AsyncSession, event: WebhookEvent, request: Request, now: datetime, lease: timedelta
) -> Claim:
    assert event.id is not None
    trigger, number = _count_attempt(event)  # when claimed: a crashed attempt may have been sent
    event.locked_until = now + lease
    event.lease_token = token_source.token_hex(16)
    db.add(event)
    delivery = unfinished_delivery(event, request, trigger, number, now)
    db.add(delivery)
    await db.flush()
    assert delivery.id is not None
    return Claim(
        event_pk=event.id,
        merchant_pk=event.merchant_id,
        lease_token=event.lease_token,
        delivery_pk=delivery.id,
        trigger=trigger,
        attempt_number=number,
        published_at=event.published_at,
        request=request,
    )


def unfinished_delivery(
    event: WebhookEvent, request: Request, trigger: Trigger, number: int, now: datetime
) -> WebhookDelivery:
    return WebhookDelivery(
        merchant_id=event.merchant_id,
        store_pk=event.store_pk,
        module_version=event.module_version,
        mode=event.mode,
        trigger=trigger.value,
        url=request.url,
        request_headers=[[name, value] for name, value in request.headers],
        request_body=request.body,
        error=UNFINISHED,
        attempted_at=now,
        event_pk=event.id,
        attempt_number=number,
    )


def record_result(delivery: WebhookDelivery, result: DeliveryResult) -> None:
    delivery.request_headers = [[name, value] for name, value in result.request_headers]
    delivery.status_code = result.status_code
    delivery.response_body = result.response_body
    delivery.error = result.error[:1000] if result.error else None
    delivery.duration_ms = result.duration_ms
    delivery.succeeded = result.succeeded


@dataclass(frozen=True)
class Outcome:
    """What finishing an attempt did to its event."""

    status: EventStatus | None  # None: the lease had passed to another worker
    first_success: bool  # the event's first success: publish-to-success latency is measurable


async def finish(
    *,
    db: AsyncSession,
    claim: Claim,
    result: DeliveryResult,
    now: datetime,
    policy: RetryPolicy,
) -> Outcome:
    """Record the attempt and move the event on, in the caller's write transaction.

    Only the current lease holder moves the event on; SUCCEEDED is final (a manual resend may
    have succeeded meanwhile). A failed scheduled attempt is retried per `policy` until the
    last; a failed queued resend leaves the event EXHAUSTED again."""
    delivery = await db.get(WebhookDelivery, claim.delivery_pk)
    if delivery is not None:
        record_result(delivery, result)
        db.add(delivery)
    event = (
        await db.exec(
            select(WebhookEvent).where(col(WebhookEvent.id) == claim.event_pk).with_for_update()
        )
    ).first()
    if event is None or event.lease_token != claim.lease_token:
        await db.flush()
        return Outcome(status=None, first_success=False)
    event.locked_until = None
    event.lease_token = None
    first_success = False
    if event.status == EventStatus.SUCCEEDED.value:
        pass
    elif result.succeeded:
        first_success = event.succeeded_at is None
        mark_succeeded(event, now)
    else:
        delay = (
            policy.delay_after(event.attempt_count, result.retry_after_seconds)
            if claim.trigger is Trigger.EVENT
            else None
        )
        _failed(event, result.error or "The attempt failed.", delay, now)
    db.add(event)
    await db.flush()
    return Outcome(status=EventStatus(event.status), first_success=first_success)


def mark_succeeded(event: WebhookEvent, now: datetime) -> None:
    event.status = EventStatus.SUCCEEDED.value
    event.status_reason = None
    event.next_attempt_at = None
    event.next_trigger = Trigger.EVENT.value
    if event.succeeded_at is None:
        event.succeeded_at = now


async def release(*, db: AsyncSession, claims: Iterable[Claim]) -> int:
    """Give back leases of attempts a stopping worker will not finish: due again at once for
    another worker (the attempt stays counted and recorded as unfinished)."""
    released = 0
    for claim in claims:
        outcome = await db.exec(
            update(WebhookEvent)
            .where(
                col(WebhookEvent.id) == claim.event_pk,
                col(WebhookEvent.lease_token) == claim.lease_token,
            )
            .values(locked_until=None, lease_token=None)
        )
        released += outcome.rowcount
    return released
