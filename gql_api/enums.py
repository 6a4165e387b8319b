"""Every GraphQL enum, registered once, and the one name to annotate fields with.

Most are the domain's own enums (services use them without knowing GraphQL); registering one
gives the class its GraphQL definition, so a field annotated with the class is that enum. A
neutral module, so that the areas' types need not import each other for an enum.
"""

from __future__ import annotations

from enum import Enum

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


def describe_values(enum: type[Enum], descriptions: dict[Enum, str]) -> None:
    """Give each GraphQL value of a registered domain enum its description. The domain enums
    stay plain (services use them without GraphQL), so the words are added here, and every
    member must have some: a new member without one fails at import, not in GraphiQL."""
    missing = set(enum) - descriptions.keys()
    if missing:
        raise ValueError(f"{enum.__name__}: no description for {sorted(m.name for m in missing)}")
    for value in enum.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = descriptions[enum[value.name]]


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
strawberry.enum(
    PgProvider,
    name="PgProvider",
    description="PortOne's PG (결제대행사) codes; `pgProviders` lists those this service can "
    "add channels for, with their display names.",
)
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


describe_values(
    IntegrationMode,
    {
        IntegrationMode.LIVE: "실연동: real payments, with the PG's live MID.",
        IntegrationMode.TEST: "테스트: test payments; nothing is charged.",
    },
)
describe_values(
    TaxType,
    {
        TaxType.UNSET: "미설정 (the default; choose it for identity-verification channels).",
        TaxType.TAXABLE: "과세.",
        TaxType.TAX_FREE: "면세.",
    },
)
describe_values(
    ChannelType,
    {
        ChannelType.LIVE: "라이브 채널: a LIVE-mode channel with the merchant's own MID.",
        ChannelType.MERCHANT_TEST: "고객사 전용 테스트 채널: a TEST-mode channel with the "
        "merchant's own test MID and credentials.",
        ChannelType.SHARED_TEST: "공용 테스트 채널: a TEST-mode channel with one of the module's "
        "public test MIDs (sharedTestMerchantIds) and the platform's credentials.",
    },
)
describe_values(
    ModuleVersion,
    {
        ModuleVersion.V1: "포트원 결제모듈 V1.",
        ModuleVersion.V2: "포트원 차세대 결제모듈 V2 (payments name a storeId and channelKey).",
    },
)
describe_values(
    ChannelPurpose,
    {
        ChannelPurpose.PAYMENT: "결제: the channel takes payments.",
        ChannelPurpose.IDENTITY_VERIFICATION: "본인인증: the channel verifies identities.",
    },
)
describe_values(
    WebhookContentType,
    {
        WebhookContentType.JSON: "Body sent as `application/json`.",
        WebhookContentType.FORM_URLENCODED: "Body sent as `application/x-www-form-urlencoded`; "
        "not with payload version V2024_04_25.",
    },
)
describe_values(
    WebhookPayloadVersion,
    {
        WebhookPayloadVersion.V2024_01_01: "Legacy V2 body `{payment_id, tx_id, status}`; "
        "JSON or form-encoded.",
        WebhookPayloadVersion.V2024_04_25: "Current V2 body `{type, timestamp, data}` with "
        "Transaction.* and BillingKey.* event types; JSON only.",
    },
)
describe_values(
    MemberRole,
    {
        MemberRole.OWNER: "최고 관리자: the account that signed up, one per merchant; "
        "everything, including ownership transfer.",
        MemberRole.ADMIN: "관리자: everything but ownership transfer.",
        MemberRole.MANAGER: "고객사 매니저: manages members (READ_ONLY and STORE_READ_ONLY); "
        "결제 연동 (channels, webhooks, secrets) read-only.",
        MemberRole.DEVELOPER: "고객사 개발: manages channels and webhooks (결제 연동); reads "
        "all but the audit log; at most 10 per merchant.",
        MemberRole.READ_ONLY: "고객사 조회: reads everything but the audit log; changes nothing.",
        MemberRole.STORE_MANAGER: "하위 상점 매니저: bound to one sub-store; manages its "
        "channels, webhooks and STORE_* members.",
        MemberRole.STORE_READ_ONLY: "하위 상점 조회: bound to one sub-store; reads it only.",
    },
)
describe_values(
    UserErrorCode,
    {
        UserErrorCode.INVALID_INPUT: "A value has the wrong format, length or pattern.",
        UserErrorCode.REQUIRED: "A required value is missing or empty.",
        UserErrorCode.NOT_FOUND: "No such object, or the caller may not see it.",
        UserErrorCode.NAME_TAKEN: "Another store of the merchant has this name.",
        UserErrorCode.WEAK_PASSWORD: "The password is too short (under 10 characters) or too "
        "repetitive.",
        UserErrorCode.EMAIL_TAKEN: "An account with this email already exists.",
        UserErrorCode.INVALID_CREDENTIALS: "Wrong email and password, or API secret.",
        UserErrorCode.TOKEN_INVALID: "The invitation or refresh token is unknown or used up.",
        UserErrorCode.TOKEN_EXPIRED: "The invitation or refresh token has expired.",
        UserErrorCode.REPRESENTATIVE_STORE_UNDELETABLE: "The representative store (대표상점) "
        "cannot be deleted.",
        UserErrorCode.OWNER_REQUIRED: "The owner cannot be removed or demoted; transfer "
        "ownership first.",
        UserErrorCode.ROLE_NOT_ALLOWED: "The caller may not grant this role or act on this "
        "member (see the mutation's roles), or ownership would go to a non-ADMIN.",
        UserErrorCode.MEMBER_LIMIT_EXCEEDED: "The role's member limit is reached (pending "
        "invitations count).",
        UserErrorCode.ALREADY_MEMBER: "This person is already a member.",
        UserErrorCode.PG_MODULE_MISMATCH: "The module code is not one of this PG's modules.",
        UserErrorCode.PURPOSE_NOT_SUPPORTED: "The module does not serve this purpose.",
        UserErrorCode.CREDENTIAL_MISSING: "A credential the module requires is missing.",
        UserErrorCode.CREDENTIAL_UNKNOWN: "The module has no credential with this key.",
        UserErrorCode.SHARED_TEST_MID_NOT_ALLOWED: "A shared test MID in LIVE mode, or one "
        "of another module.",
        UserErrorCode.CHANNEL_NAME_DUPLICATE: "Another channel of the store and mode has this "
        "name.",
        UserErrorCode.VERSION_CONFLICT: "The object changed since you read it; read it again "
        "and send your change again.",
        UserErrorCode.WEBHOOK_URL_NOT_SET: "No webhook URL is saved for this store, version "
        "and mode.",
        UserErrorCode.WEBHOOK_URL_FORBIDDEN: "The URL's scheme or address is not allowed "
        "(SSRF rules: e.g. a private or loopback address).",
        UserErrorCode.WEBHOOK_SECRET_LIMIT: "Too many active signing secrets; expire one first.",
        UserErrorCode.WEBHOOK_SECRET_NOT_SET: "A V2 test call needs an active signing secret "
        "of the store and mode (the representative store's, for a store that follows it); "
        "issue one with webhookSecretIssue.",
        UserErrorCode.CONTENT_TYPE_NOT_SUPPORTED: "The payload version does not allow this "
        "content type.",
        UserErrorCode.ALREADY_EXPIRED: "The signing secret has already expired.",
        UserErrorCode.WEBHOOK_REPRESENTATIVE_SETTING: "The store follows the representative "
        "store's setting, which only merchant-wide callers may use.",
        UserErrorCode.WEBHOOK_TEST_RATE_LIMITED: "Too many test calls for this store this "
        "minute; try again shortly.",
        UserErrorCode.MAX_WEBHOOK_RETRY_COUNT_REACHED: "The event has had all its manual resends.",
        UserErrorCode.WEBHOOK_RESEND_RATE_LIMITED: "Too many resends for this store this "
        "minute; try again shortly.",
        UserErrorCode.NETWORK_RULE_INVALID: "A network rule's CIDR block is not valid (a bare "
        "address needs /32 or /128, host bits must be zero, no repeats) or its memo is too long.",
        UserErrorCode.INVITATION_NOT_PENDING: "The invitation is accepted, expired or revoked; "
        "only a pending one can be revoked or resent.",
        UserErrorCode.CHANNEL_GROUP_NAME_DUPLICATE: "Another channel group of the store has "
        "this name.",
        UserErrorCode.CHANNEL_GROUP_WEIGHTS_INVALID: "The weights of a channel group's enabled "
        "entries are not whole percentages (0-100) summing to exactly 100.",
        UserErrorCode.CHANNEL_GROUP_MODE_MISMATCH: "The channel's mode (LIVE or TEST) is not "
        "the channel group's.",
        UserErrorCode.CHANNEL_IN_GROUP: "The channel is in the current or scheduled session of "
        "a channel group (named in the message); take it out of them first.",
        UserErrorCode.LIMIT_EXCEEDED: "A limit is reached (the message says which): e.g. "
        "channel groups per store, or network rules per API secret.",
        UserErrorCode.SCHEDULE_INVALID: "The schedule is not on the hour and in the future, or "
        "there is no scheduled session.",
    },
)
describe_values(
    WebhookTrigger,
    {
        WebhookTrigger.TEST: "호출 테스트: a test call (webhookTest).",
        WebhookTrigger.EVENT: "An attempt of an event's retry schedule.",
        WebhookTrigger.MANUAL: "A resend (webhookEventResend or webhookEventsResendFailed).",
    },
)
describe_values(
    WebhookEventStatus,
    {
        WebhookEventStatus.PENDING: "Accepted; no attempt made yet.",
        WebhookEventStatus.RETRYING: "An attempt failed; another is scheduled (nextAttemptAt).",
        WebhookEventStatus.SUCCEEDED: "A receiver answered HTTP 200; nothing more is sent.",
        WebhookEventStatus.EXHAUSTED: "The last scheduled attempt failed; only a resend sends "
        "it again.",
        WebhookEventStatus.SKIPPED: "Nothing to send to: no URL saved, or the payload version "
        "has no such event type.",
    },
)
describe_values(
    PgProvider,
    {
        PgProvider.HTML5_INICIS: "KG이니시스 (웹표준 결제창).",
        PgProvider.PAYPAL: "페이팔 (PayPal).",
        PgProvider.PAYPAL_V2: "페이팔 (PayPal), V2 integration.",
        PgProvider.INICIS: "KG이니시스 (legacy code).",
        PgProvider.DANAL: "다날 (휴대폰결제, 본인인증).",
        PgProvider.NICE: "나이스페이먼츠.",
        PgProvider.DANAL_TPAY: "다날 (일반결제).",
        PgProvider.JTNET: "JTNet.",
        PgProvider.UPLUS: "토스페이먼츠 (구 LG U+).",
        PgProvider.NAVERPAY: "네이버페이.",
        PgProvider.KAKAO: "카카오페이 (legacy code).",
        PgProvider.SETTLE: "헥토파이낸셜 (구 세틀뱅크).",
        PgProvider.KCP: "NHN KCP.",
        PgProvider.MOBILIANS: "KG모빌리언스.",
        PgProvider.KAKAOPAY: "카카오페이.",
        PgProvider.NAVERCO: "네이버페이 (주문형).",
        PgProvider.SYRUP: "시럽페이.",
        PgProvider.KICC: "이지페이 (KICC).",
        PgProvider.EXIMBAY: "엑심베이.",
        PgProvider.SMILEPAY: "스마일페이.",
        PgProvider.PAYCO: "페이코.",
        PgProvider.KCP_BILLING: "NHN KCP (정기결제).",
        PgProvider.ALIPAY: "알리페이.",
        PgProvider.PAYPLE: "페이플.",
        PgProvider.CHAI: "차이.",
        PgProvider.BLUEWALNUT: "블루월넛.",
        PgProvider.SMARTRO: "스마트로.",
        PgProvider.SMARTRO_V2: "스마트로, V2 integration.",
        PgProvider.PAYMENTWALL: "페이먼트월.",
        PgProvider.TOSSPAYMENTS: "토스페이먼츠.",
        PgProvider.KCP_QUICK: "NHN KCP (퀵페이).",
        PgProvider.DAOU: "키움페이 (구 다우데이타).",
        PgProvider.GALAXIA: "갤럭시아머니트리.",
        PgProvider.TOSSPAY: "토스페이.",
        PgProvider.KCP_DIRECT: "NHN KCP (direct).",
        PgProvider.SETTLE_ACC: "헥토파이낸셜 (간편계좌).",
        PgProvider.SETTLE_FIRM: "헥토파이낸셜 (펌뱅킹).",
        PgProvider.INICIS_UNIFIED: "KG이니시스 통합인증.",
        PgProvider.KSNET: "KSNET.",
        PgProvider.PINPAY: "핀페이.",
        PgProvider.NICE_V2: "나이스정보통신, V2 integration.",
        PgProvider.TOSS_BRANDPAY: "토스페이먼츠 (브랜드페이).",
        PgProvider.WELCOME: "웰컴페이먼츠.",
        PgProvider.TOSSPAY_V2: "토스페이, V2 integration.",
        PgProvider.INICIS_V2: "KG이니시스, V2 integration.",
        PgProvider.KPN: "한국결제네트웍스 (KPN).",
        PgProvider.KCP_V2: "NHN KCP, V2 integration.",
        PgProvider.HYPHEN: "하이픈.",
        PgProvider.EXIMBAY_V2: "엑심베이, V2 integration.",
        PgProvider.INICIS_JP: "KG이니시스 일본.",
        PgProvider.PAYLETTER_GLOBAL: "페이레터 (global).",
        PgProvider.MOBILIANS_V2: "KG모빌리언스, V2 integration.",
        PgProvider.TRIPLE_A: "Triple-A (crypto payments).",
        PgProvider.KICC_V2: "이지페이 (KICC), V2 integration.",
        PgProvider.INNOPAY: "이노페이.",
        PgProvider.HECTO_GLOBAL: "헥토파이낸셜 (global).",
    },
)
