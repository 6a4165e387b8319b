"""Turn an `Authorization` header into a Caller, or say why it is refused."""

from __future__ import annotations

from gql_api.accounts.sessions import caller_for_session
from gql_api.api_secrets.auth import (
    SecretVerifier,
    caller_for_access_token,
)
from gql_api.caller import Caller
from gql_api.errors import Unauthenticated
from gql_api.i18n import _
from gql_api.security.tokens import ACCESS_TOKEN_PREFIX

SCHEMES = _("`Bearer <session or access token>` or `PortOne <API secret>`")


async def authenticate(
    verifier: SecretVerifier, header: str, *, client_address: str, user_agent: str | None = None
) -> Caller:
    """Reads on connections of its own, each back in the pool before the query runs.

    `client_address` (gql_api.client_address) keys the throttling of failed API-secret uses
    and, with `user_agent`, is what a session's list entry shows it was last seen from.
    """
    scheme, _sep, credential = header.strip().partition(" ")
    credential = credential.strip()
    if not credential:
        raise Unauthenticated(
            _("The Authorization header must be {schemes}.", schemes=SCHEMES), reason="MALFORMED"
        )
    if scheme.lower() == "bearer":
        if credential.startswith(ACCESS_TOKEN_PREFIX):
            return await caller_for_access_token(
                verifier=verifier, token=credential, client_address=client_address
            )
        return await caller_for_session(
            engine=verifier.engine,
            token=credential,
            client_address=client_address,
            user_agent=user_agent,
        )
    if scheme.lower() == "portone":
        return await verifier.caller(plaintext=credential, client_address=client_address)
    raise Unauthenticated(
        _("Unsupported authorization scheme; use {schemes}.", schemes=SCHEMES), reason="MALFORMED"
    )
