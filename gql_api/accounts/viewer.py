"""The `Viewer`: who is calling, with their merchant and role."""

from __future__ import annotations

import strawberry

from gql_api.accounts.types import MemberRole, User
from gql_api.context import Info
from gql_api.permissions import Principal
from gql_api.stores.merchant import Merchant


@strawberry.type(description="The authenticated caller.")
class Viewer:
    principal: strawberry.Private[Principal]

    @strawberry.field(description="The console user; null for an API-secret caller.")
    async def user(self, info: Info) -> User | None:
        if self.principal.user_id is None:
            return None
        row = await info.context.loaders.user.load(self.principal.user_id)
        return User.from_row(row) if row else None

    @strawberry.field(description="The caller's merchant (고객사).")
    async def merchant(self, info: Info) -> Merchant:
        row = await info.context.loaders.merchant.load(self.principal.merchant_id)
        if row is None:
            raise RuntimeError("principal without a merchant")
        return Merchant.from_row(row)

    @strawberry.field(description="The caller's role; null for an API-secret caller.")
    def role(self) -> MemberRole | None:  # type: ignore[valid-type]
        return self.principal.role
