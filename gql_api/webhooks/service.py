"""Business rules for webhook settings and signing secrets."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import bindparam, case, delete, false, func
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.driver_query import DriverQuery
from db.models import Store, WebhookDelivery, WebhookSecret, WebhookSetting
from db.store_batches import STORE_BUCKETS, store_binds, store_chunks, store_params
from db.types import utcnow
from gql_api.audit import service as audit
from gql_api.channels.rules import IntegrationMode
from gql_api.errors import DomainError, FieldError, Problems, UserErrorCode
from gql_api.i18n import _, _n
from gql_api.ids import global_id, pk_of
from gql_api.permissions import Operation, Principal, confined_store_pk, require
from gql_api.scoping import scope_to_store
from gql_api.security.encryption import Encryptor
from gql_api.stores.service import require_store, store_by_pk
from gql_api.webhooks import signing
from gql_api.webhooks.addresses import IPNetwork, UrlRefused, check_url
from gql_api.webhooks.payloads import (
    ModuleVersionValue,
    WebhookContentType,
    WebhookPayloadVersion,
)

MAX_ACTIVE_SECRETS = 2
# A listing shows every active secret and the most recent expired ones, so that reading the
# secrets of many stores on the event loop stays bounded however often secrets were rotated.
MAX_LISTED_SECRETS = MAX_ACTIVE_SECRETS + 8
# Expired secrets are deleted this long after expiry, when a secret of the same store and mode
# is issued (the delivery log's default retention).
EXPIRED_SECRET_RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class EffectiveWebhookSetting:
    """The setting in force for a store: its own, or the representative store's."""

    store: Store
    module_version: ModuleVersionValue
    mode: IntegrationMode
    url: str | None
    content_type: WebhookContentType
    payload_version: WebhookPayloadVersion | None
    uses_representative_setting: bool
    updated_at: datetime | None
    source_store_pk: int  # whose URL and secrets apply
    # Set by as_seen_by: the caller may not see the representative store's URL, secrets or
    # deliveries that this setting follows (the URL is then None).
    representative_hidden: bool = False


def as_seen_by(principal: Principal, setting: EffectiveWebhookSetting) -> EffectiveWebhookSetting:
    """`setting` as `principal` may see it.

    A store-scoped caller (STORE_* roles, a sub-store API secret) learns that its store follows
    the representative store, never that store's URL (which may carry a token), secrets or
    deliveries, and cannot send to it: those belong to merchant-wide callers.
    """
    if principal.store_pk is None or setting.source_store_pk == setting.store.id:
        return setting
    return replace(setting, url=None, representative_hidden=True)


def default_payload_version(version: ModuleVersionValue) -> WebhookPayloadVersion | None:
    return WebhookPayloadVersion.V2024_04_25 if version is ModuleVersionValue.V2 else None


def effective(
    store: Store,
    version: ModuleVersionValue,
    mode: IntegrationMode,
    own: WebhookSetting | SettingRecord | None,
    representative: tuple[Store, WebhookSetting | SettingRecord | None] | None,
) -> EffectiveWebhookSetting:
    """Resolve a sub-store's "same as the representative store" checkbox."""
    follows = not store.is_representative and (own is None or own.uses_representative_setting)
    assert store.id is not None
    source_store, row = store, own
    if follows and representative is not None:
        source_store, row = representative
    assert source_store.id is not None
    return EffectiveWebhookSetting(
        store=store,
        module_version=version,
        mode=mode,
        url=row.url if row else None,
        content_type=WebhookContentType(row.content_type) if row else WebhookContentType.JSON,
        payload_version=(
            WebhookPayloadVersion(row.payload_version)
            if row and row.payload_version
            else default_payload_version(version)
        ),
        uses_representative_setting=follows,
        updated_at=own.updated_at if own else None,
        source_store_pk=source_store.id,
    )


async def store_settings(
    db: AsyncSession,
    principal: Principal,
    store: Store,
    version: ModuleVersionValue,
    mode: IntegrationMode,
) -> EffectiveWebhookSetting:
    """The setting in force for `store`, as `principal` may see it (as_seen_by)."""
    return as_seen_by(principal, await setting_in_force(db, store, version, mode))


async def setting_in_force(
    db: AsyncSession, store: Store, version: ModuleVersionValue, mode: IntegrationMode
) -> EffectiveWebhookSetting:
    """The setting in force for `store`, whoever asks: for the platform's events and their
    delivery, which act for no member of the merchant."""
    rows = (
        await db.exec(
            select(WebhookSetting, Store)
            .join(Store, col(Store.id) == col(WebhookSetting.store_pk))
            .where(
                col(WebhookSetting.merchant_id) == store.merchant_id,
                col(WebhookSetting.module_version) == version.value,
                col(WebhookSetting.mode) == mode.value,
                (col(WebhookSetting.store_pk) == store.id) | col(Store.is_representative),
            )
        )
    ).all()
    own = next((r for r, s in rows if s.id == store.id), None)
    representative: tuple[Store, WebhookSetting | None] | None = next(
        ((s, r) for r, s in rows if s.is_representative), None
    )
    if representative is None and not store.is_representative:
        rep_store = (
            await db.exec(
                select(Store).where(
                    col(Store.merchant_id) == store.merchant_id, col(Store.is_representative)
                )
            )
        ).first()
        representative = (rep_store, None) if rep_store else None
    return effective(store, version, mode, own, representative)


async def update_setting(
    *,
    db: AsyncSession,
    principal: Principal,
    allowed_networks: tuple[IPNetwork, ...],
    store_id: str,
    module_version: ModuleVersionValue,
    mode: IntegrationMode,
    url: str | None,
    content_type: WebhookContentType,
    payload_version: WebhookPayloadVersion | None,
    uses_representative_setting: bool | None,
) -> EffectiveWebhookSetting:
    store = await require_store(
        db=db, principal=principal, operation=Operation.WEBHOOK_MANAGE, store_id=store_id
    )
    problems = Problems()
    if module_version is ModuleVersionValue.V1 and payload_version is not None:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            ("input", "payloadVersion"),
            _("Payload versions apply to V2 webhooks only."),
        )
    version = payload_version or default_payload_version(module_version)
    if version is WebhookPayloadVersion.V2024_04_25 and content_type is not WebhookContentType.JSON:
        problems.add(
            UserErrorCode.CONTENT_TYPE_NOT_SUPPORTED,
            ("input", "contentType"),
            _("Payload version 2024-04-25 is sent as application/json only."),
        )
    if store.is_representative and uses_representative_setting is not None:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            ("input", "usesRepresentativeSetting"),
            _("Only sub-stores can follow the representative store's setting."),
        )
    clean_url = (url or "").strip() or None
    if clean_url is not None:
        try:
            await check_url(
                clean_url, require_https=mode is IntegrationMode.LIVE, allowed=allowed_networks
            )
        except UrlRefused as refused:
            code = (
                UserErrorCode.WEBHOOK_URL_FORBIDDEN
                if refused.forbidden
                else UserErrorCode.INVALID_INPUT
            )
            problems.add(code, ("input", "url"), refused.message)
    problems.raise_if_any()
    assert store.id is not None

    row = (
        await db.exec(
            select(WebhookSetting).where(
                col(WebhookSetting.store_pk) == store.id,
                col(WebhookSetting.module_version) == module_version.value,
                col(WebhookSetting.mode) == mode.value,
            )
        )
    ).first()
    if row is None:
        row = WebhookSetting(
            merchant_id=principal.merchant_pk,
            store_pk=store.id,
            module_version=module_version.value,
            mode=mode.value,
            content_type=content_type.value,
        )
    row.url = clean_url
    row.content_type = content_type.value
    row.payload_version = version.value if version else None
    if uses_representative_setting is not None:
        row.uses_representative_setting = uses_representative_setting
    row.updated_at = utcnow()
    db.add(row)
    try:
        await db.flush()
    except IntegrityError:  # created concurrently: the other request's save stands
        raise DomainError.single(
            UserErrorCode.VERSION_CONFLICT, ("input",), _("The setting changed meanwhile; retry.")
        ) from None
    follows = (
        " (following the representative store)"
        if (not store.is_representative and row.uses_representative_setting)
        else ""
    )
    await audit.record_by(
        db,
        principal,
        "webhook_setting.update",
        f"{module_version.value} {mode.value} webhook: URL {clean_url or 'cleared'}, "
        f"{content_type.value}, payload {version.value if version else '-'}{follows}",
        store_id=store.store_id,
    )
    return await store_settings(db, principal, store, module_version, mode)


async def issue_secret(
    *,
    db: AsyncSession,
    principal: Principal,
    encryptor: Encryptor,
    store_id: str,
    mode: IntegrationMode,
) -> tuple[WebhookSecret, str]:
    """A new signing secret (shown once); at most MAX_ACTIVE_SECRETS active per store and mode."""
    store = await require_store(
        db=db, principal=principal, operation=Operation.WEBHOOK_MANAGE, store_id=store_id
    )
    assert store.id is not None
    # Lock the store row so concurrent issues cannot both see a free slot (PostgreSQL).
    await db.exec(select(Store.id).where(col(Store.id) == store.id).with_for_update())
    active = (
        await db.exec(
            select(func.count()).where(
                col(WebhookSecret.store_pk) == store.id,
                col(WebhookSecret.mode) == mode.value,
                col(WebhookSecret.expired_at).is_(None),
            )
        )
    ).one()
    if active >= MAX_ACTIVE_SECRETS:
        raise DomainError.single(
            UserErrorCode.WEBHOOK_SECRET_LIMIT,
            ("input", "mode"),
            _n(
                "At most {count} secret can be active; expire it first.",
                "At most {count} secrets can be active; expire one first.",
                MAX_ACTIVE_SECRETS,
            ),
        )
    await db.exec(
        delete(WebhookSecret).where(
            col(WebhookSecret.store_pk) == store.id,
            col(WebhookSecret.mode) == mode.value,
            col(WebhookSecret.expired_at) < utcnow() - EXPIRED_SECRET_RETENTION,
        )
    )
    plaintext = signing.new_secret()
    row = WebhookSecret(
        merchant_id=principal.merchant_pk,
        store_pk=store.id,
        mode=mode.value,
        cipher=encryptor.encrypt(plaintext, context=secret_context(store.id, mode.value)),
        hint=signing.hint(plaintext),
    )
    db.add(row)
    await db.flush()
    assert row.id is not None
    await audit.record_by(
        db,
        principal,
        "webhook_secret.issue",
        f"Issued {mode.value} webhook secret {row.hint}",
        store_id=store.store_id,
        target_id=global_id("WebhookSecret", row.id),
    )
    return row, plaintext


async def expire_secret(*, db: AsyncSession, principal: Principal, secret_id: str) -> WebhookSecret:
    require(principal, Operation.WEBHOOK_MANAGE)
    pk = pk_of(secret_id, "WebhookSecret")
    row = await secret_by_pk(db=db, principal=principal, pk=pk) if pk is not None else None
    if row is None:
        raise DomainError.single(
            UserErrorCode.NOT_FOUND, ("input", "id"), _("No webhook secret with this ID.")
        )
    if row.expired_at is not None:
        raise DomainError.single(
            UserErrorCode.ALREADY_EXPIRED, ("input", "id"), _("This secret has already expired.")
        )
    row.expired_at = utcnow()
    db.add(row)
    await db.flush()
    store = await db.get(Store, row.store_pk)
    await audit.record_by(
        db,
        principal,
        "webhook_secret.expire",
        f"Expired {row.mode} webhook secret {row.hint}",
        store_id=store.store_id if store else None,
        target_id=secret_id,
    )
    return row


async def secret_by_pk(*, db: AsyncSession, principal: Principal, pk: int) -> WebhookSecret | None:
    statement = select(WebhookSecret).where(
        col(WebhookSecret.id) == pk, col(WebhookSecret.merchant_id) == principal.merchant_pk
    )
    statement = scope_to_store(statement, principal, Operation.READ, col(WebhookSecret.store_pk))
    row = (await db.exec(statement)).first()
    if row is None or await visible_store(db, principal, row.store_pk) is None:
        return None
    return row


def secret_context(store_pk: int, mode: str) -> str:
    return f"webhook-secret:{store_pk}:{mode}"


async def active_secrets(
    db: AsyncSession, encryptor: Encryptor, store_pk: int, mode: IntegrationMode
) -> list[str]:
    rows = (
        await db.exec(
            select(WebhookSecret)
            .where(
                col(WebhookSecret.store_pk) == store_pk,
                col(WebhookSecret.mode) == mode.value,
                col(WebhookSecret.expired_at).is_(None),
            )
            .order_by(col(WebhookSecret.id))
            .limit(MAX_ACTIVE_SECRETS)
        )
    ).all()
    return [encryptor.decrypt(r.cipher, context=secret_context(store_pk, mode.value)) for r in rows]


class SettingRecord(NamedTuple):
    """What a listing reads of a webhook_settings row (effective() reads it like the row)."""

    store_pk: int
    module_version: str
    mode: str
    url: str | None
    content_type: str
    payload_version: str | None
    uses_representative_setting: bool
    updated_at: datetime | None


class SecretRecord(NamedTuple):
    """What a listing shows of a webhook_secrets row (never the cipher)."""

    id: int
    store_pk: int
    mode: str
    hint: str
    created_at: datetime
    expired_at: datetime | None


# Read on every dashboard view, for many stores at once: statements built once per number of
# stores (db.store_batches) and run on the request's connection (db.driver_query).
# The columns are the records' fields, read back by name.
@lru_cache(maxsize=len(STORE_BUCKETS))
def _settings_read(stores: int) -> DriverQuery[SettingRecord]:
    return DriverQuery(
        core_select(*(col(getattr(WebhookSetting, name)) for name in SettingRecord._fields)).where(
            col(WebhookSetting.merchant_id) == bindparam("merchant_pk"),
            col(WebhookSetting.store_pk).in_(store_binds(stores)),
        ),
        SettingRecord,
    )


@lru_cache(maxsize=len(STORE_BUCKETS))
def _secrets_read(stores: int) -> DriverQuery[SecretRecord]:
    """At most MAX_LISTED_SECRETS per store and mode: the active ones, then the newest."""
    rank = (
        func.row_number()
        .over(
            partition_by=(col(WebhookSecret.store_pk), col(WebhookSecret.mode)),
            order_by=(
                case((col(WebhookSecret.expired_at).is_(None), 0), else_=1),
                col(WebhookSecret.id).desc(),
            ),
        )
        .label("rank")
    )
    ranked = (
        core_select(*(col(getattr(WebhookSecret, name)) for name in SecretRecord._fields), rank)
        .where(
            col(WebhookSecret.merchant_id) == bindparam("merchant_pk"),
            col(WebhookSecret.store_pk).in_(store_binds(stores)),
        )
        .subquery()
    )
    return DriverQuery(
        core_select(*(ranked.c[name] for name in SecretRecord._fields))
        .where(ranked.c.rank <= MAX_LISTED_SECRETS)
        .order_by(ranked.c.id),
        SecretRecord,
    )


async def effective_for_stores(
    db: AsyncSession,
    principal: Principal,
    stores: list[Store],
    representative: Store | None,
) -> dict[int, list[EffectiveWebhookSetting]]:
    """Every (version, mode) setting of many stores, in one statement per 64 stores."""
    wanted = sorted(
        {s.id for s in stores if s.id}
        | ({representative.id} if representative and representative.id else set())
    )
    connection = await db.connection()
    by_key: dict[tuple[int, str, str], SettingRecord] = {}
    for chunk in store_chunks(wanted):
        params: dict[str, Any] = {"merchant_pk": principal.merchant_pk, **store_params(chunk)}
        for record in await _settings_read(len(chunk)).all(connection, **params):
            by_key[(record.store_pk, record.module_version, record.mode)] = record
    result: dict[int, list[EffectiveWebhookSetting]] = {}
    for store in stores:
        assert store.id is not None
        settings = []
        for version in ModuleVersionValue:
            for mode in IntegrationMode:
                own = by_key.get((store.id, version.value, mode.value))
                rep = None
                if representative is not None and representative.id is not None:
                    rep = (
                        representative,
                        by_key.get((representative.id, version.value, mode.value)),
                    )
                setting = effective(store, version, mode, own, rep)
                settings.append(as_seen_by(principal, setting))
        result[store.id] = settings
    return result


def listed_secrets_key(setting: EffectiveWebhookSetting) -> tuple[int, str] | None:
    """The (store pk, mode) whose signing secrets WebhookSetting.secrets lists for `setting`,
    None when it lists none: V1 signs nothing, and a store-scoped caller does not see the
    secrets of the representative store its setting follows (as_seen_by)."""
    if setting.module_version is ModuleVersionValue.V1 or setting.representative_hidden:
        return None
    return (setting.source_store_pk, setting.mode.value)


async def secrets_for(
    db: AsyncSession, principal: Principal, keys: list[tuple[int, str]]
) -> dict[tuple[int, str], list[SecretRecord]]:
    store_pks = sorted({pk for pk, _mode in keys})
    own_store = confined_store_pk(principal, Operation.READ)
    if own_store is not None:
        store_pks = [pk for pk in store_pks if pk == own_store]
    connection = await db.connection()
    found: dict[tuple[int, str], list[SecretRecord]] = {key: [] for key in keys}
    for chunk in store_chunks(store_pks):
        params: dict[str, Any] = {"merchant_pk": principal.merchant_pk, **store_params(chunk)}
        for record in await _secrets_read(len(chunk)).all(connection, **params):
            if (record.store_pk, record.mode) in found:
                found[(record.store_pk, record.mode)].append(record)
    for secrets in found.values():  # oldest first, across chunks
        secrets.sort(key=lambda secret: secret.id)
    return found


def deliveries_query(
    principal: Principal, setting: EffectiveWebhookSetting
) -> SelectOfScalar[WebhookDelivery]:
    """The deliveries of `setting` that `principal` may see (see visible_deliveries)."""
    assert setting.store.id is not None
    statement = select(WebhookDelivery).where(
        col(WebhookDelivery.merchant_id) == principal.merchant_pk,
        col(WebhookDelivery.store_pk) == setting.store.id,
        col(WebhookDelivery.module_version) == setting.module_version.value,
        col(WebhookDelivery.mode) == setting.mode.value,
    )
    return visible_deliveries(principal, setting, statement)


def visible_deliveries(
    principal: Principal,
    setting: EffectiveWebhookSetting,
    statement: SelectOfScalar[WebhookDelivery],
) -> SelectOfScalar[WebhookDelivery]:
    """Deliveries of a sub-store that follows the representative store went to that store's URL,
    signed with its secrets: a store-scoped caller sees none of them. Since a sub-store may stop
    following at any time, such a caller sees only deliveries made after its store's own
    setting was last saved."""
    if principal.store_pk is None:
        return statement
    statement = statement.where(col(WebhookDelivery.store_pk) == principal.store_pk)
    if setting.representative_hidden:
        return statement.where(false())
    if setting.store.is_representative:
        return statement
    if setting.updated_at is None:
        return statement.where(false())
    return statement.where(col(WebhookDelivery.attempted_at) >= setting.updated_at)


async def delivery_by_pk(
    *, db: AsyncSession, principal: Principal, pk: int
) -> WebhookDelivery | None:
    """One delivery, if `principal` may see it (the rule of visible_deliveries)."""
    statement = select(WebhookDelivery).where(
        col(WebhookDelivery.id) == pk, col(WebhookDelivery.merchant_id) == principal.merchant_pk
    )
    row = (await db.exec(statement)).first()
    if row is None:
        return None
    store = await visible_store(db, principal, row.store_pk)
    if store is None:
        return None
    if principal.store_pk is None:
        return row
    setting = await store_settings(
        db, principal, store, ModuleVersionValue(row.module_version), IntegrationMode(row.mode)
    )
    return (await db.exec(visible_deliveries(principal, setting, statement))).first()


async def visible_store(db: AsyncSession, principal: Principal, store_pk: int) -> Store | None:
    return await store_by_pk(db=db, principal=principal, pk=store_pk)


async def refuse_past_rate(
    db: AsyncSession,
    *,
    store_pk: int,
    trigger: str,
    per_minute: int,
    now: datetime,
    error: FieldError,
) -> None:
    """Refuse (DomainError `error`) a call past `per_minute` sends of `trigger` for the store in
    the last minute, counted from the delivery rows (a call is recorded before it is sent), one
    call of the store at a time: its row is locked first (SQLite: the write transaction already
    is), so concurrent requests on any number of processes cannot pass the limit."""
    await db.exec(select(Store.id).where(col(Store.id) == store_pk).with_for_update())
    recent = (
        await db.exec(
            select(func.count()).where(
                col(WebhookDelivery.store_pk) == store_pk,
                col(WebhookDelivery.trigger) == trigger,
                col(WebhookDelivery.attempted_at) > now - timedelta(minutes=1),
            )
        )
    ).one()
    if recent >= per_minute:
        raise DomainError([error])
