"""GraphQL types of the members area."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import Invitation as InvitationRow
from db.models import User as UserRow
from gql_api.accounts.types import User
from gql_api.context import Info
from gql_api.enums import MemberRole
from gql_api.node import Node, to_global_id
from gql_api.stores.loaders import StoreLoader
from gql_api.stores.types import Store


async def _store(info: Info, store_pk: int | None) -> Store | None:
    if store_pk is None:
        return None
    row = await StoreLoader.of(info.context).load(store_pk)
    return Store.from_row(row) if row else None


@strawberry.type(description="A person's membership of the merchant, with their role.")
class Member(Node):
    user: User = strawberry.field(description="The member's console account.")
    role: MemberRole = strawberry.field(description="What the member may do.")
    created_at: datetime = strawberry.field(description="When they joined (RFC 3339, UTC).")
    store_pk: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: UserRow) -> Member:
        assert row.id is not None
        return cls(
            id=to_global_id("Member", row.id),
            user=User.from_row(row),
            role=MemberRole(row.role),
            created_at=row.created_at,
            store_pk=row.store_pk,
        )

    @strawberry.field(description="The sub-store a STORE_* role is bound to; null otherwise.")
    async def store(self, info: Info) -> Store | None:
        return await _store(info, self.store_pk)


@strawberry.type(description="A pending invitation; the token was shown once, to the inviter.")
class Invitation(Node):
    email: str = strawberry.field(description="Whom it was sent to.")
    role: MemberRole = strawberry.field(description="The role the invitee will have.")
    expires_at: datetime = strawberry.field(
        description="When the token stops working, 7 days after the invitation (RFC 3339, UTC)."
    )
    store_pk: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: InvitationRow) -> Invitation:
        assert row.id is not None
        return cls(
            id=to_global_id("Invitation", row.id),
            email=row.email,
            role=MemberRole(row.role),
            expires_at=row.expires_at,
            store_pk=row.store_pk,
        )

    @strawberry.field(description="The sub-store a STORE_* role will be bound to.")
    async def store(self, info: Info) -> Store | None:
        return await _store(info, self.store_pk)
