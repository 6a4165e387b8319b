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


@strawberry.type(
    description="One of the caller's console log-ins that still works (the token itself is "
    "never shown again): when it began, when and where from it was last used."
)
class SessionInfo(Node):
    created_at: datetime = strawberry.field(description="When the session was opened (log-in).")
    last_seen_at: datetime | None = strawberry.field(
        description="When the session was last used, to the minute: written at most once a "
        "minute. Null for a session opened before this was recorded and unused since."
    )
    expires_at: datetime = strawberry.field(
        description="When the session stops working unless revoked earlier."
    )
    client_address: str | None = strawberry.field(
        description="The client address it was last used from (the connection's, or the one a "
        "trusted proxy forwarded); null when not recorded."
    )
    user_agent: str | None = strawberry.field(
        description="The User-Agent it was opened or last used with, at most 256 printable "
        "characters; null when none was sent."
    )
    current: bool = strawberry.field(
        description="True for the session this request is authenticated with."
    )

    @classmethod
    def from_row(cls, row: AuthSessionRow, *, current_session_id: int | None) -> SessionInfo:
        assert row.id is not None
        return cls(
            id=to_global_id("SessionInfo", row.id),
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            client_address=row.client_address,
            user_agent=row.user_agent,
            current=row.id == current_session_id,
        )
