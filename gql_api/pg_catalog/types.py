"""GraphQL types of the PG catalog: everything a dashboard needs to render the add-channel form.

Labels, names and help texts are in the request's language (gql_api.i18n.current_locale, set
for every request): English where the catalog has it, the console's Korean otherwise. They are
rendered when the types are built, inside the pgProviders resolver.
"""

from __future__ import annotations

import strawberry

from gql_api.enums import ChannelPurpose, ModuleVersion, PgProvider
from gql_api.i18n import Localized
from gql_api.pg_catalog import catalog


def _render(text: Localized | None) -> str | None:
    return text.render() if text is not None else None


@strawberry.type(description="A credential the PG asks for when a channel is added.")
class CredentialField:
    key: str = strawberry.field(description="Key to send in `credentials`, e.g. signKey.")
    label: str = strawberry.field(
        description="Label as the console shows it, in the request's language (Korean where "
        "no English exists)."
    )
    required: bool = strawberry.field(
        description="Must be sent with an own MID; optional fields may be left out."
    )
    secret: bool = strawberry.field(
        description="Secret fields are write-only: stored encrypted, read back masked."
    )
    pattern: str | None = strawberry.field(description="Regular expression the value must match.")
    help: str | None = strawberry.field(
        description="Where to find the value, as the console explains it (Korean where no "
        "English exists); null if none."
    )

    @classmethod
    def from_model(cls, field: catalog.CredentialField) -> CredentialField:
        return cls(
            key=field.key,
            label=field.localized_label.render(),
            required=field.required,
            secret=field.secret,
            pattern=field.pattern,
            help=_render(field.localized_help),
        )


@strawberry.type(description="공용 테스트 MID: a public test merchant ID usable in TEST mode.")
class SharedTestMerchantId:
    merchant_id: str = strawberry.field(description="The MID to pass as pgMerchantId.")
    label: str = strawberry.field(
        description="What it is for, as the console shows it, in the request's language."
    )


@strawberry.type(description="결제 모듈: one way of integrating with the PG.")
class PaymentModule:
    code: str = strawberry.field(description="Pass as `moduleCode` to channelCreate.")
    name: str = strawberry.field(
        description="Name as the console shows it, in the request's language (Korean where no "
        "English exists)."
    )
    versions: list[ModuleVersion] = strawberry.field(
        description="PortOne module versions (V1, V2) the module serves."
    )
    purposes: list[ChannelPurpose] = strawberry.field(
        description="What channels of it may be for: 결제, 본인인증 or both."
    )
    merchant_id_label: str = strawberry.field(
        description="Label of the MID (pgMerchantId), in the request's language."
    )
    merchant_id_pattern: str | None = strawberry.field(
        description="Regular expression an own MID must match, where the format is known."
    )
    merchant_id_help: str | None = strawberry.field(
        description="Where to find the MID, as the console explains it (Korean where no "
        "English exists); null if none."
    )
    credential_fields: list[CredentialField] = strawberry.field(
        description="What to send in `credentials` with an own MID (required ones in both modes)."
    )
    shared_test_merchant_ids: list[SharedTestMerchantId] = strawberry.field(
        description="Public test MIDs usable in TEST mode; they use the platform's credentials, "
        "so send no credentials with them."
    )

    @classmethod
    def from_model(cls, module: catalog.PaymentModule) -> PaymentModule:
        return cls(
            code=module.code,
            name=module.localized_name.render(),
            versions=list(module.versions),
            purposes=list(module.purposes),
            merchant_id_label=module.localized_merchant_id_label.render(),
            merchant_id_pattern=module.merchant_id_pattern,
            merchant_id_help=_render(module.localized_merchant_id_help),
            credential_fields=[CredentialField.from_model(f) for f in module.credential_fields],
            shared_test_merchant_ids=[
                SharedTestMerchantId(merchant_id=m.merchant_id, label=m.localized_label.render())
                for m in module.shared_test_merchant_ids
            ],
        )


@strawberry.type(description="A PG (결제대행사) and its payment modules.")
class PgProviderInfo:
    provider: PgProvider = strawberry.field(description="The PG's code, for pgProvider.")
    display_name: str = strawberry.field(
        description='e.g. "NHN KCP", "KG이니시스" ("KG Inicis" in English).'
    )
    modules: list[PaymentModule] = strawberry.field(
        description="Its payment modules (결제 모듈) that match the query's filters."
    )

    @classmethod
    def from_model(cls, info: catalog.ProviderInfo) -> PgProviderInfo:
        return cls(
            provider=info.provider,
            display_name=info.localized_display_name.render(),
            modules=[PaymentModule.from_model(m) for m in info.modules],
        )
