"""Turn an `Authorization` header into a Principal, or say why it is refused."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from gql_api.accounts.sessions import principal_for_session
from gql_api.api_secrets.auth import (
    SecretVerifier,
    principal_for_access_token,
    principal_for_secret,
)
from gql_api.errors import Unauthenticated
from gql_api.permissions import Principal
from gql_api.security.tokens import ACCESS_TOKEN_PREFIX

SCHEMES = "`Bearer <session or access token>` or `PortOne <API secret>`"


async def authenticate(db: AsyncSession, verifier: SecretVerifier, header: str) -> Principal:
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if not credential:
        raise Unauthenticated(f"The Authorization header must be {SCHEMES}.", reason="MALFORMED")
    if scheme.lower() == "bearer":
        if credential.startswith(ACCESS_TOKEN_PREFIX):
            return await principal_for_access_token(db=db, token=credential)
        return await principal_for_session(db=db, token=credential)
    if scheme.lower() == "portone":
        return await principal_for_secret(db=db, verifier=verifier, plaintext=credential)
    raise Unauthenticated(f"Unsupported authorization scheme; use {SCHEMES}.", reason="MALFORMED")
