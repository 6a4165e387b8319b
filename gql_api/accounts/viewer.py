"""The `Viewer`: who is calling, with their merchant and role."""

from __future__ import annotations

import strawberry
from sqlmodel import col

from db.models import AuthSession
from gql_api.accounts.sessions import own_sessions
from gql_api.accounts.types import SessionInfo, User
from gql_api.api_secrets.service import secret_by_pk
from gql_api.api_secrets.types import ApiSecret
from gql_api.context import Info
from gql_api.enums import MemberRole
from gql_api.members.loaders import UserLoader
from gql_api.pagination import After, Before, Connection, First, Last, PageRequest, connection
from gql_api.permissions import Principal
from gql_api.stores.merchant import Merchant, own_merchant


@strawberry.type(description="The authenticated caller.")
class Viewer:
    principal: strawberry.Private[Principal]

    @strawberry.field(description="The console user; null for an API-secret caller.")
    async def user(self, info: Info) -> User | None:
        if self.principal.user_id is None:
            return None
        row = await UserLoader.of(info.context).load(self.principal.user_id)
        return User.from_row(row) if row else None

    @strawberry.field(description="The caller's merchant (고객사).")
    def merchant(self, info: Info) -> Merchant:
        return own_merchant(info)

    @strawberry.field(description="The caller's role; null for an API-secret caller.")
    def role(self) -> MemberRole | None:
        return self.principal.role

    @strawberry.field(description="The API secret of a partner integration; null for users.")
    async def api_secret(self, info: Info) -> ApiSecret | None:
        if self.principal.api_secret_id is None:
            return None
        async with info.context.db() as db:
            row = await secret_by_pk(
                db=db, principal=self.principal, pk=self.principal.api_secret_id
            )
        return ApiSecret.from_row(row) if row else None

    @strawberry.field(
        description="The caller's console sessions that still work (neither logged out nor "
        "expired), newest first, the current one marked `current`. Users only: an API-secret "
        "caller gets FORBIDDEN."
    )
    async def sessions(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[SessionInfo]:
        request = PageRequest.of(info, first=first, after=after, last=last, before=before)
        statement = own_sessions(self.principal)
        current = self.principal.session_id
        return await connection(
            info.context.db,
            statement,
            col(AuthSession.id),
            request,
            lambda row: SessionInfo.from_row(row, current_session_id=current),
            newest_first=True,
        )
