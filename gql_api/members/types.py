"""GraphQL types of the members area."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from sqlmodel import col

from db.models import Invitation as InvitationRow
from db.models import User as UserRow
from db.types import utcnow
from gql_api.accounts.types import User
from gql_api.context import Info
from gql_api.enums import MemberRole, describe_values
from gql_api.members.invitations import InvitationStatus, status_of, visible_invitations
from gql_api.node import Node, to_global_id
from gql_api.pagination import After, Before, Connection, First, Last, PageRequest, connection
from gql_api.stores.loaders import StoreLoader
from gql_api.stores.types import Store


async def _store(info: Info, store_pk: int | None) -> Store | None:
    if store_pk is None:
        return None
    row = await StoreLoader.of(info.context).load(store_pk)
    return Store.from_row(row) if row else None


@strawberry.type(description="A person's membership of the merchant, with their role.")
class Member(Node):
    user: User = strawberry.field(description="The member's console account.")
    role: MemberRole = strawberry.field(description="What the member may do.")
    created_at: datetime = strawberry.field(description="When they joined (RFC 3339, UTC).")
    store_pk: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: UserRow) -> Member:
        assert row.id is not None
        return cls(
            id=to_global_id("Member", row.id),
            user=User.from_row(row),
            role=MemberRole(row.role),
            created_at=row.created_at,
            store_pk=row.store_pk,
        )

    @strawberry.field(description="The sub-store a STORE_* role is bound to; null otherwise.")
    async def store(self, info: Info) -> Store | None:
        return await _store(info, self.store_pk)


strawberry.enum(
    InvitationStatus,
    name="InvitationStatus",
    description="Where an invitation stands, computed from its dates when read.",
)
describe_values(
    InvitationStatus,
    {
        InvitationStatus.PENDING: "Its token works: not accepted, revoked or expired.",
        InvitationStatus.ACCEPTED: "The invitee joined with it (invitationAccept).",
        InvitationStatus.EXPIRED: "7 days passed (since it was sent or last resent) before "
        "anyone accepted or revoked it.",
        InvitationStatus.REVOKED: "Withdrawn: by invitationRevoke, by a newer invitation to the "
        "same email, because its inviter left or changed role, or its sub-store was deleted.",
    },
)


@strawberry.type(
    description="An invitation to join the merchant; its token was shown once, to whoever sent "
    "or last resent it, and is never shown again."
)
class Invitation(Node):
    email: str = strawberry.field(description="Whom it was sent to.")
    role: MemberRole = strawberry.field(description="The role the invitee will have.")
    status: InvitationStatus = strawberry.field(
        description="PENDING, ACCEPTED, EXPIRED or REVOKED, as of this request."
    )
    created_at: datetime = strawberry.field(
        description="When it was first sent (RFC 3339, UTC); a resend keeps it."
    )
    expires_at: datetime = strawberry.field(
        description="When the token stops working, 7 days after the invitation or its last "
        "resend (RFC 3339, UTC)."
    )
    store_pk: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: InvitationRow) -> Invitation:
        assert row.id is not None
        return cls(
            id=to_global_id("Invitation", row.id),
            email=row.email,
            role=MemberRole(row.role),
            status=status_of(row, utcnow()),
            created_at=row.created_at,
            expires_at=row.expires_at,
            store_pk=row.store_pk,
        )

    @strawberry.field(description="The sub-store a STORE_* role will be bound to.")
    async def store(self, info: Info) -> Store | None:
        return await _store(info, self.store_pk)


StatusFilter = Annotated[
    InvitationStatus | None,
    strawberry.argument(description="Only invitations with this status (default: all)."),
]


async def invitation_connection(
    info: Info,
    *,
    first: First = None,
    after: After = None,
    last: Last = None,
    before: Before = None,
    status: StatusFilter = None,
) -> Connection[Invitation]:
    """`Merchant.invitations`: newest first, filtered by status in SQL so pages and
    totalCount agree with the filter."""
    principal = info.context.require_principal()
    request = PageRequest.of(info, first=first, after=after, last=last, before=before)
    return await connection(
        info.context.db,
        visible_invitations(principal, status),
        col(InvitationRow.id),
        request,
        Invitation.from_row,
        newest_first=True,
    )


INVITATIONS_DESCRIPTION = (
    "Invitations, newest first, of every status (or `status`); only those the caller could "
    "send: roles it may grant, and for a STORE_MANAGER its own sub-store's. Tokens never "
    "appear here. Needs a role that may manage members (FORBIDDEN otherwise)."
)
