"""DataLoaders of the stores area, scoped by gql_api.stores.service.visible_stores."""

from __future__ import annotations

from sqlmodel import col, select

from db.models import Store
from gql_api.dataloaders import AreaLoader
from gql_api.stores.service import visible_stores


class RepresentativeStoreLoader(AreaLoader[int, Store | None]):
    """The representative store (대표상점) by merchant pk: only the caller's own merchant."""

    context_key = "stores.representative_store"

    async def batch_load(self, keys: list[int]) -> list[Store | None]:
        principal = self.context.principal
        own = principal.merchant_pk if principal else None
        allowed = [i for i in keys if i == own]
        async with self.context.db() as db:
            rows = (
                await db.exec(
                    select(Store).where(
                        col(Store.merchant_id).in_(allowed),
                        col(Store.is_representative).is_(True),
                    )
                )
            ).all()
        by_merchant = {row.merchant_id: row for row in rows}
        return [by_merchant.get(i) for i in keys]


class StoreLoader(AreaLoader[int, Store | None]):
    """Stores by pk, among those the caller can see (None for the others)."""

    context_key = "stores.store"

    async def batch_load(self, keys: list[int]) -> list[Store | None]:
        principal = self.context.principal
        if principal is None:
            return [None for _ in keys]
        statement = visible_stores(principal).where(col(Store.id).in_(keys))
        async with self.context.db() as db:
            rows = (await db.exec(statement)).all()
        by_pk = {row.id: row for row in rows}
        return [by_pk.get(pk) for pk in keys]
