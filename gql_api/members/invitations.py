"""Managing invitations after they are sent: their status, listing, revoking and resending.

An invitation's status is never stored: it follows from its timestamps (`status_of` in Python,
`has_status` in SQL, one definition each, kept equal by the tests), so an invitation expires
without any job and a filtered page is filtered by the database, not after the fact.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from sqlalchemy import ColumnElement, and_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.models import Invitation
from db.types import utcnow
from gql_api.audit import service as audit
from gql_api.errors import DomainError, UserErrorCode
from gql_api.i18n import Message, _
from gql_api.ids import global_id, pk_of
from gql_api.members.service import INVITATION_TTL, IssuedInvitation
from gql_api.permissions import (
    Access,
    Operation,
    Principal,
    access,
    grantable_roles,
    require,
)
from gql_api.scoping import scope_to_store
from gql_api.security.tokens import INVITATION_TOKEN_PREFIX, new_token, token_hash
from gql_api.stores.service import store_id_of

_ID_PATH = ("input", "id")


class InvitationStatus(StrEnum):
    PENDING = "PENDING"  # neither accepted nor revoked, and not expired
    ACCEPTED = "ACCEPTED"
    EXPIRED = "EXPIRED"  # expires_at passed before anyone accepted or revoked it
    REVOKED = "REVOKED"  # invitationRevoke, superseded by a new invitation, or its inviter left


def status_of(row: Invitation, now: datetime | None = None) -> InvitationStatus:
    """The status of `row` at `now` (default: this moment); the same rule as `has_status`."""
    if row.accepted_at is not None:
        return InvitationStatus.ACCEPTED
    if row.revoked_at is not None:
        return InvitationStatus.REVOKED
    moment = utcnow() if now is None else now
    return InvitationStatus.EXPIRED if row.expires_at <= moment else InvitationStatus.PENDING


def has_status(status: InvitationStatus) -> ColumnElement[bool]:
    """SQL true for the invitations whose `status_of` is `status` now."""
    accepted = col(Invitation.accepted_at)
    revoked = col(Invitation.revoked_at)
    expires_at = col(Invitation.expires_at)
    now = utcnow()
    match status:
        case InvitationStatus.ACCEPTED:
            return accepted.is_not(None)
        case InvitationStatus.REVOKED:
            return and_(accepted.is_(None), revoked.is_not(None))
        case InvitationStatus.EXPIRED:
            return and_(accepted.is_(None), revoked.is_(None), expires_at <= now)
        case InvitationStatus.PENDING:
            return and_(accepted.is_(None), revoked.is_(None), expires_at > now)


def visible_invitations(
    principal: Principal, status: InvitationStatus | None = None
) -> SelectOfScalar[Invitation]:
    """The invitations the caller could have sent: of its merchant, for a role it may grant,
    and for a STORE_MANAGER only those to its own sub-store. FORBIDDEN without MEMBER_MANAGE.

    The same set answers the list, `node` and the mutations, so an invitation one may not
    manage is simply not there (NOT_FOUND), as is another merchant's."""
    require(principal, Operation.MEMBER_MANAGE)
    roles = sorted(role.value for role in grantable_roles(principal))
    statement = select(Invitation).where(
        col(Invitation.merchant_id) == principal.merchant_pk, col(Invitation.role).in_(roles)
    )
    if status is not None:
        statement = statement.where(has_status(status))
    return scope_to_store(statement, principal, Operation.MEMBER_MANAGE, col(Invitation.store_pk))


async def invitation_by_pk(*, db: AsyncSession, principal: Principal, pk: int) -> Invitation | None:
    """An invitation of any status, if the caller may manage it (see visible_invitations)."""
    if access(principal, Operation.MEMBER_MANAGE) is Access.NONE:
        return None
    statement = visible_invitations(principal).where(col(Invitation.id) == pk)
    return (await db.exec(statement)).first()


async def revoke(*, db: AsyncSession, principal: Principal, invitation_id: str) -> Invitation:
    """Withdraw a pending invitation: its token stops working at once (invitationAccept
    refuses it as TOKEN_INVALID)."""
    row = await _pending(db, principal, invitation_id, "revoke")
    row.revoked_at = utcnow()
    db.add(row)
    await db.flush()
    assert row.id is not None
    await audit.record_by(
        db,
        principal,
        "invitation.revoke",
        f"Revoked the invitation of {row.email} as {row.role}",
        store_id=await store_id_of(db, row.store_pk),
        target_id=global_id("Invitation", row.id),
    )
    return row


async def resend(*, db: AsyncSession, principal: Principal, invitation_id: str) -> IssuedInvitation:
    """Give a pending invitation a new token and a new 7-day expiry; the old token dies (only
    the new token's hash is kept). The caller becomes its inviter: accepting then checks that
    the caller may still grant the role, and removing the caller withdraws it."""
    row = await _pending(db, principal, invitation_id, "resend")
    assert principal.user_id is not None
    token = new_token(INVITATION_TOKEN_PREFIX)
    row.token_hash = token_hash(token)
    row.expires_at = utcnow() + INVITATION_TTL
    row.invited_by = principal.user_id
    db.add(row)
    await db.flush()
    assert row.id is not None
    await audit.record_by(
        db,
        principal,
        "invitation.resend",
        f"Resent the invitation of {row.email} as {row.role} with a new token",
        store_id=await store_id_of(db, row.store_pk),
        target_id=global_id("Invitation", row.id),
    )
    return IssuedInvitation(token=token, row=row)


async def _pending(
    db: AsyncSession, principal: Principal, invitation_id: str, action: Literal["revoke", "resend"]
) -> Invitation:
    """The invitation, locked, if the caller may manage it and it is still pending."""
    require(principal, Operation.MEMBER_MANAGE)
    pk = pk_of(invitation_id, "Invitation")
    row = None
    if pk is not None:
        statement = visible_invitations(principal).where(col(Invitation.id) == pk)
        row = (await db.exec(statement.with_for_update())).first()
    if row is None:
        raise DomainError.single(
            UserErrorCode.NOT_FOUND, _ID_PATH, _("No invitation with this ID.")
        )
    status = status_of(row)
    if status is not InvitationStatus.PENDING:
        raise DomainError.single(
            UserErrorCode.INVITATION_NOT_PENDING,
            _ID_PATH,
            _not_pending(status, action),
        )
    return row


def _not_pending(status: InvitationStatus, action: Literal["revoke", "resend"]) -> Message:
    """Why `action` is refused: one whole sentence per action, so a translation never has to
    fit a verb into a sentence built around it."""
    if action == "revoke":
        return _(
            "This invitation is {status}; only a PENDING invitation can be revoked.",
            status=status.value,
        )
    return _(
        "This invitation is {status}; only a PENDING invitation can be resent.",
        status=status.value,
    )
