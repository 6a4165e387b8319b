"""Mutations of channels, and channel lookup by node ID."""

from __future__ import annotations

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Channel as ChannelRow
from gql_api.channels import rules, service
from gql_api.channels.types import Channel
from gql_api.context import Info
from gql_api.enums import ChannelPurpose, IntegrationMode, PgProvider, TaxType
from gql_api.input_limits import limited_list
from gql_api.mutations import mutate
from gql_api.pg_catalog import catalog
from gql_api.user_errors import UserError


@strawberry.input(description="A credential value; the key comes from the module's fields.")
class CredentialInput:
    key: str = strawberry.field(description="A credential key of the module, e.g. signKey.")
    value: str = strawberry.field(
        description="The value; secret ones are stored encrypted and never shown again."
    )


@strawberry.input(description="Add a channel (채널 추가) to a store.")
class ChannelCreateInput:
    store_id: str = strawberry.field(description="`store-<uuid>` of the store to add it to.")
    mode: IntegrationMode = strawberry.field(description="LIVE or TEST; cannot change later.")
    pg_provider: PgProvider = strawberry.field(description="The PG; cannot change later.")
    module_code: str = strawberry.field(description="A module code from pgProviders.")
    name: str = strawberry.field(description="1-100 characters, unique per store and mode.")
    pg_merchant_id: str = strawberry.field(
        description="Own MID, or one of the module's shared test MIDs (TEST mode only)."
    )
    purpose: ChannelPurpose = strawberry.field(
        default=catalog.ChannelPurpose.PAYMENT,
        description="결제 (PAYMENT, the default) or 본인인증; the module must serve it.",
    )
    credentials: list[CredentialInput] = limited_list(
        max_items=rules.MAX_CREDENTIALS,
        description="The module's credential fields (see pgProviders).",
        default_factory=list,
    )
    tax_type: TaxType = strawberry.field(
        default=rules.TaxType.UNSET, description="과세구분; UNSET (미설정) by default."
    )


@strawberry.type(description="Result of channelCreate.")
class ChannelCreatePayload:
    channel: Channel | None = strawberry.field(
        description="The new channel; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(
    description="Change a channel; omitted fields, and omitted secret credentials, stay as "
    "they are. Send an empty value to clear an optional credential."
)
class ChannelUpdateInput:
    id: strawberry.ID = strawberry.field(description="The Channel's global ID.")
    version: int = strawberry.field(description="The version you read; stale: VERSION_CONFLICT.")
    name: str | None = strawberry.field(
        default=None, description="New name, 1-100 characters, unique per store and mode."
    )
    pg_merchant_id: str | None = strawberry.field(
        default=None, description="New MID (PG상점아이디)."
    )
    credentials: list[CredentialInput] | None = limited_list(
        max_items=rules.MAX_CREDENTIALS,
        description="Credentials to change; the others stay.",
        default=None,
    )
    tax_type: TaxType | None = strawberry.field(default=None, description="New 과세구분.")


@strawberry.type(description="Result of channelUpdate.")
class ChannelUpdatePayload:
    channel: Channel | None = strawberry.field(
        description="The channel as changed; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Delete a channel; its channel key is never reused.")
class ChannelDeleteInput:
    id: strawberry.ID = strawberry.field(description="The Channel's global ID.")


@strawberry.type(description="Result of channelDelete.")
class ChannelDeletePayload:
    deleted_channel_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the deleted channel; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


def _values(items: list[CredentialInput] | None) -> list[rules.CredentialValue] | None:
    if items is None:
        return None
    return [rules.CredentialValue(key=i.key, value=i.value) for i in items]


def _services(info: Info) -> service.ChannelServices:
    app = info.context.app
    return service.ChannelServices(catalog=app.catalog, encryptor=app.encryptor)


def _channel(info: Info, row: ChannelRow | None) -> Channel | None:
    return Channel.from_row(row, info.context.app.catalog) if row else None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Add a PG channel (채널 추가) to a store.")
    async def channel_create(self, info: Info, input: ChannelCreateInput) -> ChannelCreatePayload:
        principal = info.context.require_principal()
        draft = service.ChannelDraft(
            store_id=input.store_id,
            mode=rules.IntegrationMode(input.mode),
            pg_provider=catalog.PgProvider(input.pg_provider),
            module_code=input.module_code,
            name=input.name,
            purpose=catalog.ChannelPurpose(input.purpose),
            pg_merchant_id=input.pg_merchant_id,
            credentials=_values(input.credentials) or [],
            tax_type=rules.TaxType(input.tax_type),
        )

        async def action(db: AsyncSession) -> ChannelRow:
            return await service.create_channel(
                db=db, principal=principal, services=_services(info), draft=draft
            )

        row, errors = await mutate(info, action)
        return ChannelCreatePayload(channel=_channel(info, row), user_errors=errors)

    @strawberry.mutation(description="Change a channel, given the version you read.")
    async def channel_update(self, info: Info, input: ChannelUpdateInput) -> ChannelUpdatePayload:
        principal = info.context.require_principal()
        changes = service.ChannelChanges(
            channel_id=str(input.id),
            version=input.version,
            name=input.name,
            pg_merchant_id=input.pg_merchant_id,
            credentials=_values(input.credentials),
            tax_type=rules.TaxType(input.tax_type) if input.tax_type is not None else None,
        )

        async def action(db: AsyncSession) -> ChannelRow:
            return await service.update_channel(
                db=db, principal=principal, services=_services(info), changes=changes
            )

        row, errors = await mutate(info, action)
        return ChannelUpdatePayload(channel=_channel(info, row), user_errors=errors)

    @strawberry.mutation(description="Delete a channel; its key is never reused.")
    async def channel_delete(self, info: Info, input: ChannelDeleteInput) -> ChannelDeletePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> ChannelRow:
            return await service.delete_channel(
                db=db, principal=principal, channel_id=str(input.id)
            )

        row, errors = await mutate(info, action)
        return ChannelDeletePayload(
            deleted_channel_id=input.id if row else None, user_errors=errors
        )


async def resolve_channel_node(info: Info, pk: int) -> Channel | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        row = await service.channel_by_pk(db=db, principal=principal, pk=pk)
    return _channel(info, row)


NODE_RESOLVERS = {"Channel": resolve_channel_node}
