"""Mutations of API secrets and the token exchange."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Tx
from db.models import ApiSecret as ApiSecretRow
from gql_api.api_secrets import auth, service
from gql_api.api_secrets.network_rules import MAX_RULES, NetworkNotAllowed, NetworkRule
from gql_api.api_secrets.types import ApiSecret
from gql_api.context import Info
from gql_api.errors import DomainError
from gql_api.http_conventions import WWW_AUTHENTICATE
from gql_api.input_limits import limited_list
from gql_api.mutations import mutate, mutate_in_steps
from gql_api.user_errors import UserError, user_errors


@strawberry.input(description="Issue a V2 API secret for a store.")
class ApiSecretIssueInput:
    store_id: str = strawberry.field(
        description="A representative-store secret reaches every store; a sub-store's only it."
    )
    name: str = strawberry.field(description="Secret 이름, 1-100 characters.")
    expiration_days: int | None = strawberry.field(
        default=None, description="만료 기한: 1-3650 days, or null for no expiry."
    )


@strawberry.type(description="Result of apiSecretIssue.")
class ApiSecretIssuePayload:
    api_secret: ApiSecret | None = strawberry.field(
        description="The new secret's metadata; null when userErrors is not empty."
    )
    secret: str | None = strawberry.field(
        description="The secret, in this payload only: copy it now, it cannot be shown again. "
        "Send it as `Authorization: PortOne <secret>`."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(
    description="Delete an API secret; it and the tokens exchanged for it stop working."
)
class ApiSecretDeleteInput:
    id: strawberry.ID = strawberry.field(description="The ApiSecret's global ID.")


@strawberry.type(description="Result of apiSecretDelete.")
class ApiSecretDeletePayload:
    deleted_api_secret_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the deleted secret; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="A network rule: a CIDR block and an optional memo (규칙 메모).")
class NetworkRuleInput:
    cidr: str = strawberry.field(
        description="An IPv4 or IPv6 CIDR block (203.0.113.0/24, 2001:db8::/32); a single "
        "address is written with /32 (IPv4) or /128 (IPv6). Host bits must be zero."
    )
    memo: str | None = strawberry.field(
        default=None, description="규칙 메모, up to 100 characters; empty or null for none."
    )


@strawberry.input(description="Replace an API secret's network rules.")
class ApiSecretNetworkRulesUpdateInput:
    id: strawberry.ID = strawberry.field(description="The ApiSecret's global ID.")
    rules: list[NetworkRuleInput] = limited_list(
        max_items=MAX_RULES,
        description="The whole allowlist, in order (규칙 번호 1, 2, …; no repeats); an empty "
        "list allows any address.",
    )


@strawberry.type(description="Result of apiSecretNetworkRulesUpdate.")
class ApiSecretNetworkRulesUpdatePayload:
    api_secret: ApiSecret | None = strawberry.field(
        description="The secret with its new rules; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input (paths such as input.rules.3.cidr); empty on success."
    )


@strawberry.input(description="Exchange an API secret for an access and a refresh token.")
class ApiSecretLoginInput:
    api_secret: str = strawberry.field(description="The V2 API secret, as shown at issue.")


@strawberry.input(description="Exchange a refresh token for a new access and refresh token.")
class AccessTokenRefreshInput:
    refresh_token: str = strawberry.field(
        description="The latest refresh token of apiSecretLogin or accessTokenRefresh."
    )


@strawberry.type(description="Tokens for `Authorization: Bearer <accessToken>`; shown once.")
class ApiSecretLoginPayload:
    access_token: str | None = strawberry.field(description="Valid 30 minutes.")
    refresh_token: str | None = strawberry.field(
        description="Valid 1 day, single use; earlier refresh tokens stop working."
    )
    access_token_expires_at: datetime | None = strawberry.field(
        description="When the access token stops working (RFC 3339, UTC)."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


def _pair_payload(pair: auth.TokenPair | None, errors: list[UserError]) -> ApiSecretLoginPayload:
    if pair is None:
        return ApiSecretLoginPayload(
            access_token=None, refresh_token=None, access_token_expires_at=None, user_errors=errors
        )
    return ApiSecretLoginPayload(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        access_token_expires_at=pair.access_token_expires_at,
        user_errors=[],
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Issue a V2 API secret for a store.")
    async def api_secret_issue(
        self, info: Info, input: ApiSecretIssueInput
    ) -> ApiSecretIssuePayload:
        principal = info.context.require_principal()

        async def action(tx: Tx) -> service.IssuedSecret:
            return await service.issue(
                tx=tx,
                principal=principal,
                hashing=info.context.app.hashing,
                store_id=input.store_id,
                name=input.name,
                expiration_days=input.expiration_days,
            )

        issued, errors = await mutate_in_steps(info, action)
        if issued is None:
            return ApiSecretIssuePayload(api_secret=None, secret=None, user_errors=errors)
        return ApiSecretIssuePayload(
            api_secret=ApiSecret.from_row(issued.row), secret=issued.plaintext, user_errors=[]
        )

    @strawberry.mutation(
        description="Delete an API secret; it and the tokens exchanged for it stop working."
    )
    async def api_secret_delete(
        self, info: Info, input: ApiSecretDeleteInput
    ) -> ApiSecretDeletePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> ApiSecretRow:
            return await service.delete(db=db, principal=principal, secret_id=str(input.id))

        row, errors = await mutate(info, action)
        return ApiSecretDeletePayload(
            deleted_api_secret_id=input.id if row else None, user_errors=errors
        )

    @strawberry.mutation(
        description="Replace an API secret's network allowlist (beyond PortOne V2): from the "
        "next request, in every process, uses of the secret and of tokens exchanged for it "
        "from any other address are refused with UNAUTHENTICATED (extensions.reason "
        "NETWORK_NOT_ALLOWED, HTTP 401). An empty list allows any address."
    )
    async def api_secret_network_rules_update(
        self, info: Info, input: ApiSecretNetworkRulesUpdateInput
    ) -> ApiSecretNetworkRulesUpdatePayload:
        principal = info.context.require_principal()
        rules = [NetworkRule(cidr=rule.cidr, memo=rule.memo) for rule in input.rules]

        async def action(db: AsyncSession) -> ApiSecretRow:
            return await service.update_network_rules(
                db=db, principal=principal, secret_id=str(input.id), rules=rules
            )

        row, errors = await mutate(info, action)
        return ApiSecretNetworkRulesUpdatePayload(
            api_secret=ApiSecret.from_row(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(description="Exchange an API secret for tokens (as PortOne offers).")
    async def api_secret_login(
        self, info: Info, input: ApiSecretLoginInput
    ) -> ApiSecretLoginPayload:
        try:
            secret_id = await info.context.app.verifier.secret_id_for_login(
                plaintext=input.api_secret,
                client_address=info.context.client_address,
            )
        except DomainError as error:
            return _pair_payload(None, user_errors(error))
        except NetworkNotAllowed:  # counted and audited already
            _unauthorized(info)
            raise

        async def action(db: AsyncSession) -> auth.TokenPair:
            return await auth.issue_pair(db, secret_id)

        pair, errors = await mutate(info, action)
        return _pair_payload(pair, errors)

    @strawberry.mutation(description="Rotate tokens: the refresh token is spent.")
    async def access_token_refresh(
        self, info: Info, input: AccessTokenRefreshInput
    ) -> ApiSecretLoginPayload:
        async def action(db: AsyncSession) -> auth.TokenPair:
            return await auth.refresh(
                db=db, refresh_token=input.refresh_token, client_address=info.context.client_address
            )

        try:
            pair, errors = await mutate(info, action)
        except NetworkNotAllowed as refused:
            # Rolled back by now: the audit event commits on its own without waiting for it.
            await info.context.app.verifier.record_refusal(refused, credential="refresh token")
            _unauthorized(info)
            raise
        return _pair_payload(pair, errors)


def _unauthorized(info: Info) -> None:
    """HTTP 401 with WWW-Authenticate, as for a refused Authorization header: a credential in
    the input refused by its secret's network rules is answered the same way."""
    response = info.context.response
    if response is not None:
        response.status_code = 401
        response.headers["WWW-Authenticate"] = WWW_AUTHENTICATE


async def resolve_api_secret_node(info: Info, pk: int) -> ApiSecret | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        row = await service.secret_by_pk(db=db, principal=principal, pk=pk)
    return ApiSecret.from_row(row) if row else None


NODE_RESOLVERS = {"ApiSecret": resolve_api_secret_node}
