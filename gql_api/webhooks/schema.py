"""Mutations of webhooks: settings, signing secrets and the test call."""

from __future__ import annotations

from datetime import timedelta

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import WebhookDelivery as DeliveryRow
from db.models import WebhookSecret as SecretRow
from gql_api.channels import rules
from gql_api.context import Info
from gql_api.enums import IntegrationMode, ModuleVersion, WebhookContentType, WebhookPayloadVersion
from gql_api.mutations import mutate
from gql_api.stores.loaders import StoreLoader
from gql_api.user_errors import UserError
from gql_api.webhooks import calls, payloads, service
from gql_api.webhooks.addresses import parse_networks
from gql_api.webhooks.loaders import WebhookSettingsLoader
from gql_api.webhooks.sender import DeliveryResult, Limits
from gql_api.webhooks.types import (
    WebhookDelivery,
    WebhookSecret,
    WebhookSetting,
    setting_of_key,
)


@strawberry.input(description="Save a webhook setting (URL, content type, payload version).")
class WebhookSettingUpdateInput:
    store_id: str = strawberry.field(description="`store-<uuid>` of the store to configure.")
    module_version: ModuleVersion = strawberry.field(
        description="V1 or V2: each payment module has its own setting."
    )
    mode: IntegrationMode = strawberry.field(
        description="LIVE or TEST: each mode has its own setting."
    )
    url: str | None = strawberry.field(
        default=None,
        description="http(s), public host, at most 2048 characters; https in LIVE. null clears.",
    )
    content_type: WebhookContentType = strawberry.field(
        default=payloads.WebhookContentType.JSON,
        description="How the body is encoded; FORM_URLENCODED is refused with payload version "
        "V2024_04_25.",
    )
    payload_version: WebhookPayloadVersion | None = strawberry.field(
        default=None, description="V2 only; default V2024_04_25 (JSON only)."
    )
    uses_representative_setting: bool | None = strawberry.field(
        default=None,
        description="Sub-stores only: true follows the representative store's setting.",
    )


@strawberry.type(description="Result of webhookSettingUpdate.")
class WebhookSettingUpdatePayload:
    webhook_setting: WebhookSetting | None = strawberry.field(
        description="The setting as saved; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Issue a V2 signing secret for a store and mode.")
class WebhookSecretIssueInput:
    store_id: str = strawberry.field(description="`store-<uuid>` of the store to sign for.")
    mode: IntegrationMode = strawberry.field(
        description="LIVE or TEST: it signs this mode's V2 webhooks only."
    )


@strawberry.type(description="Result of webhookSecretIssue.")
class WebhookSecretIssuePayload:
    webhook_secret: WebhookSecret | None = strawberry.field(
        description="The new secret's hint and issue time; null when userErrors is not empty."
    )
    secret: str | None = strawberry.field(
        description="whsec_…: shown in this payload only; store it in your receiver now."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Expire a signing secret for good.")
class WebhookSecretExpireInput:
    id: strawberry.ID = strawberry.field(
        description="Global ID of the WebhookSecret to expire (`WebhookSetting.secrets`)."
    )


@strawberry.type(description="Result of webhookSecretExpire.")
class WebhookSecretExpirePayload:
    webhook_secret: WebhookSecret | None = strawberry.field(
        description="The secret, now with `expiredAt` set; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="호출 테스트: send a test webhook to the saved setting.")
class WebhookTestInput:
    store_id: str = strawberry.field(description="`store-<uuid>` of the store to test.")
    module_version: ModuleVersion = strawberry.field(
        description="V1 or V2: whose saved setting to call."
    )
    mode: IntegrationMode = strawberry.field(
        description="LIVE or TEST: whose saved setting to call."
    )


@strawberry.type(description="Result of webhookTest.")
class WebhookTestPayload:
    delivery: WebhookDelivery | None = strawberry.field(
        description="The call as sent and what came back, recorded even when the receiver "
        "failed (see `succeeded`); null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Save a webhook setting; the URL is checked (SSRF rules).")
    async def webhook_setting_update(
        self, info: Info, input: WebhookSettingUpdateInput
    ) -> WebhookSettingUpdatePayload:
        principal = info.context.require_principal()
        settings = info.context.app.settings

        async def action(db: AsyncSession) -> service.EffectiveWebhookSetting:
            return await service.update_setting(
                db=db,
                principal=principal,
                allowed_networks=parse_networks(settings.webhook_allowed_networks),
                store_id=input.store_id,
                module_version=payloads.ModuleVersionValue(input.module_version),
                mode=rules.IntegrationMode(input.mode),
                url=input.url,
                content_type=payloads.WebhookContentType(input.content_type),
                payload_version=(
                    payloads.WebhookPayloadVersion(input.payload_version)
                    if input.payload_version is not None
                    else None
                ),
                uses_representative_setting=input.uses_representative_setting,
            )

        saved, errors = await mutate(info, action)
        return WebhookSettingUpdatePayload(
            webhook_setting=WebhookSetting.from_effective(saved) if saved else None,
            user_errors=errors,
        )

    @strawberry.mutation(description="Issue a signing secret (at most 2 active per mode).")
    async def webhook_secret_issue(
        self, info: Info, input: WebhookSecretIssueInput
    ) -> WebhookSecretIssuePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> tuple[SecretRow, str]:
            return await service.issue_secret(
                db=db,
                principal=principal,
                encryptor=info.context.app.encryptor,
                store_id=input.store_id,
                mode=rules.IntegrationMode(input.mode),
            )

        issued, errors = await mutate(info, action)
        if issued is None:
            return WebhookSecretIssuePayload(webhook_secret=None, secret=None, user_errors=errors)
        return WebhookSecretIssuePayload(
            webhook_secret=WebhookSecret.from_row(issued[0]), secret=issued[1], user_errors=[]
        )

    @strawberry.mutation(description="Expire a signing secret; this cannot be undone.")
    async def webhook_secret_expire(
        self, info: Info, input: WebhookSecretExpireInput
    ) -> WebhookSecretExpirePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> SecretRow:
            return await service.expire_secret(db=db, principal=principal, secret_id=str(input.id))

        row, errors = await mutate(info, action)
        return WebhookSecretExpirePayload(
            webhook_secret=WebhookSecret.from_row(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(
        description="호출 테스트: send a signed sample event to the saved URL and record the "
        "delivery, whatever the receiver did. A V2 call is signed with every active signing "
        "secret of the store and mode; with none, nothing is sent and the answer says to issue "
        "one with webhookSecretIssue (WEBHOOK_SECRET_NOT_SET). V1 calls are not signed. At most "
        f"{calls.TEST_CALLS_PER_MINUTE} test calls a minute per store "
        "(WEBHOOK_TEST_RATE_LIMITED). A store that follows the representative store's setting "
        "can be tested by merchant-wide callers only (WEBHOOK_REPRESENTATIVE_SETTING)."
    )
    async def webhook_test(self, info: Info, input: WebhookTestInput) -> WebhookTestPayload:
        principal = info.context.require_principal()
        app = info.context.app

        async def start(db: AsyncSession) -> calls.StartedCall:
            return await calls.start(
                db=db,
                principal=principal,
                encryptor=app.encryptor,
                store_id=input.store_id,
                module_version=payloads.ModuleVersionValue(input.module_version),
                mode=rules.IntegrationMode(input.mode),
            )

        # No transaction stays open while the receiver takes its time.
        started, errors = await mutate(info, start)
        if started is None:
            return WebhookTestPayload(delivery=None, user_errors=errors)
        settings = app.settings
        result = await calls.perform(
            started.call,
            allowed=parse_networks(settings.webhook_allowed_networks),
            limits=Limits(
                connect_seconds=settings.webhook_connect_timeout_seconds,
                read_seconds=settings.webhook_read_timeout_seconds,
                response_max_bytes=settings.webhook_response_max_bytes,
            ),
        )

        app.metrics.webhook_tests.labels(result=_result_label(result)).inc()

        async def finish(db: AsyncSession) -> DeliveryRow:
            return await calls.finish(
                db=db,
                principal=principal,
                started=started,
                result=result,
                retention=timedelta(days=settings.webhook_delivery_retention_days),
            )

        row, errors = await mutate(info, finish)
        return WebhookTestPayload(
            delivery=WebhookDelivery.from_row(row) if row else None, user_errors=errors
        )


def _result_label(result: DeliveryResult) -> str:
    if result.succeeded:
        return "succeeded"
    if result.status_code is not None:
        return "http_error"
    if result.error and result.error.startswith("Not sent"):
        return "blocked"
    return "failed"


async def resolve_secret_node(info: Info, pk: int) -> WebhookSecret | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        row = await service.secret_by_pk(db=db, principal=principal, pk=pk)
    return WebhookSecret.from_row(row) if row else None


async def resolve_delivery_node(info: Info, pk: int) -> WebhookDelivery | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        row = await service.delivery_by_pk(db=db, principal=principal, pk=pk)
    return WebhookDelivery.from_row(row) if row else None


async def resolve_setting_node(info: Info, key: int) -> WebhookSetting | None:
    """A store's setting for one module version and mode, as Store.webhookSettings shows it to
    the caller (service.as_seen_by); None when the caller cannot see the store, as for the
    representative store's settings asked by a store-scoped caller."""
    store_pk, version, mode = setting_of_key(key)
    store = await StoreLoader.of(info.context).load(store_pk)
    if store is None:
        return None
    settings = await WebhookSettingsLoader.of(info.context).load(store)
    found = next((s for s in settings if (s.module_version, s.mode) == (version, mode)), None)
    return WebhookSetting.from_effective(found) if found is not None else None


NODE_RESOLVERS = {
    "WebhookSecret": resolve_secret_node,
    "WebhookDelivery": resolve_delivery_node,
    "WebhookSetting": resolve_setting_node,
}
