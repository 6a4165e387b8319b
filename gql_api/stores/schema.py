"""Queries and mutations of the stores area."""

from __future__ import annotations

from typing import Annotated

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Store as StoreRow
from gql_api.context import Info
from gql_api.mutations import mutate
from gql_api.stores import service
from gql_api.stores.merchant import Merchant, own_merchant, visible_merchant
from gql_api.stores.types import Store
from gql_api.user_errors import UserError


@strawberry.input(description="Create a sub-store (하위 상점) under the caller's merchant.")
class StoreCreateInput:
    name: str = strawberry.field(description="1-100 characters, unique within the merchant.")


@strawberry.type(description="Result of storeCreate.")
class StoreCreatePayload:
    store: Store | None = strawberry.field(
        description="The new sub-store; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Rename a store.")
class StoreUpdateInput:
    store_id: str = strawberry.field(description="store-<uuid4> of the store to rename.")
    name: str = strawberry.field(description="1-100 characters, unique within the merchant.")


@strawberry.type(description="Result of storeUpdate.")
class StoreUpdatePayload:
    store: Store | None = strawberry.field(
        description="The renamed store; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Delete a sub-store; the representative store cannot be deleted.")
class StoreDeleteInput:
    store_id: str = strawberry.field(description="`store-<uuid>` of the sub-store to delete.")


@strawberry.type(description="Result of storeDelete.")
class StoreDeletePayload:
    deleted_store_id: str | None = strawberry.field(
        description="storeId of the deleted store; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.type
class Query:
    @strawberry.field(description="The caller's merchant (고객사).")
    def merchant(self, info: Info) -> Merchant | None:
        return own_merchant(info)

    @strawberry.field(description="A store by its storeId; null if absent or not visible.")
    async def store(
        self,
        info: Info,
        store_id: Annotated[
            str, strawberry.argument(description="The store's storeId, `store-<uuid>`.")
        ],
    ) -> Store | None:
        principal = info.context.require_principal()
        async with info.context.db() as db:
            row = await service.store_by_store_id(db=db, principal=principal, store_id=store_id)
        return Store.from_row(row) if row else None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a sub-store (하위 상점).")
    async def store_create(self, info: Info, input: StoreCreateInput) -> StoreCreatePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> StoreRow:
            return await service.create_sub_store(db=db, principal=principal, name=input.name)

        row, errors = await mutate(info, action)
        return StoreCreatePayload(store=Store.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Rename a store.")
    async def store_update(self, info: Info, input: StoreUpdateInput) -> StoreUpdatePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> StoreRow:
            return await service.rename_store(
                db=db, principal=principal, store_id=input.store_id, name=input.name
            )

        row, errors = await mutate(info, action)
        return StoreUpdatePayload(store=Store.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Delete a sub-store; its ID stops resolving.")
    async def store_delete(self, info: Info, input: StoreDeleteInput) -> StoreDeletePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> StoreRow:
            return await service.delete_sub_store(
                db=db, principal=principal, store_id=input.store_id
            )

        row, errors = await mutate(info, action)
        return StoreDeletePayload(
            deleted_store_id=row.store_id if row else None, user_errors=errors
        )


async def resolve_store_node(info: Info, pk: int) -> Store | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        row = await service.store_by_pk(db=db, principal=principal, pk=pk)
    return Store.from_row(row) if row else None


async def resolve_merchant_node(info: Info, pk: int) -> Merchant | None:
    return visible_merchant(info, pk)


NODE_RESOLVERS = {"Store": resolve_store_node, "Merchant": resolve_merchant_node}
