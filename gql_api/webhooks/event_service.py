"""The console's side of webhook events: listing, counting, refetching and resending them.

No GraphQL here. Every read is limited to the caller's merchant and, for a store-scoped caller
(STORE_* roles, sub-store API secrets), to its store; the attempts of an event follow the
delivery log's rule (service.visible_deliveries). Scheduling and sending belong to the outbox.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.models import Store, WebhookDelivery, WebhookEvent
from gql_api.audit import service as audit
from gql_api.channels.rules import IntegrationMode
from gql_api.errors import DomainError, FieldError, Problems, UserErrorCode
from gql_api.i18n import _, _n
from gql_api.ids import global_id, pk_of
from gql_api.pagination import Page, PageRequest, page_from_rows
from gql_api.permissions import Operation, Principal, confined_store_pk, require
from gql_api.scoping import scope_to_store
from gql_api.security.encryption import Encryptor
from gql_api.stores.service import require_store, store_by_pk
from gql_api.webhooks import outbox, resends
from gql_api.webhooks.events import FAILED_STATUSES, EventStatus, Trigger
from gql_api.webhooks.payloads import ModuleVersionValue
from gql_api.webhooks.sender import DeliveryResult
from gql_api.webhooks.service import (
    EffectiveWebhookSetting,
    refuse_past_rate,
    store_settings,
    visible_deliveries,
)

EVENT_ID_PATH = ("input", "id")
RESENDS_PER_MINUTE = 10  # per store, counted in the database (as test calls are)
EVENT_NOT_FOUND = _("No webhook event with this ID.")
_FAILED = [status.value for status in FAILED_STATUSES]


def as_utc(moment: datetime | None) -> datetime | None:
    """`moment` in UTC; a time without an offset is read as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999: the range's end
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


def _published_within(published_from: datetime | None, until: datetime | None) -> list[Any]:
    """From inclusive, until exclusive."""
    start, end = as_utc(published_from), as_utc(until)
    conditions: list[Any] = []
    if start is not None:
        conditions.append(col(WebhookEvent.published_at) >= start)
    if end is not None:
        conditions.append(col(WebhookEvent.published_at) < end)
    return conditions


@dataclass(frozen=True)
class EventFilter:
    """What Store.webhookEvents narrows to; every given condition must hold."""

    status: EventStatus | None = None
    type: str | None = None
    mode: IntegrationMode | None = None
    module_version: ModuleVersionValue | None = None
    published_from: datetime | None = None
    published_until: datetime | None = None


def events_query(
    *, principal: Principal, store_pk: int, filter: EventFilter
) -> SelectOfScalar[WebhookEvent]:
    """The events of the store `store_pk` that `principal` may read, filtered.

    The caller reached the store through visible_stores; the merchant and the store scope are
    applied again, so that this statement alone never shows another tenant's events."""
    require(principal, Operation.READ)
    statement = select(WebhookEvent).where(
        col(WebhookEvent.merchant_id) == principal.merchant_pk,
        col(WebhookEvent.store_pk) == store_pk,
        *_published_within(filter.published_from, filter.published_until),
    )
    statement = scope_to_store(statement, principal, Operation.READ, col(WebhookEvent.store_pk))
    if filter.status is not None:
        statement = statement.where(col(WebhookEvent.status) == filter.status.value)
    if filter.type is not None:
        statement = statement.where(col(WebhookEvent.type) == filter.type)
    if filter.mode is not None:
        statement = statement.where(col(WebhookEvent.mode) == filter.mode.value)
    if filter.module_version is not None:
        statement = statement.where(col(WebhookEvent.module_version) == filter.module_version.value)
    return statement


@dataclass(frozen=True)
class FailedCountKey:
    """Store.failedWebhookEventCount of one store over one window."""

    store_pk: int
    published_from: datetime | None
    published_until: datetime | None


async def failed_counts(
    *, db: AsyncSession, principal: Principal, keys: Sequence[FailedCountKey]
) -> list[int]:
    """How many events of each key's store are RETRYING or EXHAUSTED, in the key's window; one
    statement per window. A store `principal` may not read counts 0."""
    require(principal, Operation.READ)
    own_store = confined_store_pk(principal, Operation.READ)
    windows: dict[tuple[datetime | None, datetime | None], set[int]] = defaultdict(set)
    for key in keys:
        windows[(key.published_from, key.published_until)].add(key.store_pk)
    counts: dict[FailedCountKey, int] = {}
    for (start, end), store_pks in windows.items():
        readable = sorted(pk for pk in store_pks if own_store is None or pk == own_store)
        statement = (
            select(col(WebhookEvent.store_pk), func.count())
            .where(
                col(WebhookEvent.merchant_id) == principal.merchant_pk,
                col(WebhookEvent.store_pk).in_(readable),
                col(WebhookEvent.status).in_(_FAILED),
                *_published_within(start, end),
            )
            .group_by(col(WebhookEvent.store_pk))
        )
        found = dict((await db.exec(statement)).all()) if readable else {}
        for store_pk in store_pks:
            counts[FailedCountKey(store_pk, start, end)] = int(found.get(store_pk, 0))
    return [counts[key] for key in keys]


async def event_by_pk(
    *, db: AsyncSession, principal: Principal, pk: int, operation: Operation = Operation.READ
) -> tuple[WebhookEvent, Store] | None:
    """The event `pk` and its store, if `principal` may perform `operation` on it: the
    caller's merchant, a live store it can see, and its own store if it is store-scoped."""
    require(principal, operation)
    statement = select(WebhookEvent).where(
        col(WebhookEvent.id) == pk, col(WebhookEvent.merchant_id) == principal.merchant_pk
    )
    statement = scope_to_store(statement, principal, operation, col(WebhookEvent.store_pk))
    event = (await db.exec(statement)).first()
    if event is None:
        return None
    store = await store_by_pk(db=db, principal=principal, pk=event.store_pk)
    return (event, store) if store is not None else None


def status_reason_for(
    principal: Principal, setting: EffectiveWebhookSetting, event: WebhookEvent
) -> str | None:
    """The event's status reason as `principal` may read it.

    A failure's reason describes an attempt, and may name the receiver (its host, a redirect's
    target): a store-scoped caller reads it only when it may see every attempt of the event,
    i.e. the event was published after its store's own setting was last saved (the rule of
    visible_deliveries). A SKIPPED event's reason is one of the engine's own sentences."""
    reason = event.status_reason
    if reason is None or principal.store_pk is None:
        return reason
    if event.status == EventStatus.SKIPPED.value:
        return reason
    if setting.representative_hidden:
        return None
    if setting.store.is_representative:
        return reason
    if setting.updated_at is None or event.published_at < setting.updated_at:
        return None
    return reason


@dataclass(frozen=True)
class AttemptPageKey:
    """A page of one event's attempts. `setting` is the setting in force for the event's store,
    module version and mode, as the caller sees it (service.as_seen_by); it decides which
    attempts are shown and is not part of the key's identity."""

    event_pk: int
    request: PageRequest
    setting: EffectiveWebhookSetting = field(compare=False)


async def attempt_pages(
    *, db: AsyncSession, principal: Principal, keys: Sequence[AttemptPageKey]
) -> list[Page[WebhookDelivery]]:
    """A page of attempts per key, oldest first, each holding only what visible_deliveries lets
    `principal` see; one statement per page request and setting, however many events."""
    require(principal, Operation.READ)
    groups: dict[tuple[PageRequest, int, str, str], list[AttemptPageKey]] = defaultdict(list)
    for key in keys:
        setting = key.setting
        assert setting.store.id is not None
        group = (key.request, setting.store.id, setting.module_version.value, setting.mode.value)
        groups[group].append(key)
    pages: dict[AttemptPageKey, Page[WebhookDelivery]] = {}
    for (request, *_rest), members in groups.items():
        event_pks = sorted({key.event_pk for key in members})
        rows = await _attempts(db, principal, members[0].setting, request, event_pks)
        by_event: dict[int, list[WebhookDelivery]] = defaultdict(list)
        for row in rows:
            assert row.event_pk is not None
            by_event[row.event_pk].append(row)
        for key in members:
            pages[key] = page_from_rows(by_event.get(key.event_pk, []), request, _delivery_pk)
    return [pages[key] for key in keys]


async def _attempts(
    db: AsyncSession,
    principal: Principal,
    setting: EffectiveWebhookSetting,
    request: PageRequest,
    event_pks: list[int],
) -> Sequence[WebhookDelivery]:
    """Up to a page and one more of each event's visible attempts, oldest first."""
    limit, _backward, after, _before = request.validated()
    statement = select(WebhookDelivery).where(
        col(WebhookDelivery.merchant_id) == principal.merchant_pk,
        col(WebhookDelivery.store_pk) == setting.store.id,
        col(WebhookDelivery.event_pk).in_(event_pks),
    )
    if after is not None:
        statement = statement.where(col(WebhookDelivery.id) > after)
    statement = visible_deliveries(principal, setting, statement)
    rank = (
        func.row_number()
        .over(partition_by=col(WebhookDelivery.event_pk), order_by=col(WebhookDelivery.id))
        .label("rank")
    )
    ranked = statement.with_only_columns(col(WebhookDelivery.id), rank).subquery()
    chosen = select(ranked.c.id).where(ranked.c.rank <= limit + 1)
    return (
        await db.exec(
            select(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(chosen))
            .order_by(col(WebhookDelivery.id))
        )
    ).all()


@dataclass(frozen=True)
class AttemptCountKey:
    """WebhookEvent.attempts' totalCount of one event; `setting` as in AttemptPageKey."""

    event_pk: int
    setting: EffectiveWebhookSetting = field(compare=False)


async def attempt_counts(
    *, db: AsyncSession, principal: Principal, keys: Sequence[AttemptCountKey]
) -> list[int]:
    """How many attempts of each key's event `principal` may see (the attempts that
    attempt_pages lists on all pages); one statement per setting, however many events."""
    require(principal, Operation.READ)
    groups: dict[tuple[int, str, str], list[AttemptCountKey]] = defaultdict(list)
    for key in keys:
        setting = key.setting
        assert setting.store.id is not None
        groups[(setting.store.id, setting.module_version.value, setting.mode.value)].append(key)
    counts: dict[int, int] = {}
    for members in groups.values():
        setting = members[0].setting
        statement = select(WebhookDelivery).where(
            col(WebhookDelivery.merchant_id) == principal.merchant_pk,
            col(WebhookDelivery.store_pk) == setting.store.id,
            col(WebhookDelivery.event_pk).in_(sorted({key.event_pk for key in members})),
        )
        visible = visible_deliveries(principal, setting, statement).whereclause
        assert visible is not None
        counted = (
            select(col(WebhookDelivery.event_pk), func.count())
            .where(visible)
            .group_by(col(WebhookDelivery.event_pk))
        )
        for event_pk, total in (await db.exec(counted)).all():
            if event_pk is not None:  # a test call has no event
                counts[event_pk] = int(total)
    return [counts.get(key.event_pk, 0) for key in keys]


def _delivery_pk(row: WebhookDelivery) -> int:
    assert row.id is not None
    return row.id


@dataclass(frozen=True)
class StartedResend:
    """A manual resend counted and recorded as unfinished: send `claim.request`, then
    finish_resend()."""

    claim: outbox.Claim
    store_id: str
    label: str  # the event as the audit event names it


async def start_resend(
    *,
    db: AsyncSession,
    principal: Principal,
    encryptor: Encryptor,
    event_id: str,
    now: datetime,
) -> StartedResend:
    """Count one manual resend of the event `event_id` names and record it as an unfinished
    MANUAL attempt, in the caller's write transaction; the caller sends the request with no
    transaction open, then finish_resend records what came back.

    At most outbox.MANUAL_RESEND_LIMIT per event, counted in the database (concurrent resends
    cannot pass it), and at most RESENDS_PER_MINUTE per store (WEBHOOK_RESEND_RATE_LIMITED,
    checked before the event's own count is touched). A store-scoped caller may not send to
    the representative store's URL that its store follows, as for the test call
    (WEBHOOK_REPRESENTATIVE_SETTING)."""
    require(principal, Operation.WEBHOOK_MANAGE)
    pk = pk_of(event_id, "WebhookEvent")
    found = (
        await event_by_pk(db=db, principal=principal, pk=pk, operation=Operation.WEBHOOK_MANAGE)
        if pk is not None
        else None
    )
    if found is None:
        raise DomainError.single(UserErrorCode.NOT_FOUND, EVENT_ID_PATH, EVENT_NOT_FOUND)
    event, store = found
    setting = await store_settings(
        db, principal, store, ModuleVersionValue(event.module_version), IntegrationMode(event.mode)
    )
    if setting.representative_hidden:
        raise DomainError.single(
            UserErrorCode.WEBHOOK_REPRESENTATIVE_SETTING,
            EVENT_ID_PATH,
            _(
                "This store uses the representative store's webhook setting, which only "
                "merchant-wide roles can send to."
            ),
        )
    # MANUAL attempts that workers make for webhookEventsResendFailed count as well.
    await refuse_past_rate(
        db,
        store_pk=event.store_pk,
        trigger=Trigger.MANUAL.value,
        per_minute=RESENDS_PER_MINUTE,
        now=now,
        error=FieldError(
            UserErrorCode.WEBHOOK_RESEND_RATE_LIMITED,
            EVENT_ID_PATH,
            _n(
                "At most {count} resend a minute per store; try again shortly.",
                "At most {count} resends a minute per store; try again shortly.",
                RESENDS_PER_MINUTE,
            ),
        ),
    )
    claim, reason = await resends.start_manual_resend(
        db=db, encryptor=encryptor, event=event, setting=setting, now=now
    )
    if claim is None:
        problems = Problems()
        if reason is not None:
            code = (
                UserErrorCode.WEBHOOK_URL_NOT_SET
                if setting.url is None
                else UserErrorCode.INVALID_INPUT
            )
            problems.add(code, EVENT_ID_PATH, reason)
        if reason is None or event.manual_resend_count >= outbox.MANUAL_RESEND_LIMIT:
            problems.add(
                UserErrorCode.MAX_WEBHOOK_RETRY_COUNT_REACHED,
                EVENT_ID_PATH,
                _n(
                    "An event can be resent at most {count} time; this one has been.",
                    "An event can be resent at most {count} times; this one has been.",
                    outbox.MANUAL_RESEND_LIMIT,
                ),
            )
        problems.raise_if_any()
    assert claim is not None
    label = f"{event.module_version} {event.mode} {event.type} event “{event.event_id}”"
    return StartedResend(claim=claim, store_id=store.store_id, label=label)


@dataclass(frozen=True)
class Resent:
    event: WebhookEvent
    delivery: WebhookDelivery
    first_success: bool  # the event's first success: publish-to-success latency is measurable


async def finish_resend(
    *,
    db: AsyncSession,
    principal: Principal,
    started: StartedResend,
    result: DeliveryResult,
    now: datetime,
) -> Resent:
    """Record what the receiver did with a started resend (a success ends the event's schedule:
    SUCCEEDED; a failure leaves the event as it was) and write the audit event, in the
    caller's write transaction. The audit summary names the outcome, never the URL or the
    receiver's answer (either may carry a token)."""
    require(principal, Operation.WEBHOOK_MANAGE)
    delivery, event, first_success = await resends.finish_manual_resend(
        db=db, claim=started.claim, result=result, now=now
    )
    if delivery is None or event is None:  # pruned, or its store deleted, meanwhile
        raise DomainError.single(UserErrorCode.NOT_FOUND, EVENT_ID_PATH, EVENT_NOT_FOUND)
    if result.succeeded:
        outcome = "delivered (HTTP 200)"
    elif result.status_code is not None:
        outcome = f"failed (HTTP {result.status_code})"
    else:
        outcome = "failed (no response)"
    await audit.record_by(
        db,
        principal,
        "webhook_event.resend",
        f"Resent the {started.label} (manual resend {started.claim.attempt_number} of "
        f"{outbox.MANUAL_RESEND_LIMIT}): {outcome}",
        store_id=started.store_id,
        target_id=global_id("WebhookEvent", started.claim.event_pk),
    )
    return Resent(event=event, delivery=delivery, first_success=first_success)


async def resend_failed(
    *,
    db: AsyncSession,
    principal: Principal,
    store_id: str,
    published_from: datetime | None,
    published_until: datetime | None,
    now: datetime,
) -> int:
    """Queue one more attempt for the store's failed events published in [from, until), for
    the workers to send (resends.queue_failed_resends), in the caller's write transaction;
    returns how many were queued.

    Bad input changes nothing and every problem is reported at once. A store-scoped caller
    may not queue events bound for the representative store's URL that its store follows
    (WEBHOOK_REPRESENTATIVE_SETTING); nothing is queued then."""
    require(principal, Operation.WEBHOOK_MANAGE)
    start, end = as_utc(published_from), as_utc(published_until)
    problems = Problems()
    if start is not None and end is not None and start >= end:
        problems.add(
            UserErrorCode.INVALID_INPUT, ("input", "until"), _("until must be after from.")
        )
    store: Store | None = None
    try:
        store = await require_store(
            db=db, principal=principal, operation=Operation.WEBHOOK_MANAGE, store_id=store_id
        )
    except DomainError as missing:
        problems.errors.extend(missing.errors)
    problems.raise_if_any()
    assert store is not None and store.id is not None
    await _refuse_representative_events(db, principal, store, start, end)
    queued = await resends.queue_failed_resends(
        db=db, store_pk=store.id, now=now, published_from=start, published_until=end
    )
    window = "".join(
        (
            f" from {start.isoformat()}" if start is not None else "",
            f" until {end.isoformat()}" if end is not None else "",
        )
    )
    await audit.record_by(
        db,
        principal,
        "webhook_event.resend_failed",
        f"Queued {queued} failed webhook events for resending (published{window or ' any time'})",
        store_id=store.store_id,
    )
    return queued


async def _refuse_representative_events(
    db: AsyncSession,
    principal: Principal,
    store: Store,
    start: datetime | None,
    end: datetime | None,
) -> None:
    if principal.store_pk is None:
        return
    hidden = []
    for version in ModuleVersionValue:
        for mode in IntegrationMode:
            setting = await store_settings(db, principal, store, version, mode)
            if setting.representative_hidden:
                hidden.append(
                    and_(
                        col(WebhookEvent.module_version) == version.value,
                        col(WebhookEvent.mode) == mode.value,
                    )
                )
    if not hidden:
        return
    bound_there = (
        await db.exec(
            select(func.count()).where(
                col(WebhookEvent.store_pk) == store.id,
                col(WebhookEvent.status).in_(_FAILED),
                *_published_within(start, end),
                or_(*hidden),
            )
        )
    ).one()
    if bound_there:
        raise DomainError.single(
            UserErrorCode.WEBHOOK_REPRESENTATIVE_SETTING,
            ("input", "storeId"),
            _(
                "Some of these events go to the representative store's webhook URL, which this "
                "store follows; only merchant-wide roles can resend them."
            ),
        )
