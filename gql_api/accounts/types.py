"""GraphQL types of the accounts area: users and sessions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import AuthSession as AuthSessionRow
from db.models import User as UserRow
from gql_api.node import Node, to_global_id


@strawberry.type(description="A console account.")
class User(Node):
    email: str = strawberry.field(description="Log-in email, unique across the service.")
    name: str = strawberry.field(description="The person's name, 1-100 characters.")

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        assert row.id is not None
        return cls(id=to_global_id("User", row.id), email=row.email, name=row.name)


@strawberry.type(description="A console log-in. The token is shown in this payload only.")
class Session:
    token: str = strawberry.field(
        description="Send as `Authorization: Bearer <token>`. Shown once; stored only hashed."
    )
    expires_at: datetime = strawberry.field(
        description="When the token stops working (RFC 3339, UTC)."
    )
    user: User = strawberry.field(description="The account logged in.")

    @classmethod
    def create(cls, *, token: str, row: AuthSessionRow, user: UserRow) -> Session:
        return cls(token=token, expires_at=row.expires_at, user=User.from_row(user))
