"""Turn an `Authorization` header into a Principal, or say why it is refused."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from gql_api.accounts.sessions import principal_for_session
from gql_api.errors import Unauthenticated
from gql_api.permissions import Principal


async def authenticate(db: AsyncSession, header: str) -> Principal:
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if not credential:
        raise Unauthenticated(
            "The Authorization header must be `Bearer <token>`.", reason="MALFORMED"
        )
    if scheme.lower() == "bearer":
        return await principal_for_session(db=db, token=credential)
    raise Unauthenticated(
        "Unsupported authorization scheme; use `Bearer <session token>`.", reason="MALFORMED"
    )
