"""Ending a member's sessions without removing them (memberSessionsRevoke).

Kept apart from accounts.sessions: it asks the members area who may be acted on, and the
members area itself opens and ends sessions through accounts.sessions.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Store
from gql_api.accounts.sessions import end_sessions
from gql_api.audit import service as audit
from gql_api.errors import DomainError, UserErrorCode
from gql_api.i18n import _
from gql_api.ids import global_id, pk_of
from gql_api.members.service import member_by_pk
from gql_api.permissions import Operation, Principal, Role, grantable_roles, require


async def revoke_member_sessions(*, db: AsyncSession, principal: Principal, member_id: str) -> int:
    """End every working session of a member the caller may manage; how many were ended.

    "May manage" is the rule of memberRoleUpdate and memberRemove: MEMBER_MANAGE, and the
    member's role among those the caller's role grants (permissions.GRANTABLE), so never the
    owner; a store-scoped caller sees, and so acts on, only its sub-store's members. A member
    the caller cannot see (another merchant's, another sub-store's) is NOT_FOUND."""
    require(principal, Operation.MEMBER_MANAGE)
    pk = pk_of(member_id, "Member")
    member = await member_by_pk(db=db, principal=principal, pk=pk) if pk is not None else None
    if member is None or member.id is None:
        raise DomainError.single(
            UserErrorCode.NOT_FOUND, ("input", "memberId"), _("No member with this ID.")
        )
    role = Role(member.role)
    if role not in grantable_roles(principal):
        raise DomainError.single(
            UserErrorCode.ROLE_NOT_ALLOWED,
            ("input", "memberId"),
            _("Your role cannot manage a member with the {role} role.", role=role.value),
        )
    ended = await end_sessions(db, member.id)
    store = await db.get(Store, member.store_pk) if member.store_pk is not None else None
    await audit.record_by(
        db,
        principal,
        "member.sessions_revoke",
        f"Ended {ended} session(s) of {member.email} ({role.value})",
        store_id=store.store_id if store is not None else None,
        target_id=global_id("Member", member.id),
    )
    return ended
