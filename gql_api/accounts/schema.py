"""Queries and mutations of the accounts area: sign-up, log-in, sessions, passwords, viewer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Tx
from gql_api.accounts import member_sessions, service, sessions
from gql_api.accounts.types import Session, SessionInfo
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


@strawberry.input(description="Which of one's own sessions to end.")
class SessionRevokeInput:
    id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A SessionInfo ID from `viewer.sessions`; absent: the current session.",
    )


@strawberry.type(description="Result of sessionRevoke.")
class SessionRevokePayload:
    revoked: bool = strawberry.field(
        description="False when the session was already gone, or the caller uses an API secret."
    )
    user_errors: list[UserError] = strawberry.field(
        description="NOT_FOUND when `id` is not one of the caller's sessions; otherwise empty."
    )


@strawberry.type(description="Result of sessionRevokeAll.")
class SessionRevokeAllPayload:
    revoked_count: int | None = strawberry.field(
        description="How many other sessions were ended; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Empty: there is no input to get wrong."
    )


@strawberry.input(description="Change one's own password.")
class PasswordChangeInput:
    current_password: str = strawberry.field(
        description="The password in use now; checked, and throttled, like a log-in."
    )
    new_password: str = strawberry.field(
        description="At least 10 characters, not too repetitive (the sign-up rule)."
    )


@strawberry.type(description="Result of passwordChange.")
class PasswordChangePayload:
    revoked_session_count: int | None = strawberry.field(
        description="How many of the caller's other sessions were ended (every one but the "
        "current); null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="WEAK_PASSWORD or INVALID_INPUT for newPassword, INVALID_CREDENTIALS for "
        "currentPassword; empty on success."
    )


@strawberry.input(description="End every session of a member, who stays a member.")
class MemberSessionsRevokeInput:
    member_id: strawberry.ID = strawberry.field(description="The Member's ID.")


@strawberry.type(description="Result of memberSessionsRevoke.")
class MemberSessionsRevokePayload:
    revoked_count: int | None = strawberry.field(
        description="How many sessions of the member were ended; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="NOT_FOUND when the caller cannot see the member, ROLE_NOT_ALLOWED when "
        "the caller's role may not manage the member's; empty on success."
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
                client_address=info.context.client_address,
                user_agent=_user_agent(info),
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
                user_agent=_user_agent(info),
            )

        opened, errors = await mutate_in_steps(info, action)
        if opened is None:
            return SessionCreatePayload(session=None, user_errors=errors)
        info.context.principal = sessions.principal_of(opened.user, opened.row)
        return SessionCreatePayload(
            session=Session.create(token=opened.token, row=opened.row, user=opened.user),
            user_errors=[],
        )

    @strawberry.mutation(
        description="Log out: without `input.id`, the current session token stops working; "
        "with it, that one of the caller's own sessions does."
    )
    async def session_revoke(
        self, info: Info, input: SessionRevokeInput | None = None
    ) -> SessionRevokePayload:
        principal = info.context.require_principal()
        session_id = str(input.id) if input is not None and input.id is not None else None

        async def action(db: AsyncSession) -> bool:
            return await sessions.revoke_session(db=db, principal=principal, session_id=session_id)

        revoked, errors = await mutate(info, action)
        return SessionRevokePayload(revoked=bool(revoked), user_errors=errors)

    @strawberry.mutation(
        description="Log out everywhere else: every session of the caller but the current one "
        "stops working."
    )
    async def session_revoke_all(self, info: Info) -> SessionRevokeAllPayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> int:
            return await sessions.revoke_other_sessions(db=db, principal=principal)

        count, errors = await mutate(info, action)
        return SessionRevokeAllPayload(revoked_count=count, user_errors=errors)

    @strawberry.mutation(
        description="Change the caller's password (stored with argon2id) and end every other "
        "session of theirs; the current one goes on. A wrong current password counts as a "
        "failed log-in for the caller's email from this address (sessionCreate's limits)."
    )
    async def password_change(
        self, info: Info, input: PasswordChangeInput
    ) -> PasswordChangePayload:
        principal = info.context.require_principal()
        app = info.context.app

        async def action(tx: Tx) -> int:
            return await service.change_password(
                tx=tx,
                hashing=app.hashing,
                settings=app.settings,
                metrics=app.metrics,
                principal=principal,
                current_password=input.current_password,
                new_password=input.new_password,
                client_address=info.context.client_address,
            )

        count, errors = await mutate_in_steps(info, action)
        return PasswordChangePayload(revoked_session_count=count, user_errors=errors)

    @strawberry.mutation(
        description="End every session of a member the caller may manage (as for "
        "memberRemove), without removing them: they must log in again."
    )
    async def member_sessions_revoke(
        self, info: Info, input: MemberSessionsRevokeInput
    ) -> MemberSessionsRevokePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> int:
            return await member_sessions.revoke_member_sessions(
                db=db, principal=principal, member_id=str(input.member_id)
            )

        count, errors = await mutate(info, action)
        return MemberSessionsRevokePayload(revoked_count=count, user_errors=errors)


def _user_agent(info: Info) -> str | None:
    return info.context.request.headers.get("user-agent")


async def resolve_session_node(info: Info, pk: int) -> SessionInfo | None:
    """One of the caller's own working sessions; anyone else's does not exist for it."""
    principal = info.context.require_principal()
    if principal.user_id is None:
        return None
    async with info.context.db() as db:
        row = await sessions.own_session_by_pk(db=db, principal=principal, pk=pk)
    return SessionInfo.from_row(row, current_session_id=principal.session_id) if row else None


NODE_RESOLVERS: dict[str, Callable[[Info, int], Awaitable[Any]]] = {
    sessions.SESSION_TYPE: resolve_session_node
}
