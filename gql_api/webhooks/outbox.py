"""The outbox of webhook events: publishing, claiming due events under a lease, recording each
attempt and scheduling the next (resends: webhooks.resends; retention: webhooks.upkeep).

Every decision is made in the database, so any number of processes may share the work: an
event is accepted once per (store, publisher id) by a unique index; a worker claims due events
with `SELECT … FOR UPDATE SKIP LOCKED` (on SQLite the write transaction is already exclusive)
and a lease (`locked_until`, `lease_token`); only the holder of the current lease may move an
event on, and an event whose lease ran out (its worker died) is due again, with the same
`webhook-id`. No transaction stays open while a receiver is called.

The worker's hot path (claim_due, finish_many) runs Core statements over whole batches: a claim
reads its candidates, the settings in force and the signing secrets in one statement each,
then leases every chosen event in one statement and records the attempts in one; attempts
that end close together are recorded in one transaction. Per event, that is a fraction of a
statement where loading and flushing ORM objects one by one cost about eleven.
"""

from __future__ import annotations

import logging
import random
import secrets as token_source
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    text,
    tuple_,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import Executable
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.clock import database_now
from db.driver_query import DriverStatement
from db.models import Store, WebhookDelivery, WebhookEvent, WebhookSecret, WebhookSetting
from gql_api.channels.rules import IntegrationMode
from gql_api.i18n import SOURCE_LOCALE, Message, _
from gql_api.security.encryption import Encryptor
from gql_api.webhooks import signing
from gql_api.webhooks.events import (
    EventInput,
    EventStatus,
    NotDeliverable,
    Rendered,
    Trigger,
    render,
)
from gql_api.webhooks.payloads import ModuleVersionValue
from gql_api.webhooks.sender import DeliveryResult
from gql_api.webhooks.service import (
    MAX_ACTIVE_SECRETS,
    EffectiveWebhookSetting,
    SettingRecord,
    active_secrets,
    effective,
    secret_context,
    setting_in_force,
)

# What happened to an event or an attempt (WebhookEvent.status_reason, WebhookDelivery.error) is
# recorded once, in English, as a fact of that moment: it is read later in either language, and
# much of it is the receiver's or the network library's own words, which no catalog holds.
UNFINISHED = "Not finished: the attempt was in progress, or its worker stopped before it ended."
MANUAL_RESEND_LIMIT = 5  # per event (PortOne: MAX_WEBHOOK_RETRY_COUNT_REACHED)
LEASE_MARGIN_SECONDS = 10.0
CANDIDATES_PER_CLAIM = 2  # rows looked at per free slot, so that full hosts can be passed over
logger = logging.getLogger("gql_api.webhooks.outbox")
_EVENTS: Table = WebhookEvent.__table__  # type: ignore[attr-defined]
_DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[attr-defined]


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


@dataclass(frozen=True)
class Accepting:
    """What publishing an event decided from reads alone: the event already accepted under
    its publisher id (a duplicate), or the row to insert."""

    existing: WebhookEvent | None
    values: dict[str, Any]


async def prepare_publish(*, db: AsyncSession, event: EventInput, now: datetime) -> Accepting:
    """Read what publishing `event` needs (its store, an event already accepted under its id,
    the setting in force) and decide its delivery state: due at once, or SKIPPED (with the
    reason) when the setting in force has nowhere to send it.

    Reads only, so that the write that follows (insert_published) holds SQLite's write lock
    for one INSERT: the intake's write lock is what a worker's claim waits for. A setting
    changed in between is met by the claim, which reads the setting in force again; a
    decision to skip, which no claim revisits, is confirmed in the write (confirm_skipped)."""
    store = await live_store(db, event.store_id)
    assert store.id is not None
    existing = await find_event(db, store.id, event.event_id)
    if existing is not None:
        return Accepting(existing=existing, values={})
    setting = await setting_in_force(db, store, event.module_version, event.mode)
    status, reason, due = _initial_state(setting, event, now)
    values: dict[str, Any] = {
        "merchant_id": store.merchant_id,
        "store_pk": store.id,
        "event_id": event.event_id,
        "module_version": event.module_version.value,
        "mode": event.mode.value,
        "type": event.type,
        "data": event.data,
        "message_id": signing.new_message_id(),
        "status": status.value,
        "status_reason": reason,
        "published_at": now,
        "next_attempt_at": due,
        "next_trigger": Trigger.EVENT.value,
        "attempt_count": 0,
        "manual_resend_count": 0,
    }
    return Accepting(existing=None, values=values)


async def confirm_skipped(
    *, db: AsyncSession, event: EventInput, values: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """`values` (prepare_publish's row), with a SKIPPED decision confirmed in the caller's
    write transaction: the setting in force read again, and the event due after all when it
    can now be sent (a URL saved since prepare_publish read it). SKIPPED is final, so a
    decision taken on a stale read would lose the event; this costs one read, only when the
    event is to be skipped. On SQLite the write lock makes the confirmation exact; on
    PostgreSQL a setting saved between this read and the commit is still missed."""
    if values["status"] != EventStatus.SKIPPED.value:
        return values
    key = (values["store_pk"], values["module_version"], values["mode"])
    setting = (await settings_in_force(db, {key})).get(key)
    if setting is None:  # the store was deleted meanwhile: the claim records it as skipped
        return values
    status, reason, due = _initial_state(setting, event, now)
    return values | {"status": status.value, "status_reason": reason, "next_attempt_at": due}


_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)


# PostgreSQL: the channel on which a publish wakes idle workers of other processes at once.
DUE_CHANNEL = "webhook_events_due"
_NOTIFY_DUE = text(f"NOTIFY {DUE_CHANNEL}")


async def insert_published(*, db: AsyncSession, values: dict[str, Any]) -> int:
    """Insert an event prepare_publish decided on, in the caller's write transaction; its
    primary key. A concurrent duplicate fails the unique index (the caller reads it back).

    On PostgreSQL a due event is also announced on DUE_CHANNEL (delivered at commit, never
    for a rolled-back insert), so that workers in other processes need not wait for their
    next poll; the poll stays what guarantees delivery."""
    inserted = await db.exec(_INSERT_EVENT, params=values)
    if values["status"] == EventStatus.PENDING.value and db.get_bind().dialect.name != "sqlite":
        await db.exec(_NOTIFY_DUE)  # type: ignore[call-overload]
    return int(inserted.scalar_one())


async def publish(*, db: AsyncSession, event: EventInput, now: datetime) -> Published:
    """Accept `event` in the caller's write transaction, with the state of its delivery
    (prepare_publish).

    Idempotent: the same publisher id for the same store answers with the event already
    accepted (a concurrent duplicate fails the unique index; the caller reads it back).
    """
    accepting = await prepare_publish(db=db, event=event, now=now)
    if accepting.existing is not None:
        return Published(accepting.existing, duplicate=True)
    row = WebhookEvent(**accepting.values)
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


@lru_cache(maxsize=1024)  # a function of the URL alone, asked for every event a claim looks at
def receiver_host(url: str) -> str:
    """The receiver, as far as per-host concurrency is concerned: the host as named, in one
    spelling (case, a trailing dot and the default port do not make another host). Other names
    of one machine are bounded by the per-merchant limit instead."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"


SecretsCache = dict[tuple[int, str], list[str]]


class EventBody(Protocol):
    """What a request is made of: an event row, or what a claim read of one."""

    @property
    def type(self) -> str: ...
    @property
    def data(self) -> dict[str, object]: ...
    @property
    def message_id(self) -> str: ...
    @property
    def published_at(self) -> datetime: ...


def _render(setting: EffectiveWebhookSetting, event: EventBody) -> Rendered:
    return render(
        module_version=setting.module_version,
        event_type=event.type,
        data=event.data,
        published_at=event.published_at,
        payload_version=setting.payload_version,
        content_type=setting.content_type,
    )


def _signed(
    setting: EffectiveWebhookSetting,
    event: EventBody,
    rendered: Rendered,
    now: datetime,
    in_use: Sequence[str],
) -> Request:
    """The request as sent: V2 bodies carry webhook-id (the event's, the same on every
    attempt), webhook-timestamp (now) and a signature per active secret."""
    assert setting.url is not None
    headers = [("content-type", rendered.content_type.media_type)]
    if setting.module_version is ModuleVersionValue.V2:
        timestamp = int(now.timestamp())
        headers += [("webhook-id", event.message_id), ("webhook-timestamp", str(timestamp))]
        if in_use:
            signature = signing.signature_header(in_use, event.message_id, timestamp, rendered.body)
            headers.append(("webhook-signature", signature))
    return Request(
        url=setting.url,
        headers=headers,
        body=rendered.body,
        require_https=setting.mode is IntegrationMode.LIVE,
    )


async def build_request(
    db: AsyncSession,
    encryptor: Encryptor,
    setting: EffectiveWebhookSetting,
    event: EventBody,
    now: datetime,
    secrets_cache: SecretsCache | None = None,
) -> Request:
    """The signed request for `event` under the setting in force (raises NotDeliverable).
    `secrets_cache` keeps the active secrets per store and mode for one claim."""
    assert setting.url is not None
    rendered = _render(setting, event)
    in_use: list[str] = []
    if setting.module_version is ModuleVersionValue.V2:
        key = (setting.source_store_pk, setting.mode.value)
        if secrets_cache is not None and key in secrets_cache:
            in_use = secrets_cache[key]
        else:
            in_use = await active_secrets(db, encryptor, setting.source_store_pk, setting.mode)
            if secrets_cache is not None:
                secrets_cache[key] = in_use
    return _signed(setting, event, rendered, now, in_use)


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


def setting_key(event: WebhookEvent | Candidate) -> SettingKey:
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
    """What a worker has in flight, and how much it allows, per receiver host and merchant;
    and the claims it may also hold *ready* for hosts at their limit (sent when one of the
    host's attempts ends: gql_api.webhooks.worker), per host and in all. Ready claims count
    towards neither the merchant's share nor the `limit` of a claim (attempts sent at once)."""

    host_in_flight: Mapping[str, int]
    per_host_limit: int
    merchant_in_flight: Mapping[int, int] = field(default_factory=dict)
    per_merchant_limit: int | None = None
    host_ready: Mapping[str, int] = field(default_factory=dict)
    ready_per_host: int = 0
    ready_limit: int = 0
    # The merchants whose attempts each host is being sent: a ready claim replaces one of
    # them when it ends, so only a host sending for its merchant alone takes ready claims (a
    # merchant at its share would otherwise get another attempt in through a shared host).
    host_merchants: Mapping[str, frozenset[int]] = field(default_factory=dict)
    # A ready claim's lease: it may wait for one of its host's attempts before its own.
    ready_lease: timedelta = timedelta(0)


class DeliveryState(Protocol):
    """The columns of an event that its delivery moves on (an ORM row, or an EventState)."""

    status: str
    status_reason: str | None
    next_attempt_at: datetime | None
    next_trigger: str
    locked_until: datetime | None
    lease_token: str | None
    attempt_count: int
    manual_resend_count: int
    succeeded_at: datetime | None


@dataclass
class EventState:
    """An event's delivery state as read by a Core statement, changed in Python while its row
    is locked (FOR UPDATE on PostgreSQL, the write transaction on SQLite), and written back by
    one statement for a whole batch (write_states)."""

    id: int
    status: str
    status_reason: str | None
    next_attempt_at: datetime | None
    next_trigger: str
    locked_until: datetime | None
    lease_token: str | None
    attempt_count: int
    manual_resend_count: int
    succeeded_at: datetime | None


_STATE_FIELDS = tuple(f.name for f in fields(EventState))
_STATE_COLUMNS = tuple(_EVENTS.c[name] for name in _STATE_FIELDS)
_BODY_FIELDS = ("merchant_id", "store_pk", "module_version", "mode", "type", "data", "message_id")
_BODY_COLUMNS = (*(_EVENTS.c[name] for name in _BODY_FIELDS), _EVENTS.c.published_at)


@dataclass(frozen=True)
class Candidate:
    """A due event as a claim reads it: what its request is made of, and its state."""

    state: EventState
    merchant_id: int
    store_pk: int
    module_version: str
    mode: str
    type: str
    data: dict[str, object]
    message_id: str
    published_at: datetime


_STATE_WIDTH = len(_STATE_FIELDS)


def _state(row: Sequence[Any]) -> EventState:
    """The EventState of a row whose first columns are _STATE_COLUMNS, in their order."""
    return EventState(*row[:_STATE_WIDTH])


def _candidate(row: Sequence[Any]) -> Candidate:
    """A row of _candidates(): _STATE_COLUMNS, then _BODY_COLUMNS (Candidate's field order)."""
    return Candidate(_state(row), *row[_STATE_WIDTH:])


# _candidate builds by position: Candidate's fields after `state` are _BODY_COLUMNS' names.
assert tuple(f.name for f in fields(Candidate))[1:] == (*_BODY_FIELDS, "published_at")
# Where a candidate row's setting key is (setting_key without parsing the row).
_KEY_AT = tuple(
    _STATE_WIDTH + _BODY_FIELDS.index(name) for name in ("store_pk", "module_version", "mode")
)


# One shape for every change of an event's delivery state, run as one executemany per batch.
_WRITE_STATE = DriverStatement(
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("b_id"))
    .values(
        {
            name: bindparam(f"b_{name}", type_=_EVENTS.c[name].type)
            for name in _STATE_FIELDS
            if name != "id"
        }
    )
)
# Without a guaranteed order of the rows returned (SQLite cannot promise one, and SQLAlchemy
# would then insert row by row): each attempt is known by its event, one per claim.
_INSERT_DELIVERIES = DriverStatement(
    insert(_DELIVERIES).returning(_DELIVERIES.c.event_pk, _DELIVERIES.c.id)
)
_RESULT_FIELDS = (
    "request_headers",
    "status_code",
    "response_body",
    "error",
    "duration_ms",
    "succeeded",
)
_WRITE_RESULT = DriverStatement(
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("b_id"))
    .values(
        {name: bindparam(f"b_{name}", type_=_DELIVERIES.c[name].type) for name in _RESULT_FIELDS}
    )
)


async def _core(
    db: AsyncSession, statement: DriverStatement | Executable, params: Any
) -> Sequence[Sequence[Any]]:
    """Run a hot-path statement on the session's connection (the caller's transaction), past
    the ORM's execution layer, and as a DriverStatement past SQLAlchemy's (on PostgreSQL; on
    SQLite in a short write transaction): plain rows, read by position. The ORM's result
    set-up and row loading cost a worker more than running the statement did, and then
    SQLAlchemy's execution layer did."""
    connection = await db.connection()
    if isinstance(statement, DriverStatement):
        return await statement.run(connection, params)
    return (await connection.execute(statement, params)).all()


async def write_states(db: AsyncSession, states: Collection[EventState]) -> None:
    """Write events' new states (EventState), in one statement whatever their number."""
    if states:
        params = [{f"b_{name}": getattr(s, name) for name in _STATE_FIELDS} for s in states]
        await _core(db, _WRITE_STATE, params)


async def _insert_deliveries(db: AsyncSession, rows: list[dict[str, Any]]) -> dict[int, int]:
    """Insert attempts (one per event) in one statement; their ids by event."""
    if not rows:
        return {}
    inserted = await _core(db, _INSERT_DELIVERIES, rows)
    return {int(event_pk): int(pk) for event_pk, pk in inserted}


_PKS: Any = bindparam("pks", expanding=True)
_STORES: Table = Store.__table__  # type: ignore[attr-defined]
_STORE_FIELDS = tuple(_STORES.c.keys())
_OWNER = aliased(Store)
# Core, not the ORM: a cycle's stores are built from plain rows (the ORM's loading cost a
# worker about 4 % of its CPU for one or two stores per cycle).
_STORES_AND_SETTINGS = DriverStatement(
    core_select(*_STORES.c, *(col(getattr(WebhookSetting, name)) for name in SettingRecord._fields))
    .outerjoin(WebhookSetting, col(WebhookSetting.store_pk) == col(Store.id))
    .where(
        or_(
            col(Store.id).in_(_PKS),
            and_(
                # Bare, not `= 1` as SQLAlchemy writes a boolean column: SQLite matches only
                # the bare form to the partial index uq_stores_one_representative (WHERE
                # is_representative) and would otherwise read every store of the merchant.
                literal_column("stores.is_representative"),
                col(Store.merchant_id).in_(
                    select(_OWNER.merchant_id).where(col(_OWNER.id).in_(_PKS))
                ),
            ),
        )
    )
    .order_by(col(Store.id)),
    lists=("pks",),
)


_ACTIVE_SECRETS = DriverStatement(
    select(col(WebhookSecret.store_pk), col(WebhookSecret.mode), col(WebhookSecret.cipher))
    .where(col(WebhookSecret.store_pk).in_(_PKS), col(WebhookSecret.expired_at).is_(None))
    .order_by(col(WebhookSecret.id)),
    lists=("pks",),
)
# The hot path's statements are built once (building one costs more than running it).
_LOCKED_STATES = DriverStatement(
    select(*_STATE_COLUMNS)
    .where(col(WebhookEvent.id).in_(_PKS))
    .order_by(col(WebhookEvent.id))
    .with_for_update(),
    lists=("pks",),
)
# PostgreSQL: the same, with the database's clock (db.clock.database_now) read by the statement.
_LOCKED_STATES_AT = DriverStatement(
    core_select(*_STATE_COLUMNS, func.statement_timestamp().label("database_now"))
    .where(col(WebhookEvent.id).in_(_PKS))
    .order_by(col(WebhookEvent.id))
    .with_for_update(),
    lists=("pks",),
)


def _candidates(conditions: list[Any]) -> Any:
    """Due events, oldest due first, locked (other workers skip them) while deciding."""
    return (
        select(*_STATE_COLUMNS, *_BODY_COLUMNS)
        .where(*conditions)
        .order_by(col(WebhookEvent.next_attempt_at), col(WebhookEvent.id))
        .limit(bindparam("n"))
        .with_for_update(skip_locked=True)
    )


_NOW: Any = bindparam("now", type_=_EVENTS.c.next_attempt_at.type)
_DUE_CANDIDATES = DriverStatement(
    _candidates(
        [
            col(WebhookEvent.next_attempt_at) <= _NOW,
            or_(col(WebhookEvent.locked_until).is_(None), col(WebhookEvent.locked_until) < _NOW),
        ]
    )
)


async def settings_in_force(
    db: AsyncSession, keys: Collection[SettingKey]
) -> dict[SettingKey, EffectiveWebhookSetting | None]:
    """The setting in force for each (store, module version, mode), None for a deleted store:
    setting_in_force for many at once, in one statement (the stores and their merchants'
    representative stores, with their settings)."""
    if not keys:
        return {}
    params = {"pks": sorted({key[0] for key in keys})}
    rows = await _core(db, _STORES_AND_SETTINGS, params)
    by_pk: dict[int | None, Store] = {}
    representative: dict[int, Store] = {}
    records: dict[SettingKey, SettingRecord] = {}
    width = len(_STORE_FIELDS)
    for row in rows:
        setting = row[width:]
        store = by_pk.get(row[0])
        if store is None:
            store = by_pk[row[0]] = Store(**dict(zip(_STORE_FIELDS, row[:width], strict=True)))
        if store.is_representative:
            representative.setdefault(store.merchant_id, store)
        if setting[0] is not None:
            record = SettingRecord(*setting)
            records[(record.store_pk, record.module_version, record.mode)] = record
    found: dict[SettingKey, EffectiveWebhookSetting | None] = {}
    for key in keys:
        pk, version, mode = key
        own = by_pk.get(pk)
        if own is None or own.deleted_at is not None:
            found[key] = None
            continue
        rep = representative.get(own.merchant_id)
        assert rep is None or rep.id is not None
        found[key] = effective(
            own,
            ModuleVersionValue(version),
            IntegrationMode(mode),
            records.get(key),
            (rep, records.get((rep.id, version, mode))) if rep and rep.id else None,
        )
    return found


SecretsFound = dict[tuple[int, str], list[str] | Exception]


async def _secrets_for(
    db: AsyncSession, encryptor: Encryptor, keys: Collection[tuple[int, str]]
) -> SecretsFound:
    """The active signing secrets of each (store, mode), oldest first, at most
    MAX_ACTIVE_SECRETS (active_secrets for many at once), in one statement; a store and mode
    whose secrets cannot be decrypted get the error instead."""
    if not keys:
        return {}
    pks = sorted({key[0] for key in keys})
    rows = await _core(db, _ACTIVE_SECRETS, {"pks": pks})
    ciphers: dict[tuple[int, str], list[str]] = {key: [] for key in keys}
    for store_pk, mode, cipher in rows:
        held = ciphers.get((store_pk, mode))
        if held is not None and len(held) < MAX_ACTIVE_SECRETS:
            held.append(cipher)
    found: SecretsFound = {}
    for (store_pk, mode), held in ciphers.items():
        context = secret_context(store_pk, mode)
        try:
            found[(store_pk, mode)] = [encryptor.decrypt(c, context=context) for c in held]
        except Exception as error:  # one store's trouble must not stop the others
            found[(store_pk, mode)] = error
    return found


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
    finished: Collection[EventState] = (),
) -> ClaimResult:
    """Lease up to `limit` due events to send at once, and up to `capacity.ready_limit` more for
    hosts at their limit (the worker sends them as the host's attempts end), in the caller's
    write transaction, oldest due first.
    `finished`: new states finish_many decided in this transaction and left unwritten
    (`unwritten`), written with the claim's in one statement; those events are not claimed
    (their rows still show the old state, an expired lease perhaps).

    Events whose receiver host, or whose merchant, is at its limit in this worker are left for
    later, and settings (`passed_over`) known to send there are not even looked at, so that one
    slow receiver (however many names it is reached by) cannot hold up the others. Each claimed
    attempt is recorded at once as an unfinished delivery, so that an attempt whose worker died
    is visible as such. An attempt whose worker died counts: an event whose last scheduled
    attempt (or a queued resend) did not finish ends EXHAUSTED instead of being tried again,
    so an event that kills its worker cannot do so for ever. An event whose request cannot be
    prepared (a secret no key decrypts, a stored URL that no longer parses, any unexpected
    error rendering or signing it) fails that attempt, saying why, and the others go on.

    Statements: the candidates, the settings in force (two), the secrets, one write of every
    event's new state, one insert of every attempt (of every 32: DriverStatement's pages);
    whatever the number of events.
    """
    policy = policy or RetryPolicy()
    result = ClaimResult()
    hosts = dict(capacity.host_in_flight)
    merchants = dict(capacity.merchant_in_flight)
    ready = dict(capacity.host_ready)
    host_merchants = {host: set(found) for host, found in capacity.host_merchants.items()}
    sends_left, ready_left = limit, capacity.ready_limit
    # Enough rows for the larger of the two: ready claims are for hosts whose sends are full,
    # so they and the sends seldom both use their whole share (every row costs its decoding).
    wanted = max(limit, ready_left) * CANDIDATES_PER_CLAIM
    skipped_settings = set(passed_over)
    if skipped_settings:
        statement = _candidates(due(now, skipped_settings))
        rows = await _core(db, statement, {"n": wanted})
    else:
        rows = await _core(db, _DUE_CANDIDATES, {"now": now, "n": wanted})
    # Parsed as they are looked at: a claim stops when it has chosen enough, usually half way.
    candidates = (_candidate(row) for row in rows)
    store_at, version_at, mode_at = _KEY_AT
    keys = {(row[store_at], row[version_at], row[mode_at]) for row in rows}
    settings = await settings_in_force(db, keys)
    written: list[EventState] = []  # every event this claim moves on, leased or not
    chosen: list[tuple[Candidate, EffectiveWebhookSetting, Rendered, timedelta]] = []
    attempts: list[dict[str, Any]] = []

    def not_prepared(event: Candidate, url: str, error: Exception) -> None:
        """This event's request could not be prepared: its attempt fails, saying so (retried
        per the schedule, then EXHAUSTED), and the claim goes on with the others. Raised, the
        error would fail every claim, and every worker's, for as long as the event is due."""
        logger.error(
            "could not prepare a webhook attempt", exc_info=error, extra={"event": event.state.id}
        )
        state = event.state
        try:
            attempts.append(_not_prepared(event, url, error, now, policy))
        except Exception:  # not even its attempt can be counted (a damaged row): it ends here
            _finish_without_sending(
                state, EventStatus.EXHAUSTED, f"Not sent: {type(error).__name__} (see the log)."
            )
        written.append(state)
        result.exhausted += state.status == EventStatus.EXHAUSTED.value

    finished_pks = {state.id for state in finished}
    for event in candidates:
        if sends_left <= 0 and ready_left <= 0:
            break
        state = event.state
        if state.id in finished_pks:
            continue
        manual = state.next_trigger == Trigger.MANUAL.value
        if state.locked_until is not None and (
            manual or state.attempt_count >= policy.max_attempts
        ):
            _finish_without_sending(
                state,
                EventStatus.EXHAUSTED,
                "The last attempt did not finish: its worker stopped while sending it.",
            )
            written.append(state)
            result.exhausted += 1
            continue
        if manual and state.manual_resend_count >= MANUAL_RESEND_LIMIT:
            _finish_without_sending(
                state,
                EventStatus.EXHAUSTED,
                f"Not resent: this event was resent {MANUAL_RESEND_LIMIT} times already.",
            )
            written.append(state)
            result.exhausted += 1
            continue
        setting = settings.get(setting_key(event))
        reason: str | None = None
        if setting is None:
            reason = "The store was deleted."
        elif setting.url is None:
            reason = recorded(no_url_reason(setting))
        if reason is not None or setting is None or setting.url is None:
            _finish_without_sending(state, EventStatus.SKIPPED, reason or "")
            written.append(state)
            result.skipped += 1
            continue
        try:
            host = receiver_host(setting.url)
        except Exception as error:  # a URL stored before its checks (a port out of range)
            not_prepared(event, setting.url, error)
            continue
        merchant_full = (
            capacity.per_merchant_limit is not None
            and merchants.get(event.merchant_id, 0) >= capacity.per_merchant_limit
        )
        host_full = hosts.get(host, 0) >= capacity.per_host_limit
        to_ready = (
            host_full
            and ready.get(host, 0) < capacity.ready_per_host
            and host_merchants.get(host) == {event.merchant_id}
            # Not an event's last attempt, nor a resend: a claim made ready is counted, and
            # were its worker to die before sending it, the attempt would count as unfinished
            # (its event EXHAUSTED "while sending it", never having been sent).
            and state.next_trigger == Trigger.EVENT.value
            and state.attempt_count + 1 < policy.max_attempts
        )
        if (host_full and not to_ready) or (not host_full and merchant_full):
            result.passed_over[setting_key(event)] = host
            continue
        if (ready_left if to_ready else sends_left) <= 0:
            continue  # no room of that kind left in this claim; the event stays due
        try:
            rendered = _render(setting, event)
        except NotDeliverable as refused:  # the payload version cannot carry this type
            _finish_without_sending(state, EventStatus.SKIPPED, recorded(refused.message))
            written.append(state)
            result.skipped += 1
            continue
        except Exception as error:
            not_prepared(event, setting.url, error)
            continue
        if to_ready:
            ready[host] = ready.get(host, 0) + 1
            ready_left -= 1
        else:
            hosts[host] = hosts.get(host, 0) + 1
            merchants[event.merchant_id] = merchants.get(event.merchant_id, 0) + 1
            host_merchants.setdefault(host, set()).add(event.merchant_id)
            sends_left -= 1
        chosen.append((event, setting, rendered, capacity.ready_lease if to_ready else lease))
    signers = {
        (s.source_store_pk, s.mode.value)
        for _, s, _, _ in chosen
        if s.module_version is ModuleVersionValue.V2
    }
    secrets = await _secrets_for(db, encryptor, signers)
    token = token_source.token_hex(16)  # this claim's lease; an event is moved on only with it
    leased: list[tuple[Candidate, Request, Trigger, int]] = []
    for event, setting, rendered, held_for in chosen:
        assert setting.url is not None
        in_use = secrets.get((setting.source_store_pk, setting.mode.value), [])
        if isinstance(in_use, Exception):
            not_prepared(event, setting.url, in_use)
            continue
        try:
            request = _signed(setting, event, rendered, now, in_use)
            trigger, number = _count_attempt(event.state)  # when claimed: it may be sent
        except Exception as error:
            not_prepared(event, setting.url, error)
            continue
        event.state.locked_until = now + held_for
        event.state.lease_token = token
        written.append(event.state)
        attempts.append(_attempt_values(event, request, trigger, number, now))
        leased.append((event, request, trigger, number))
    await write_states(db, [*finished, *written])
    delivery_pks = await _insert_deliveries(db, attempts)
    for event, request, trigger, number in leased:
        result.claims.append(
            Claim(
                event_pk=event.state.id,
                merchant_pk=event.merchant_id,
                lease_token=token,
                delivery_pk=delivery_pks[event.state.id],
                trigger=trigger,
                attempt_number=number,
                published_at=event.published_at,
                request=request,
            )
        )
    return result


def _attempt_values(
    event: Candidate,
    request: Request,
    trigger: Trigger,
    number: int,
    now: datetime,
    error: str = UNFINISHED,
) -> dict[str, Any]:
    """An attempt's row, as recorded when it is claimed (unfinished) or refused."""
    return {
        "merchant_id": event.merchant_id,
        "store_pk": event.store_pk,
        "module_version": event.module_version,
        "mode": event.mode,
        "trigger": trigger.value,
        "url": request.url,
        "request_headers": [[name, value] for name, value in request.headers],
        "request_body": request.body,
        "status_code": None,
        "response_body": None,
        "error": error,
        "duration_ms": 0,
        "succeeded": False,
        "attempted_at": now,
        "event_pk": event.state.id,
        "attempt_number": number,
    }


def _not_prepared(
    event: Candidate, url: str, error: Exception, now: datetime, policy: RetryPolicy
) -> dict[str, Any]:
    """An attempt that could not even be prepared, recorded as a failed attempt (nothing
    sent); the next one is scheduled as for any failure. Returns the attempt's row."""
    trigger, number = _count_attempt(event.state)
    reason = (
        f"Not sent: the request could not be prepared ({type(error).__name__}); "
        "an operator must look at the service's log."
    )
    nothing = Request(url=url, headers=[], body="", require_https=False)
    attempt = _attempt_values(event, nothing, trigger, number, now, error=reason)
    state = event.state
    delay = policy.delay_after(state.attempt_count, None) if trigger is Trigger.EVENT else None
    _failed(state, reason, delay, now)
    return attempt


def _count_attempt(event: DeliveryState) -> tuple[Trigger, int]:
    """Count the attempt about to be made: scheduled attempts by attempt_count, queued resends
    by manual_resend_count (counted when sent, so numbers follow the order of sending)."""
    trigger = Trigger(event.next_trigger)
    if trigger is Trigger.EVENT:
        event.attempt_count += 1
        return trigger, event.attempt_count
    event.manual_resend_count += 1
    return trigger, event.manual_resend_count


def _failed(event: DeliveryState, reason: str, delay: timedelta | None, now: datetime) -> None:
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


def _finish_without_sending(event: DeliveryState, status: EventStatus, reason: str) -> None:
    event.status = status.value
    event.status_reason = reason
    event.next_attempt_at = None
    event.next_trigger = Trigger.EVENT.value
    event.locked_until = None
    event.lease_token = None


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


def _result_values(result: DeliveryResult) -> dict[str, Any]:
    return {
        "request_headers": [[name, value] for name, value in result.request_headers],
        "status_code": result.status_code,
        "response_body": result.response_body,
        "error": result.error[:1000] if result.error else None,
        "duration_ms": result.duration_ms,
        "succeeded": result.succeeded,
    }


def record_result(delivery: WebhookDelivery, result: DeliveryResult) -> None:
    for name, value in _result_values(result).items():
        setattr(delivery, name, value)


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
    """Record one attempt and move its event on (finish_many for one)."""
    [outcome] = await finish_many(db=db, finished=[(claim, result)], now=now, policy=policy)
    return outcome


class Outcomes(list[Outcome]):
    """finish_many's outcomes, in the order given, and the time they were decided at."""

    def __init__(self, outcomes: Iterable[Outcome] = (), *, now: datetime) -> None:
        super().__init__(outcomes)
        self.now = now


async def finish_many(
    *,
    db: AsyncSession,
    finished: Sequence[tuple[Claim, DeliveryResult]],
    now: datetime | None,
    policy: RetryPolicy,
    unwritten: list[EventState] | None = None,
) -> Outcomes:
    """Record attempts and move their events on, in the caller's write transaction, in three
    statements whatever their number (the attempts, the events locked in id order, their
    new states); the outcomes in the order given. With `unwritten`, the new states are added
    to it instead, for the caller to write with its own (the worker's cycle: with the
    claim's, one statement fewer per cycle).

    `now` None: the database's clock decides (db.clock.database_now), read on PostgreSQL by
    the statement that locks the events (a round trip fewer per worker cycle: the clock was
    one of the cycle's eight statements); `Outcomes.now` is the time used.

    Only the current lease holder moves an event on; SUCCEEDED is final (a manual resend may
    have succeeded meanwhile). A failed scheduled attempt is retried per `policy` until the
    last; a failed queued resend leaves the event EXHAUSTED again."""
    if not finished:
        return Outcomes(now=now or await database_now(db))
    await _core(
        db,
        _WRITE_RESULT,
        [
            {f"b_{name}": value for name, value in _result_values(result).items()}
            | {"b_id": claim.delivery_pk}
            for claim, result in finished
        ],
    )
    pks = sorted({claim.event_pk for claim, _ in finished})
    if now is None and db.get_bind().dialect.name != "sqlite":
        rows = await _core(db, _LOCKED_STATES_AT, {"pks": pks})
        # No row (the events were deleted meanwhile): read on its own.
        now = rows[0][_STATE_WIDTH].astimezone(UTC) if rows else await database_now(db)
    else:
        rows = await _core(db, _LOCKED_STATES, {"pks": pks})
        now = now or await database_now(db)
    states = {state.id: state for state in map(_state, rows)}
    written: dict[int, EventState] = {}
    outcomes = Outcomes(now=now)
    for claim, result in finished:
        event = states.get(claim.event_pk)
        if event is None or event.lease_token != claim.lease_token:
            outcomes.append(Outcome(status=None, first_success=False))
            continue
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
        written[event.id] = event
        outcomes.append(Outcome(status=EventStatus(event.status), first_success=first_success))
    if unwritten is None:
        await write_states(db, list(written.values()))
    else:  # the caller writes them with its own (claim_due's `finished`, or write_states)
        unwritten.extend(written.values())
    return outcomes


def mark_succeeded(event: DeliveryState, now: datetime) -> None:
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


async def unclaim(*, db: AsyncSession, claims: Iterable[Claim]) -> int:
    """Undo claims a stopping worker never sent (ready claims, gql_api.webhooks.worker): the
    lease given back, the attempt uncounted and its unfinished record deleted, so the event is
    due again at once as if never claimed. Only where this worker still holds the lease and
    the claim's attempt is still the last one counted: a console resend sent meanwhile counted
    one more (its number must not be given out again), and then the claim is only released."""
    undone = 0
    kept: list[Claim] = []
    for claim in claims:
        counter = (
            col(WebhookEvent.attempt_count)
            if claim.trigger is Trigger.EVENT
            else col(WebhookEvent.manual_resend_count)
        )
        outcome = await db.exec(
            update(WebhookEvent)
            .where(
                col(WebhookEvent.id) == claim.event_pk,
                col(WebhookEvent.lease_token) == claim.lease_token,
                counter == claim.attempt_number,
            )
            .values(
                {
                    counter: counter - 1,
                    col(WebhookEvent.locked_until): None,
                    col(WebhookEvent.lease_token): None,
                }
            )
        )
        if outcome.rowcount:
            await db.exec(
                delete(WebhookDelivery).where(col(WebhookDelivery.id) == claim.delivery_pk)
            )
            undone += 1
        else:
            kept.append(claim)
    return undone + await release(db=db, claims=kept)
