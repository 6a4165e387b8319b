"""GraphQL types of webhooks. Signing secrets are shown once; only hints after that."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlmodel import col

from db.models import WebhookDelivery as DeliveryRow
from db.models import WebhookSecret as SecretRow
from gql_api.channels import rules
from gql_api.context import Info
from gql_api.enums import (
    IntegrationMode,
    ModuleVersion,
    WebhookContentType,
    WebhookPayloadVersion,
    WebhookTrigger,
)
from gql_api.i18n import _
from gql_api.ids import COMPOUND_KEYS, compound_key, split_compound_key
from gql_api.node import Node, to_global_id
from gql_api.pagination import After, Before, Connection, First, Last, PageRequest, connection
from gql_api.webhooks import payloads, service
from gql_api.webhooks.loaders import WebhookSecretsLoader
from gql_api.webhooks.service import SecretRecord


@strawberry.type(description="One HTTP header, in the order sent.")
class HttpHeader:
    name: str = strawberry.field(description="Header name, lower case (e.g. `webhook-id`).")
    value: str = strawberry.field(description="Header value, as sent.")


@strawberry.type(description="A V2 signing secret; the value was shown once, when issued.")
class WebhookSecret(Node):
    hint: str = strawberry.field(
        description="`whsec_…` and the secret's last 4 characters, to tell secrets apart; "
        "never the secret itself."
    )
    created_at: datetime = strawberry.field(description="When it was issued (RFC 3339, UTC).")
    expired_at: datetime | None = strawberry.field(description="Set once expired; final.")

    @classmethod
    def from_row(cls, row: SecretRow | SecretRecord) -> WebhookSecret:
        assert row.id is not None
        return cls(
            id=to_global_id("WebhookSecret", row.id),
            hint=row.hint,
            created_at=row.created_at,
            expired_at=row.expired_at,
        )


@strawberry.type(description="One webhook sent, as sent, with what came back.")
class WebhookDelivery(Node):
    trigger: WebhookTrigger = strawberry.field(
        description="Why it was sent: a test call, an attempt of an event, or a manual resend."
    )
    url: str = strawberry.field(description="The setting's URL at the time of the attempt.")
    request_headers: list[HttpHeader] = strawberry.field(
        description="As sent, signature headers included."
    )
    request_body: str = strawberry.field(
        description="The body exactly as sent (and signed): JSON, or form-encoded for "
        "FORM_URLENCODED."
    )
    status_code: int | None = strawberry.field(description="null when nothing came back.")
    response_body: str | None = strawberry.field(description="At most the first 64 KiB.")
    error: str | None = strawberry.field(
        description="Why it failed, in English words recorded when it happened (whatever "
        "Accept-Language asks: much of it is the receiver's or the network's own words)."
    )
    duration_ms: int = strawberry.field(
        description="Milliseconds from sending to the end of the answer or the failure; 0 when "
        "nothing was sent (the URL was refused) or the attempt has not finished."
    )
    succeeded: bool = strawberry.field(
        description="True only when the receiver answered HTTP 200 (PortOne's rule); any other "
        "answer, a redirect or no answer is a failure, explained in `error`."
    )
    attempted_at: datetime = strawberry.field(
        description="When the attempt started (RFC 3339, UTC)."
    )
    attempt_number: int | None = strawberry.field(
        description="Which attempt at its event this was: for EVENT, 1 for the first and one "
        "more with each retry (6 in all on PortOne's schedule); for MANUAL, the resend's "
        "number (1-5). null for a test call (TEST)."
    )

    @classmethod
    def from_row(cls, row: DeliveryRow) -> WebhookDelivery:
        assert row.id is not None
        return cls(
            id=to_global_id("WebhookDelivery", row.id),
            trigger=WebhookTrigger(row.trigger),
            url=row.url,
            request_headers=[HttpHeader(name=n, value=v) for n, v in row.request_headers],
            request_body=row.request_body,
            status_code=row.status_code,
            response_body=row.response_body,
            error=row.error,
            duration_ms=row.duration_ms,
            succeeded=row.succeeded,
            attempted_at=row.attempted_at,
            attempt_number=row.attempt_number,
        )


# The index of each (module version, mode) in a WebhookSetting's compound key: fixed, so that
# IDs given out stay valid (append only).
SETTING_SLOTS: tuple[tuple[payloads.ModuleVersionValue, rules.IntegrationMode], ...] = (
    (payloads.ModuleVersionValue.V1, rules.IntegrationMode.LIVE),
    (payloads.ModuleVersionValue.V1, rules.IntegrationMode.TEST),
    (payloads.ModuleVersionValue.V2, rules.IntegrationMode.LIVE),
    (payloads.ModuleVersionValue.V2, rules.IntegrationMode.TEST),
)
assert len(SETTING_SLOTS) == COMPOUND_KEYS["WebhookSetting"]


def setting_key(
    store_pk: int, version: payloads.ModuleVersionValue, mode: rules.IntegrationMode
) -> int:
    """The key of a store's setting for `version` and `mode`, saved or not."""
    return compound_key("WebhookSetting", store_pk, SETTING_SLOTS.index((version, mode)))


def setting_of_key(
    key: int,
) -> tuple[int, payloads.ModuleVersionValue, rules.IntegrationMode]:
    """(store pk, module version, mode) of a setting's key (from parse_global_id)."""
    store_pk, index = split_compound_key("WebhookSetting", key)
    version, mode = SETTING_SLOTS[index]
    return store_pk, version, mode


@strawberry.type(description="결제알림 setting of a store for one module version and mode.")
class WebhookSetting(Node):
    module_version: ModuleVersion = strawberry.field(
        description="The payment module (V1 or V2) whose payments this setting notifies."
    )
    mode: IntegrationMode = strawberry.field(
        description="Which payments it notifies: LIVE (실연동) or TEST; each mode has its own "
        "setting."
    )
    url: str | None = strawberry.field(
        description="null = not set, or hidden: a store-scoped caller does not see the "
        "representative store's URL that its store follows."
    )
    content_type: WebhookContentType = strawberry.field(
        description="How the body is encoded; JSON unless set (always JSON for V2024_04_25)."
    )
    payload_version: WebhookPayloadVersion | None = strawberry.field(
        description="V2 only: the body format sent (V2024_04_25 unless set); null for V1, whose "
        "body is `{imp_uid, merchant_uid, status}`."
    )
    uses_representative_setting: bool = strawberry.field(
        description="Sub-stores follow the representative store until they opt out; the "
        "representative store's URL, secrets and deliveries then apply, which only "
        "merchant-wide callers see and test."
    )
    updated_at: datetime | None = strawberry.field(
        description="When this store's own setting was last saved (RFC 3339, UTC); null if it "
        "never was."
    )
    effective: strawberry.Private[service.EffectiveWebhookSetting]

    @classmethod
    def from_effective(cls, value: service.EffectiveWebhookSetting) -> WebhookSetting:
        assert value.store.id is not None
        key = setting_key(value.store.id, value.module_version, value.mode)
        return cls(
            id=to_global_id("WebhookSetting", key),
            module_version=ModuleVersion(value.module_version),
            mode=value.mode,
            url=value.url,
            content_type=value.content_type,
            payload_version=value.payload_version,
            uses_representative_setting=value.uses_representative_setting,
            updated_at=value.updated_at,
            effective=value,
        )

    @strawberry.field(
        description="V2 signing secrets of this mode, oldest first: the active ones (at most 2) "
        f"and the most recent expired ones, {service.MAX_LISTED_SECRETS} at most. An expired "
        f"secret may be deleted {service.EXPIRED_SECRET_RETENTION.days} days after expiry. "
        "Empty for a store-scoped caller when the store follows the representative store's "
        "setting."
    )
    async def secrets(self, info: Info) -> list[WebhookSecret]:
        key = service.listed_secrets_key(self.effective)
        if key is None:
            return []
        rows = await WebhookSecretsLoader.of(info.context).load(key)
        return [WebhookSecret.from_row(r) for r in rows]

    @strawberry.field(
        description="Deliveries of this setting, newest first. A store-scoped caller sees none "
        "while the store follows the representative store's setting, and only those made since "
        "the store's own setting was last saved."
    )
    async def deliveries(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[WebhookDelivery]:
        principal = info.context.require_principal()
        statement = service.deliveries_query(principal, self.effective)
        request = PageRequest.of(info, first=first, after=after, last=last, before=before)
        return await connection(
            info.context.db,
            statement,
            col(DeliveryRow.id),
            request,
            WebhookDelivery.from_row,
            newest_first=True,
        )


@strawberry.type(
    description="Whether the console offers an IP whitelist (CIDR rules, a V1 feature), and "
    "whom to ask otherwise."
)
class IpWhitelistSupport:
    supported: bool = strawberry.field(
        description="Always false here: the V2 payment module has no account-wide IP "
        "whitelist. Each API secret has a network allowlist of its own instead "
        "(ApiSecret.networkRules, apiSecretNetworkRulesUpdate)."
    )
    message: str = strawberry.field(
        description="The console's notice to show the user, in the language of the request "
        "(Accept-Language; Korean by default)."
    )
    contact: str | None = strawberry.field(
        description="Email address of PortOne V2 tech support; null when there is none to ask."
    )


V2_TECH_SUPPORT = "tech.support@portone.io"


@strawberry.type(description="추가 설정 관리.")
class AdditionalSettings:
    @strawberry.field(description="IP whitelists are a V1 feature; V2 does not offer one.")
    def ip_whitelist(self) -> IpWhitelistSupport:
        notice = _(
            "PortOne's V2 payment module does not offer an IP whitelist. If you need one, "
            "please write to V2 tech support ({contact}). To accept API calls only from certain "
            "IP ranges, set allowed networks (CIDR rules) on each API secret "
            "(ApiSecret.networkRules, apiSecretNetworkRulesUpdate).",
            contact=V2_TECH_SUPPORT,
        )
        return IpWhitelistSupport(supported=False, message=notice.render(), contact=V2_TECH_SUPPORT)
