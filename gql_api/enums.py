"""Every GraphQL enum, registered once, and the one name to annotate fields with.

Most are the domain's own enums (services use them without knowing GraphQL); registering one
gives the class its GraphQL definition, so a field annotated with the class is that enum. A
neutral module, so that the areas' types need not import each other for an enum.
"""

from __future__ import annotations

import strawberry

from gql_api.channels.rules import ChannelType, IntegrationMode, TaxType
from gql_api.errors import UserErrorCode
from gql_api.permissions import Role
from gql_api.pg_catalog.catalog import ChannelPurpose, ModuleVersion, PgProvider
from gql_api.webhooks.events import EventStatus, Trigger
from gql_api.webhooks.payloads import WebhookContentType, WebhookPayloadVersion

__all__ = [
    "ChannelPurpose",
    "ChannelType",
    "IntegrationMode",
    "MemberRole",
    "ModuleVersion",
    "PgProvider",
    "TaxType",
    "UserErrorCode",
    "WebhookContentType",
    "WebhookEventStatus",
    "WebhookPayloadVersion",
    "WebhookTrigger",
]

strawberry.enum(
    IntegrationMode, name="IntegrationMode", description="연동 모드: LIVE (실연동) or TEST."
)
strawberry.enum(
    TaxType,
    name="TaxType",
    description="과세구분: UNSET (미설정), TAXABLE (과세), TAX_FREE (면세).",
)
strawberry.enum(
    ChannelType,
    name="ChannelType",
    description="LIVE, MERCHANT_TEST (own test MID) or SHARED_TEST (shared public test MID).",
)
strawberry.enum(ModuleVersion, name="ModuleVersion", description="포트원 결제 모듈 버전.")
strawberry.enum(
    ChannelPurpose,
    name="ChannelPurpose",
    description="채널 속성: PAYMENT (결제) or IDENTITY_VERIFICATION (본인인증).",
)
strawberry.enum(PgProvider, name="PgProvider", description="PortOne's PG provider codes.")
strawberry.enum(
    WebhookContentType,
    name="WebhookContentType",
    description="JSON (application/json) or FORM_URLENCODED (application/x-www-form-urlencoded).",
)
strawberry.enum(
    WebhookPayloadVersion,
    name="WebhookPayloadVersion",
    description="V2 payload versions; V2024_04_25 allows JSON only.",
)

MemberRole = Role
strawberry.enum(
    MemberRole,
    name="MemberRole",
    description="Console roles; STORE_* roles are bound to one sub-store and see nothing else.",
)

strawberry.enum(
    UserErrorCode, name="UserErrorCode", description="Machine-readable reason for a user error."
)


WebhookTrigger = Trigger
strawberry.enum(
    WebhookTrigger,
    name="WebhookTrigger",
    description="Why a webhook was sent: TEST (호출 테스트), EVENT (an attempt of an event's "
    "schedule) or MANUAL (a resend: webhookEventResend or webhookEventsResendFailed).",
)

WebhookEventStatus = EventStatus
strawberry.enum(
    WebhookEventStatus,
    name="WebhookEventStatus",
    description="Where an event's delivery stands: PENDING (no attempt yet), RETRYING (an "
    "attempt failed, another is scheduled), SUCCEEDED (a receiver answered HTTP 200), "
    "EXHAUSTED (the last scheduled attempt failed) or SKIPPED (nothing to send to: no URL, or "
    "a payload version without this event type).",
)
