"""GraphQL types of the accounts area: users, sessions, the viewer."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import AuthSession as AuthSessionRow
from db.models import User as UserRow
from gql_api.context import Info
from gql_api.node import Node, to_global_id
from gql_api.permissions import Principal, Role
from gql_api.stores.types import Merchant

MemberRole = strawberry.enum(
    Role,
    name="MemberRole",
    description="Console roles; STORE_* roles are bound to one sub-store and see nothing else.",
)


@strawberry.type(description="A console account.")
class User(Node):
    email: str
    name: str

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        assert row.id is not None
        return cls(id=to_global_id("User", row.id), email=row.email, name=row.name)


@strawberry.type(description="A console log-in. The token is shown in this payload only.")
class Session:
    token: str = strawberry.field(
        description="Send as `Authorization: Bearer <token>`. Shown once; stored only hashed."
    )
    expires_at: datetime
    user: User

    @classmethod
    def create(cls, *, token: str, row: AuthSessionRow, user: UserRow) -> Session:
        return cls(token=token, expires_at=row.expires_at, user=User.from_row(user))


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
