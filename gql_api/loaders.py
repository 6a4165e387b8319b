"""Per-request DataLoaders, each scoped to the caller's merchant (no N+1, no leaks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlmodel import col, select
from strawberry.dataloader import DataLoader

from db.models import Store, User
from gql_api.channels.pages import ChannelPageKey, ChannelRecord, load_channel_pages
from gql_api.members.service import visible_members
from gql_api.pagination import Page
from gql_api.permissions import Access, Operation, access
from gql_api.stores.service import visible_stores
from gql_api.webhooks.service import Effective, SecretRecord, effective_for_stores, secrets_for

if TYPE_CHECKING:
    from gql_api.context import Context


class Loaders:
    def __init__(self, context: Context) -> None:
        self._context = context
        self.representative_store = DataLoader(self._representative_stores)
        self.user = DataLoader(self._users)
        self.store = DataLoader(self._stores)
        self.channel_pages = DataLoader(self._channel_pages)
        self.webhook_settings = DataLoader(self._webhook_settings)
        # Store rows already loaded by this request, so loaders need not read them again.
        self.store_rows: dict[int, Store] = {}
        self.webhook_secrets = DataLoader(self._webhook_secrets)

    def _merchant_id(self) -> int | None:
        principal = self._context.principal
        return principal.merchant_id if principal else None

    async def _representative_stores(self, merchant_ids: Sequence[int]) -> list[Store | None]:
        allowed = [i for i in merchant_ids if i == self._merchant_id()]
        async with self._context.db() as db:
            rows = (
                await db.exec(
                    select(Store).where(
                        col(Store.merchant_id).in_(allowed),
                        col(Store.is_representative).is_(True),
                    )
                )
            ).all()
        by_merchant = {row.merchant_id: row for row in rows}
        return [by_merchant.get(i) for i in merchant_ids]

    async def _users(self, ids: Sequence[int]) -> list[User | None]:
        """Users the caller may see as members (for createdBy and the viewer's own account)."""
        principal = self._context.principal
        if principal is None or access(principal, Operation.MEMBER_READ) is Access.NONE:
            return [None for _ in ids]
        statement = visible_members(principal).where(col(User.id).in_(ids))
        async with self._context.db() as db:
            rows = (await db.exec(statement)).all()
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def _stores(self, pks: Sequence[int]) -> list[Store | None]:
        principal = self._context.principal
        if principal is None:
            return [None for _ in pks]
        statement = visible_stores(principal).where(col(Store.id).in_(pks))
        async with self._context.db() as db:
            rows = (await db.exec(statement)).all()
        by_pk = {row.id: row for row in rows}
        return [by_pk.get(pk) for pk in pks]

    async def _channel_pages(self, keys: Sequence[ChannelPageKey]) -> list[Page[ChannelRecord]]:
        principal = self._context.require_principal()
        async with self._context.db() as db:
            return await load_channel_pages(await db.connection(), principal, keys)

    async def _webhook_settings(self, store_pks: Sequence[int]) -> list[list[Effective]]:
        principal = self._context.require_principal()
        representative = await self.representative_store.load(principal.merchant_id)
        stores = [self.store_rows[pk] for pk in store_pks]
        async with self._context.db() as db:
            found = await effective_for_stores(db, principal, stores, representative)
        return [found.get(pk, []) for pk in store_pks]

    async def _webhook_secrets(self, keys: Sequence[tuple[int, str]]) -> list[list[SecretRecord]]:
        principal = self._context.require_principal()
        async with self._context.db() as db:
            found = await secrets_for(db, principal, list(keys))
        return [found[key] for key in keys]
