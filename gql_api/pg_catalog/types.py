"""GraphQL types of the PG catalog: everything a dashboard needs to render the add-channel form."""

from __future__ import annotations

import strawberry

from gql_api.enums import ChannelPurpose, ModuleVersion, PgProvider
from gql_api.pg_catalog import catalog


@strawberry.type(description="A credential the PG asks for when a channel is added.")
class CredentialField:
    key: str = strawberry.field(description="Key to send in `credentials`, e.g. signKey.")
    label: str = strawberry.field(description="Label as the console shows it.")
    required: bool = strawberry.field(
        description="Must be sent with an own MID; optional fields may be left out."
    )
    secret: bool = strawberry.field(
        description="Secret fields are write-only: stored encrypted, read back masked."
    )
    pattern: str | None = strawberry.field(description="Regular expression the value must match.")
    help: str | None = strawberry.field(
        description="Where to find the value, as the console explains it; null if none."
    )

    @classmethod
    def from_model(cls, field: catalog.CredentialField) -> CredentialField:
        return cls(
            key=field.key,
            label=field.label,
            required=field.required,
            secret=field.secret,
            pattern=field.pattern,
            help=field.help,
        )


@strawberry.type(description="공용 테스트 MID: a public test merchant ID usable in TEST mode.")
class SharedTestMerchantId:
    merchant_id: str = strawberry.field(description="The MID to pass as pgMerchantId.")
    label: str = strawberry.field(description="What it is for, as the console shows it.")


@strawberry.type(description="결제 모듈: one way of integrating with the PG.")
class PaymentModule:
    code: str = strawberry.field(description="Pass as `moduleCode` to channelCreate.")
    name: str = strawberry.field(description="Name as the console shows it.")
    versions: list[ModuleVersion] = strawberry.field(
        description="PortOne module versions (V1, V2) the module serves."
    )
    purposes: list[ChannelPurpose] = strawberry.field(
        description="What channels of it may be for: 결제, 본인인증 or both."
    )
    merchant_id_label: str = strawberry.field(description="Label of the MID (pgMerchantId).")
    merchant_id_pattern: str | None = strawberry.field(
        description="Regular expression an own MID must match, where the format is known."
    )
    merchant_id_help: str | None = strawberry.field(
        description="Where to find the MID, as the console explains it; null if none."
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
            name=module.name,
            versions=list(module.versions),
            purposes=list(module.purposes),
            merchant_id_label=module.merchant_id_label,
            merchant_id_pattern=module.merchant_id_pattern,
            merchant_id_help=module.merchant_id_help,
            credential_fields=[CredentialField.from_model(f) for f in module.credential_fields],
            shared_test_merchant_ids=[
                SharedTestMerchantId(merchant_id=m.merchant_id, label=m.label)
                for m in module.shared_test_merchant_ids
            ],
        )


@strawberry.type(description="A PG (결제대행사) and its payment modules.")
class PgProviderInfo:
    provider: PgProvider = strawberry.field(description="The PG's code, for pgProvider.")
    display_name: str = strawberry.field(description='e.g. "NHN KCP", "KG이니시스".')
    modules: list[PaymentModule] = strawberry.field(
        description="Its payment modules (결제 모듈) that match the query's filters."
    )

    @classmethod
    def from_model(cls, info: catalog.ProviderInfo) -> PgProviderInfo:
        return cls(
            provider=info.provider,
            display_name=info.display_name,
            modules=[PaymentModule.from_model(m) for m in info.modules],
        )
