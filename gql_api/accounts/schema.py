"""Queries and mutations of the accounts area: sign-up, log-in, log-out, viewer."""

from __future__ import annotations

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Tx
from gql_api.accounts import service, sessions
from gql_api.accounts.types import Session
from gql_api.accounts.viewer import Viewer
from gql_api.context import Info
from gql_api.mutations import mutate, mutate_in_steps
from gql_api.stores.merchant import Merchant
from gql_api.user_errors import UserError


@strawberry.input(description="Sign up a new merchant with its owner account.")
class MerchantSignUpInput:
    merchant_name: str = strawberry.field(description="고객사 name, 1-100 characters.")
    email: str = strawberry.field(description="The owner's email; one account per email.")
    password: str = strawberry.field(description="At least 10 characters.")
    name: str = strawberry.field(description="The owner's name, 1-100 characters.")


@strawberry.type(description="Result of merchantSignUp.")
class MerchantSignUpPayload:
    merchant: Merchant | None = strawberry.field(
        description="The new merchant; null when userErrors is not empty."
    )
    session: Session | None = strawberry.field(
        description="The owner's session (its token shown here only); null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Log in to the console with email and password.")
class SessionCreateInput:
    email: str = strawberry.field(description="The account's email.")
    password: str = strawberry.field(description="The account's password.")


@strawberry.type(description="Result of sessionCreate.")
class SessionCreatePayload:
    session: Session | None = strawberry.field(
        description="The new session (its token shown here only); null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        description="INVALID_CREDENTIALS when the email or password is wrong; empty on success."
    )


@strawberry.type(description="Result of sessionRevoke.")
class SessionRevokePayload:
    revoked: bool = strawberry.field(
        description="False when the session was already gone, or the caller uses an API secret."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Empty: logging out has no input to get wrong."
    )


@strawberry.type
class Query:
    @strawberry.field(description="The authenticated caller; null when unauthenticated.")
    def viewer(self, info: Info) -> Viewer | None:
        principal = info.context.principal
        return Viewer(principal=principal) if principal else None


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Create a merchant, its representative store (대표상점), the OWNER account "
        "and a session, in one transaction."
    )
    async def merchant_sign_up(
        self, info: Info, input: MerchantSignUpInput
    ) -> MerchantSignUpPayload:
        app = info.context.app

        async def action(tx: Tx) -> service.SignUp:
            return await service.sign_up(
                tx=tx,
                hashing=app.hashing,
                settings=app.settings,
                merchant_name=input.merchant_name,
                email=input.email,
                password=input.password,
                name=input.name,
            )

        result, errors = await mutate_in_steps(info, action)
        if result is None:
            return MerchantSignUpPayload(merchant=None, session=None, user_errors=errors)
        opened = result.session
        # The rest of the payload is resolved as the new owner.
        info.context.principal = sessions.principal_of(opened.user, opened.row)
        return MerchantSignUpPayload(
            merchant=Merchant.from_row(result.merchant),
            session=Session.create(token=opened.token, row=opened.row, user=opened.user),
            user_errors=[],
        )

    @strawberry.mutation(
        description="Log in. Failures are counted within a window (default 15 minutes): "
        "after 5 for one email from one client address, that address gets RATE_LIMITED for "
        "that email; after 50 from one address for any emails, that address gets RATE_LIMITED; "
        "an IPv6 address counts as its /64. Past 20 for one email from all addresses, its "
        "password checks take turns (at most a few seconds apart), and an attempt whose turn "
        "is over 30 seconds ahead gets RATE_LIMITED; an address that has logged in to the "
        "email within 30 days takes no turn, so guesses from elsewhere never delay or refuse "
        "the owner there."
    )
    async def session_create(self, info: Info, input: SessionCreateInput) -> SessionCreatePayload:
        app = info.context.app

        async def action(tx: Tx) -> sessions.OpenedSession:
            return await service.log_in(
                tx=tx,
                hashing=app.hashing,
                settings=app.settings,
                metrics=app.metrics,
                email=input.email,
                password=input.password,
                client_address=info.context.client_address,
            )

        opened, errors = await mutate_in_steps(info, action)
        if opened is None:
            return SessionCreatePayload(session=None, user_errors=errors)
        info.context.principal = sessions.principal_of(opened.user, opened.row)
        return SessionCreatePayload(
            session=Session.create(token=opened.token, row=opened.row, user=opened.user),
            user_errors=[],
        )

    @strawberry.mutation(description="Log out: the current session token stops working.")
    async def session_revoke(self, info: Info) -> SessionRevokePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> bool:
            return await sessions.revoke_session(db=db, principal=principal)

        revoked, errors = await mutate(info, action)
        return SessionRevokePayload(revoked=bool(revoked), user_errors=errors)
