"""GraphQL type of an API secret: metadata only, never the secret or its hash."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import ApiSecret as ApiSecretRow
from db.types import utcnow
from gql_api.accounts.types import User
from gql_api.api_secrets import network_rules
from gql_api.api_secrets.pages import ApiSecretRecord
from gql_api.context import Info
from gql_api.members.loaders import UserLoader
from gql_api.node import Node, to_global_id


@strawberry.type(
    description="A rule of an API secret's network allowlist (규칙 번호 is its position in "
    "networkRules, from 1)."
)
class NetworkRule:
    cidr: str = strawberry.field(
        description="An IPv4 or IPv6 CIDR block, normalized (e.g. 203.0.113.0/24, 2001:db8::/32)."
    )
    memo: str | None = strawberry.field(description="규칙 메모, up to 100 characters.")


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
    network_rules: list[NetworkRule] = strawberry.field(
        description="Where it may be used from: uses of the secret and of the tokens exchanged "
        "for it from any other address are refused (UNAUTHENTICATED, extensions.reason "
        "NETWORK_NOT_ALLOWED). Empty: any address. At most 50 rules."
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
            network_rules=[
                NetworkRule(cidr=rule.cidr, memo=rule.memo)
                for rule in network_rules.rules_of(row.network_rules)
            ],
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
