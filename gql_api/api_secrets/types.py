"""GraphQL type of an API secret: metadata only, never the secret or its hash."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import ApiSecret as ApiSecretRow
from db.types import utcnow
from gql_api.accounts.types import User
from gql_api.api_secrets.pages import ApiSecretRecord
from gql_api.context import Info
from gql_api.members.loaders import UserLoader
from gql_api.node import Node, to_global_id


@strawberry.type(description="A V2 API secret's metadata. The secret itself is shown only once.")
class ApiSecret(Node):
    name: str = strawberry.field(description="Secret 이름 given at issue, 1-100 characters.")
    hint: str = strawberry.field(
        description="A few characters to recognise it by, never enough to use it."
    )
    created_at: datetime = strawberry.field(description="When it was issued (RFC 3339, UTC).")
    expires_at: datetime | None = strawberry.field(description="null = no expiry (무기한).")
    last_used_at: datetime | None = strawberry.field(
        description="Last successful use, updated at most once a minute."
    )
    created_by_pk: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: ApiSecretRow | ApiSecretRecord) -> ApiSecret:
        assert row.id is not None
        return cls(
            id=to_global_id("ApiSecret", row.id),
            name=row.name,
            hint=row.hint,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            created_by_pk=row.created_by,
        )

    @strawberry.field(description="True once expiresAt has passed.")
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()

    @strawberry.field(description="Who issued it.")
    async def created_by(self, info: Info) -> User | None:
        if self.created_by_pk is None:
            return None
        row = await UserLoader.of(info.context).load(self.created_by_pk)
        return User.from_row(row) if row else None
