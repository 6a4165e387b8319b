"""호출 테스트: send a signed sample event to the saved setting and record what happened.

A call is started (checked, counted and recorded as unfinished, in one short transaction),
performed with no transaction open, then finished (the record completed). Counting the rows
of calls started, not finished, keeps the per-store limit exact across processes and
concurrent requests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.clock import database_now
from db.models import WebhookDelivery
from db.types import utcnow
from gql_api.audit import service as audit
from gql_api.channels.rules import IntegrationMode
from gql_api.errors import DomainError, FieldError, Problems, UserErrorCode
from gql_api.i18n import Message, _, _n
from gql_api.ids import global_id
from gql_api.permissions import Operation, Principal
from gql_api.security.encryption import Encryptor
from gql_api.stores.service import require_store
from gql_api.webhooks import signing
from gql_api.webhooks.addresses import IPNetwork
from gql_api.webhooks.events import Trigger
from gql_api.webhooks.payloads import ModuleVersionValue, sample_event_body
from gql_api.webhooks.sender import DeliveryResult, Limits, check_and_send
from gql_api.webhooks.service import (
    EffectiveWebhookSetting,
    active_secrets,
    refuse_past_rate,
    store_settings,
)

TEST_CALLS_PER_MINUTE = 10  # per store, counted in the database
UNFINISHED = "Not finished: the call was in progress, or the server stopped before it ended."


@dataclass(frozen=True)
class PreparedCall:
    setting: EffectiveWebhookSetting
    url: str
    headers: list[tuple[str, str]]
    body: str


@dataclass(frozen=True)
class StartedCall:
    call: PreparedCall
    delivery_id: int  # the row recording the call, completed by finish()


async def start(
    *,
    db: AsyncSession,
    principal: Principal,
    encryptor: Encryptor,
    store_id: str,
    module_version: ModuleVersionValue,
    mode: IntegrationMode,
) -> StartedCall:
    """Check and count a test call, and record it as unfinished (in a write transaction)."""
    call = await prepare(
        db=db,
        principal=principal,
        encryptor=encryptor,
        store_id=store_id,
        module_version=module_version,
        mode=mode,
    )
    setting = call.setting
    assert setting.store.id is not None
    # The minute is the database's, as the attempts of every process are timed by it.
    now = await database_now(db)
    await refuse_past_rate(
        db,
        store_pk=setting.store.id,
        trigger=Trigger.TEST.value,
        per_minute=TEST_CALLS_PER_MINUTE,
        now=now,
        error=FieldError(
            UserErrorCode.WEBHOOK_TEST_RATE_LIMITED,
            ("input", "storeId"),
            _n(
                "At most {count} test call a minute per store; try again shortly.",
                "At most {count} test calls a minute per store; try again shortly.",
                TEST_CALLS_PER_MINUTE,
            ),
        ),
    )
    row = WebhookDelivery(
        merchant_id=principal.merchant_pk,
        store_pk=setting.store.id,
        module_version=setting.module_version.value,
        mode=setting.mode.value,
        trigger=Trigger.TEST.value,
        url=call.url,
        request_headers=[[name, value] for name, value in call.headers],
        request_body=call.body,
        error=UNFINISHED,
        attempted_at=now,
    )
    db.add(row)
    await db.flush()
    assert row.id is not None
    return StartedCall(call=call, delivery_id=row.id)


async def prepare(
    *,
    db: AsyncSession,
    principal: Principal,
    encryptor: Encryptor,
    store_id: str,
    module_version: ModuleVersionValue,
    mode: IntegrationMode,
) -> PreparedCall:
    """The request the saved setting calls for (never unsaved edits), signed for V2.

    A V2 call needs an active signing secret of the setting's store (the representative
    store's, for a sub-store that follows it): without one it would go out unsigned, and a
    receiver that verifies signatures, as PortOne's SDKs do, would refuse it while the console
    showed a success. It is refused instead (WEBHOOK_SECRET_NOT_SET), nothing recorded or
    sent, and no secret is issued behind the user's back. V1 webhooks are never signed."""
    store = await require_store(
        db=db, principal=principal, operation=Operation.WEBHOOK_MANAGE, store_id=store_id
    )
    setting = await store_settings(db, principal, store, module_version, mode)
    if setting.representative_hidden:
        raise DomainError.single(
            UserErrorCode.WEBHOOK_REPRESENTATIVE_SETTING,
            ("input", "storeId"),
            _(
                "This store uses the representative store's webhook setting, which only "
                "merchant-wide roles can test."
            ),
        )
    problems = Problems()
    if setting.url is None:
        problems.add(
            UserErrorCode.WEBHOOK_URL_NOT_SET,
            ("input",),
            _(
                "No {module_version} {mode} webhook URL is saved for this store.",
                module_version=module_version.value,
                mode=mode.value,
            ),
        )
    secrets: list[str] = []
    if module_version is ModuleVersionValue.V2:
        secrets = await active_secrets(db, encryptor, setting.source_store_pk, mode)
        if not secrets:
            problems.add(
                UserErrorCode.WEBHOOK_SECRET_NOT_SET, ("input", "mode"), _no_secret(setting)
            )
    problems.raise_if_any()
    assert setting.url is not None
    body = sample_event_body(
        module_version=module_version,
        payload_version=setting.payload_version,
        content_type=setting.content_type,
        store_id=store.store_id,
    )
    headers = [("content-type", setting.content_type.media_type)]
    if module_version is ModuleVersionValue.V2:
        message_id, timestamp = signing.new_message_id(), int(time.time())
        headers += [
            ("webhook-id", message_id),
            ("webhook-timestamp", str(timestamp)),
            ("webhook-signature", signing.signature_header(secrets, message_id, timestamp, body)),
        ]
    return PreparedCall(setting=setting, url=setting.url, headers=headers, body=body)


def _no_secret(setting: EffectiveWebhookSetting) -> Message:
    if setting.source_store_pk != setting.store.id:
        return _(
            "This store follows the representative store's webhook setting, which has no "
            "active {mode} signing secret to sign the test call with. Issue one for the "
            "representative store with webhookSecretIssue, then test again.",
            mode=setting.mode.value,
        )
    return _(
        "This store has no active {mode} signing secret to sign the test call with. Issue one "
        "with webhookSecretIssue, then test again.",
        mode=setting.mode.value,
    )


async def perform(
    call: PreparedCall, *, allowed: tuple[IPNetwork, ...], limits: Limits
) -> DeliveryResult:
    return await check_and_send(
        call.url,
        require_https=call.setting.mode is IntegrationMode.LIVE,
        headers=call.headers,
        body=call.body,
        allowed=allowed,
        limits=limits,
    )


async def finish(
    *,
    db: AsyncSession,
    principal: Principal,
    started: StartedCall,
    result: DeliveryResult,
    retention: timedelta,
) -> WebhookDelivery:
    """Complete the record of a started call, prune old ones and write the audit event."""
    call, setting = started.call, started.call.setting
    assert setting.store.id is not None
    row = await db.get(WebhookDelivery, started.delivery_id)
    if row is None:  # the store was deleted meanwhile
        raise DomainError.single(
            UserErrorCode.NOT_FOUND, ("input", "storeId"), _("No store with this storeId.")
        )
    row.request_headers = [[name, value] for name, value in result.request_headers]
    row.status_code = result.status_code
    row.response_body = result.response_body
    row.error = result.error[:1000] if result.error else None
    row.duration_ms = result.duration_ms
    row.succeeded = result.succeeded
    db.add(row)
    await db.exec(
        delete(WebhookDelivery).where(
            col(WebhookDelivery.store_pk) == setting.store.id,
            col(WebhookDelivery.attempted_at) < utcnow() - retention,
        )
    )
    await db.flush()
    outcome = f"HTTP {result.status_code}" if result.status_code is not None else result.error
    await audit.record_by(
        db,
        principal,
        "webhook.test",
        f"Test call of the {setting.module_version.value} {setting.mode.value} webhook to "
        f"{call.url}: {outcome}",
        store_id=setting.store.store_id,
        target_id=global_id("WebhookDelivery", started.delivery_id),
    )
    return row
