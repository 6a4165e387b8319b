"""Mutations of the members area: invite, accept, revoke and resend invitations, change role,
remove, transfer ownership."""

from __future__ import annotations

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Tx
from db.models import Invitation as InvitationRow
from db.models import User as UserRow
from gql_api.accounts import sessions
from gql_api.accounts.types import Session, User
from gql_api.context import Info
from gql_api.enums import MemberRole
from gql_api.members import invitations, service
from gql_api.members.types import Invitation, Member
from gql_api.mutations import mutate, mutate_in_steps
from gql_api.permissions import Role
from gql_api.user_errors import UserError


@strawberry.input(description="Invite a person to the merchant with a role.")
class MemberInviteInput:
    email: str = strawberry.field(description="The invitee's email.")
    role: MemberRole = strawberry.field(
        description="The role to give; one the caller may grant, never OWNER."
    )
    store_id: str | None = strawberry.field(
        default=None, description="The sub-store, for STORE_MANAGER and STORE_READ_ONLY only."
    )


@strawberry.type(description="Result of memberInvite.")
class MemberInvitePayload:
    invitation: Invitation | None = strawberry.field(
        description="The pending invitation; null when userErrors is not empty."
    )
    invitation_token: str | None = strawberry.field(
        description="Give this to the invitee; shown once, valid 7 days, single use."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Accept an invitation: creates the account and logs it in.")
class InvitationAcceptInput:
    token: str = strawberry.field(description="The invitationToken of memberInvite.")
    name: str = strawberry.field(description="1-100 characters.")
    password: str = strawberry.field(description="At least 10 characters.")


@strawberry.type(description="Result of invitationAccept.")
class InvitationAcceptPayload:
    member: Member | None = strawberry.field(
        description="The new member; null when userErrors is not empty."
    )
    session: Session | None = strawberry.field(
        description="The new member's session (its token shown here only); null on userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Withdraw a pending invitation.")
class InvitationRevokeInput:
    id: strawberry.ID = strawberry.field(description="The Invitation's global ID.")


@strawberry.type(description="Result of invitationRevoke.")
class InvitationRevokePayload:
    invitation: Invitation | None = strawberry.field(
        description="The invitation, now REVOKED; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Send a pending invitation again, with a new token.")
class InvitationResendInput:
    id: strawberry.ID = strawberry.field(description="The Invitation's global ID.")


@strawberry.type(description="Result of invitationResend.")
class InvitationResendPayload:
    invitation: Invitation | None = strawberry.field(
        description="The invitation with its new expiry; null when userErrors is not empty."
    )
    invitation_token: str | None = strawberry.field(
        description="The new token to give the invitee; shown once, valid 7 days, single use. "
        "The previous token no longer works."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Change a member's role (never OWNER: use the transfer).")
class MemberRoleUpdateInput:
    member_id: strawberry.ID = strawberry.field(description="The Member's global ID.")
    role: MemberRole = strawberry.field(
        description="The new role; one the caller may grant, never OWNER."
    )
    store_id: str | None = strawberry.field(
        default=None, description="The sub-store, for STORE_MANAGER and STORE_READ_ONLY only."
    )


@strawberry.type(description="Result of memberRoleUpdate.")
class MemberRoleUpdatePayload:
    member: Member | None = strawberry.field(
        description="The member with the new role; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Remove a member from the merchant (never the OWNER).")
class MemberRemoveInput:
    member_id: strawberry.ID = strawberry.field(description="The Member's global ID.")


@strawberry.type(description="Result of memberRemove.")
class MemberRemovePayload:
    removed_member_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the removed member; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Hand ownership to an existing ADMIN; the owner becomes ADMIN.")
class MerchantOwnershipTransferInput:
    member_id: strawberry.ID = strawberry.field(
        description="Global ID of the ADMIN member to become OWNER."
    )


@strawberry.type(description="Result of merchantOwnershipTransfer.")
class MerchantOwnershipTransferPayload:
    previous_owner: Member | None = strawberry.field(
        description="The caller, now ADMIN; null when userErrors is not empty."
    )
    new_owner: Member | None = strawberry.field(
        description="The new OWNER; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


def _member(row: UserRow | None) -> Member | None:
    return Member.from_row(row) if row else None


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Invite a person with a role; returns the invitation token to hand over."
    )
    async def member_invite(self, info: Info, input: MemberInviteInput) -> MemberInvitePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> service.IssuedInvitation:
            return await service.invite(
                db=db,
                principal=principal,
                email=input.email,
                role=Role(input.role),
                store_id=input.store_id,
            )

        issued, errors = await mutate(info, action)
        if issued is None:
            return MemberInvitePayload(invitation=None, invitation_token=None, user_errors=errors)
        return MemberInvitePayload(
            invitation=Invitation.from_row(issued.row),
            invitation_token=issued.token,
            user_errors=[],
        )

    @strawberry.mutation(description="Accept an invitation; returns the new member's session.")
    async def invitation_accept(
        self, info: Info, input: InvitationAcceptInput
    ) -> InvitationAcceptPayload:
        app = info.context.app

        async def action(tx: Tx) -> service.Accepted:
            return await service.accept(
                tx=tx,
                hashing=app.hashing,
                settings=app.settings,
                token=input.token,
                name=input.name,
                password=input.password,
                client_address=info.context.client_address,
                user_agent=info.context.request.headers.get("user-agent"),
            )

        accepted, errors = await mutate_in_steps(info, action)
        if accepted is None:
            return InvitationAcceptPayload(member=None, session=None, user_errors=errors)
        opened = accepted.session
        info.context.principal = sessions.principal_of(opened.user, opened.row)
        return InvitationAcceptPayload(
            member=Member.from_row(accepted.member),
            session=Session.create(token=opened.token, row=opened.row, user=opened.user),
            user_errors=[],
        )

    @strawberry.mutation(
        description="Withdraw a pending invitation (INVITATION_NOT_PENDING otherwise); its token "
        "stops working at once."
    )
    async def invitation_revoke(
        self, info: Info, input: InvitationRevokeInput
    ) -> InvitationRevokePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> InvitationRow:
            return await invitations.revoke(db=db, principal=principal, invitation_id=str(input.id))

        row, errors = await mutate(info, action)
        return InvitationRevokePayload(
            invitation=Invitation.from_row(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(
        description="Send a pending invitation again (INVITATION_NOT_PENDING otherwise): a new "
        "token, shown once, valid 7 days from now; the previous token stops working."
    )
    async def invitation_resend(
        self, info: Info, input: InvitationResendInput
    ) -> InvitationResendPayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> service.IssuedInvitation:
            return await invitations.resend(db=db, principal=principal, invitation_id=str(input.id))

        issued, errors = await mutate(info, action)
        if issued is None:
            return InvitationResendPayload(
                invitation=None, invitation_token=None, user_errors=errors
            )
        return InvitationResendPayload(
            invitation=Invitation.from_row(issued.row),
            invitation_token=issued.token,
            user_errors=[],
        )

    @strawberry.mutation(description="Change a member's role, within what the caller may grant.")
    async def member_role_update(
        self, info: Info, input: MemberRoleUpdateInput
    ) -> MemberRoleUpdatePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> UserRow:
            return await service.update_role(
                db=db,
                principal=principal,
                member_id=str(input.member_id),
                role=Role(input.role),
                store_id=input.store_id,
            )

        row, errors = await mutate(info, action)
        return MemberRoleUpdatePayload(member=_member(row), user_errors=errors)

    @strawberry.mutation(description="Remove a member; their sessions end at once.")
    async def member_remove(self, info: Info, input: MemberRemoveInput) -> MemberRemovePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> UserRow:
            return await service.remove(db=db, principal=principal, member_id=str(input.member_id))

        row, errors = await mutate(info, action)
        return MemberRemovePayload(
            removed_member_id=input.member_id if row else None, user_errors=errors
        )

    @strawberry.mutation(description="Make an existing ADMIN the owner; the caller becomes ADMIN.")
    async def merchant_ownership_transfer(
        self, info: Info, input: MerchantOwnershipTransferInput
    ) -> MerchantOwnershipTransferPayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> tuple[UserRow, UserRow]:
            return await service.transfer_ownership(
                db=db, principal=principal, member_id=str(input.member_id)
            )

        pair, errors = await mutate(info, action)
        return MerchantOwnershipTransferPayload(
            previous_owner=_member(pair[0]) if pair else None,
            new_owner=_member(pair[1]) if pair else None,
            user_errors=errors,
        )


async def resolve_member_node(info: Info, pk: int) -> Member | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        row = await service.member_by_pk(db=db, principal=principal, pk=pk)
    return _member(row)


async def resolve_user_node(info: Info, pk: int) -> User | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        row = await service.member_by_pk(db=db, principal=principal, pk=pk)
    return User.from_row(row) if row else None


async def resolve_invitation_node(info: Info, pk: int) -> Invitation | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        row = await invitations.invitation_by_pk(db=db, principal=principal, pk=pk)
    return Invitation.from_row(row) if row else None


NODE_RESOLVERS = {
    "Member": resolve_member_node,
    "User": resolve_user_node,
    "Invitation": resolve_invitation_node,
}
