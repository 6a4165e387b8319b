"""Business rules for members and invitations; the role rules come from gql_api.permissions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.engine import Tx
from db.models import Invitation, Merchant, Store, User
from db.types import utcnow
from gql_api import validation
from gql_api.accounts.service import user_by_email
from gql_api.accounts.sessions import OpenedSession, open_session, revoke_user_sessions
from gql_api.audit import service as audit
from gql_api.errors import DomainError, Forbidden, Problems, UserErrorCode
from gql_api.i18n import _
from gql_api.ids import global_id, pk_of
from gql_api.permissions import (
    GRANTABLE,
    STORE_SCOPED_ROLES,
    Access,
    Operation,
    Principal,
    Role,
    access,
    grantable_roles,
    require,
)
from gql_api.scoping import scope_to_store
from gql_api.security.passwords import PasswordHashing
from gql_api.security.tokens import INVITATION_TOKEN_PREFIX, new_token, token_hash
from gql_api.settings import Settings
from gql_api.stores.service import require_store, store_id_of

INVITATION_TTL = timedelta(days=7)
DEVELOPER_LIMIT = 10
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class IssuedInvitation:
    """A new invitation; `token` is the only copy and is shown once."""

    token: str
    row: Invitation


@dataclass(frozen=True)
class Accepted:
    member: User
    session: OpenedSession


def visible_members(principal: Principal) -> SelectOfScalar[User]:
    """Active members of the caller's merchant; STORE_* callers see only their sub-store's;
    API secrets see none (FORBIDDEN)."""
    require(principal, Operation.MEMBER_READ)
    statement = select(User).where(
        col(User.merchant_id) == principal.merchant_pk, col(User.removed_at).is_(None)
    )
    return scope_to_store(statement, principal, Operation.MEMBER_READ, col(User.store_pk))


async def member_by_pk(*, db: AsyncSession, principal: Principal, pk: int) -> User | None:
    if access(principal, Operation.MEMBER_READ) is Access.NONE:
        return None
    return (await db.exec(visible_members(principal).where(col(User.id) == pk))).first()


async def invite(
    *, db: AsyncSession, principal: Principal, email: str, role: Role, store_id: str | None
) -> IssuedInvitation:
    require(principal, Operation.MEMBER_MANAGE)
    assert principal.user_id is not None
    problems = Problems()
    email = validation.email(problems, email, ("input", "email"))
    problems.raise_if_any()
    _check_grantable(principal, role, ("input", "role"))
    store_pk = await _store_for_role(db, principal, role, store_id)
    existing = await user_by_email(db, email)
    # Another merchant's account is none of this merchant's business: the invitation is made as
    # for any new email, and the clash surfaces only to the invitee, when accepting.
    if existing is not None and existing.merchant_id == principal.merchant_pk:
        raise DomainError.single(
            UserErrorCode.ALREADY_MEMBER, ("input", "email"), _("This person is already a member.")
        )
    now = utcnow()
    # A new invitation supersedes the pending ones for the same email, but only those the
    # caller could have issued itself.
    pending = (
        await db.exec(
            select(Invitation).where(
                col(Invitation.merchant_id) == principal.merchant_pk,
                col(Invitation.email) == email,
                col(Invitation.accepted_at).is_(None),
                col(Invitation.revoked_at).is_(None),
                col(Invitation.expires_at) > now,
            )
        )
    ).all()
    for earlier in pending:
        if not _may_issue(principal, Role(earlier.role), earlier.store_pk):
            raise DomainError.single(
                UserErrorCode.ROLE_NOT_ALLOWED,
                ("input", "email"),
                _("This email has a pending invitation that your role cannot replace."),
            )
        earlier.revoked_at = now
        db.add(earlier)
    if role is Role.DEVELOPER:
        await _check_developer_limit(db, principal.merchant_pk, ("input", "role"))
    token = new_token(INVITATION_TOKEN_PREFIX)
    row = Invitation(
        merchant_id=principal.merchant_pk,
        email=email,
        role=role.value,
        store_pk=store_pk,
        token_hash=token_hash(token),
        invited_by=principal.user_id,
        expires_at=now + INVITATION_TTL,
    )
    db.add(row)
    await db.flush()
    assert row.id is not None
    await audit.record_by(
        db,
        principal,
        "member.invite",
        f"Invited {email} as {role.value}",
        store_id=store_id if store_pk is not None else None,
        target_id=global_id("Invitation", row.id),
    )
    return IssuedInvitation(token=token, row=row)


async def accept(
    *,
    tx: Tx,
    hashing: PasswordHashing,
    settings: Settings,
    token: str,
    name: str,
    password: str,
    client_address: str | None = None,
    user_agent: str | None = None,
) -> Accepted:
    """Create the invited account and log it in (its session seen from `client_address` with
    `user_agent`); the token works once (argon2 runs between the reads and the write, with no
    connection held)."""
    invitation = None
    if token.startswith(INVITATION_TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH:
        statement = select(Invitation).where(col(Invitation.token_hash) == token_hash(token))
        invitation = (await tx.db.exec(statement)).first()
    if invitation is None or invitation.accepted_at or invitation.revoked_at:
        raise DomainError.single(
            UserErrorCode.TOKEN_INVALID,
            ("input", "token"),
            _("This invitation is not valid (unknown, already used or withdrawn)."),
        )
    if invitation.expires_at <= utcnow():
        raise DomainError.single(
            UserErrorCode.TOKEN_EXPIRED,
            ("input", "token"),
            _("This invitation has expired; ask for a new one."),
        )
    problems = Problems()
    name = validation.name(problems, name, ("input", "name"), label=_("Name"))
    validation.new_password(problems, password, ("input", "password"))
    problems.raise_if_any()
    if await user_by_email(tx.db, invitation.email) is not None:
        raise _invited_email_taken()
    if invitation.store_pk is not None:
        store = await tx.db.get(Store, invitation.store_pk)
        if store is None or store.deleted_at is not None:
            raise DomainError.single(
                UserErrorCode.TOKEN_INVALID,
                ("input", "token"),
                _("The sub-store of this invitation no longer exists."),
            )
    role = Role(invitation.role)
    inviter = await tx.db.get(User, invitation.invited_by)
    if not _inviter_may_still_grant(inviter, role, invitation.store_pk):
        raise DomainError.single(
            UserErrorCode.TOKEN_INVALID,
            ("input", "token"),
            _("This invitation was withdrawn: whoever sent it can no longer grant this role."),
        )
    if role is Role.DEVELOPER:
        await _check_developer_limit(
            tx.db, invitation.merchant_id, ("input", "token"), invitation.id
        )
    await tx.release()
    password_hash = await hashing.hash(password)
    async with tx.write() as db:
        invitation = (
            await db.exec(
                select(Invitation)
                .where(
                    col(Invitation.id) == invitation.id,
                    # resent meanwhile (invitationResend): the old token died with it
                    col(Invitation.token_hash) == token_hash(token),
                    col(Invitation.accepted_at).is_(None),
                    col(Invitation.revoked_at).is_(None),
                )
                .with_for_update()
            )
        ).first()
        if invitation is None:  # accepted, withdrawn or resent while the password was hashed
            raise DomainError.single(
                UserErrorCode.TOKEN_INVALID, ("input", "token"), _("This invitation is not valid.")
            )
        user = User(
            merchant_id=invitation.merchant_id,
            email=invitation.email,
            name=name,
            password_hash=password_hash,
            role=role.value,
            store_pk=invitation.store_pk,
        )
        invitation.accepted_at = utcnow()
        db.add_all([user, invitation])
        try:
            await db.flush()
        except IntegrityError:  # the email signed up elsewhere at the same moment
            raise _invited_email_taken() from None
        assert user.id is not None
        await audit.record(
            db,
            merchant_pk=user.merchant_id,
            actor=user.email,
            action="invitation.accept",
            store_id=await store_id_of(db, user.store_pk),
            target_id=global_id("Member", user.id),
            summary=f"{user.email} joined as {role.value}",
        )
        opened = await open_session(
            db=db,
            settings=settings,
            user=user,
            client_address=client_address,
            user_agent=user_agent,
        )
        return Accepted(member=user, session=opened)


async def update_role(
    *,
    db: AsyncSession,
    principal: Principal,
    member_id: str,
    role: Role,
    store_id: str | None,
) -> User:
    require(principal, Operation.MEMBER_MANAGE)
    member = await _managed_member(db, principal, member_id)
    if role is Role.OWNER:
        raise DomainError.single(
            UserErrorCode.ROLE_NOT_ALLOWED,
            ("input", "role"),
            _("Ownership moves only with merchantOwnershipTransfer."),
        )
    _check_grantable(principal, role, ("input", "role"))
    store_pk = await _store_for_role(db, principal, role, store_id)
    previous = Role(member.role)
    if role is Role.DEVELOPER and previous is not Role.DEVELOPER:
        await _check_developer_limit(db, principal.merchant_pk, ("input", "role"))
    member.role = role.value
    member.store_pk = store_pk
    db.add(member)
    await db.flush()
    assert member.id is not None
    if role is not previous:  # what they sent under their old role no longer stands
        await _withdraw_invitations_by(db, member.id)
    await audit.record_by(
        db,
        principal,
        "member.role_update",
        f"Changed {member.email} from {previous.value} to {role.value}",
        store_id=store_id if store_pk is not None else None,
        target_id=global_id("Member", member.id),
    )
    return member


async def remove(*, db: AsyncSession, principal: Principal, member_id: str) -> User:
    """The member loses access at once; the row stays for the audit trail."""
    require(principal, Operation.MEMBER_MANAGE)
    member = await _managed_member(db, principal, member_id)
    assert member.id is not None
    member.removed_at = utcnow()
    db.add(member)
    await revoke_user_sessions(db, [member.id])
    await _withdraw_invitations_by(db, member.id)
    await audit.record_by(
        db,
        principal,
        "member.remove",
        f"Removed {member.email} ({member.role})",
        store_id=await store_id_of(db, member.store_pk),
        target_id=global_id("Member", member.id),
    )
    return member


async def transfer_ownership(
    *, db: AsyncSession, principal: Principal, member_id: str
) -> tuple[User, User]:
    """The owner hands ownership to an existing ADMIN and becomes ADMIN. (previous, new)"""
    require(principal, Operation.OWNERSHIP_TRANSFER)
    assert principal.user_id is not None
    # Re-read the caller, locked: an earlier transfer in this or another request may have
    # made it an ADMIN already.
    owner = (
        await db.exec(
            select(User)
            .where(col(User.id) == principal.user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if owner is None or owner.role != Role.OWNER.value or owner.removed_at is not None:
        raise Forbidden(_("Only the owner can transfer ownership."))
    target = await _member(db, principal, member_id)
    if target.role != Role.ADMIN.value:
        raise DomainError.single(
            UserErrorCode.ROLE_NOT_ALLOWED,
            ("input", "memberId"),
            _("Ownership can move only to an existing ADMIN."),
        )
    assert target.id is not None
    owner.role = Role.ADMIN.value
    db.add(owner)
    await db.flush()  # demote first: at most one OWNER at any moment (uq_users_one_owner)
    target.role = Role.OWNER.value
    db.add(target)
    await db.flush()
    await audit.record_by(
        db,
        principal,
        "merchant.ownership_transfer",
        f"Transferred ownership from {owner.email} to {target.email}",
        target_id=global_id("Member", target.id),
    )
    return owner, target


def _may_grant(
    granter: Role, granter_store_pk: int | None, role: Role, store_pk: int | None
) -> bool:
    """The grantable-role rule (permissions.GRANTABLE) on the same store scope: a store-scoped
    granter grants only within its own sub-store."""
    if role not in GRANTABLE[granter]:
        return False
    return granter not in STORE_SCOPED_ROLES or store_pk == granter_store_pk


def _may_issue(principal: Principal, role: Role, store_pk: int | None) -> bool:
    if principal.role is None:  # API secrets grant nothing
        return False
    return _may_grant(principal.role, principal.store_pk, role, store_pk)


def _inviter_may_still_grant(inviter: User | None, role: Role, store_pk: int | None) -> bool:
    if inviter is None or inviter.removed_at is not None:
        return False
    return _may_grant(Role(inviter.role), inviter.store_pk, role, store_pk)


async def _withdraw_invitations_by(db: AsyncSession, user_id: int) -> None:
    await db.exec(
        update(Invitation)
        .where(
            col(Invitation.invited_by) == user_id,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
        )
        .values(revoked_at=utcnow())
    )


def _invited_email_taken() -> DomainError:
    return DomainError.single(
        UserErrorCode.EMAIL_TAKEN,
        ("input", "token"),
        _("The invited email has meanwhile been registered with another account."),
    )


async def _member(db: AsyncSession, principal: Principal, member_id: str) -> User:
    """The member to act on, its row locked until the transaction ends (FOR NO KEY UPDATE on
    PostgreSQL; SQLite writes one at a time) and read afresh: role changes, removals and the
    ownership transfer of one member then run one after another, and none writes over what
    another committed after it read (a demotion read before a transfer made the member OWNER
    would leave the merchant without an owner). NO KEY: rows that only refer to the member (an
    invitation it sends) are not held up, as they would be by FOR UPDATE."""
    pk = pk_of(member_id, "Member")
    member = None
    if pk is not None and access(principal, Operation.MEMBER_READ) is not Access.NONE:
        statement = visible_members(principal).where(col(User.id) == pk)
        statement = statement.with_for_update(key_share=True)
        member = (await db.exec(statement.execution_options(populate_existing=True))).first()
    if member is None:
        raise DomainError.single(
            UserErrorCode.NOT_FOUND, ("input", "memberId"), _("No member with this ID.")
        )
    return member


async def _managed_member(db: AsyncSession, principal: Principal, member_id: str) -> User:
    """A member the caller may act on: never the owner, never one above the caller."""
    member = await _member(db, principal, member_id)
    current = Role(member.role)
    if current is Role.OWNER:
        raise DomainError.single(
            UserErrorCode.OWNER_REQUIRED,
            ("input", "memberId"),
            _("The owner cannot be removed or demoted; transfer ownership first."),
        )
    if current not in grantable_roles(principal):
        raise DomainError.single(
            UserErrorCode.ROLE_NOT_ALLOWED,
            ("input", "memberId"),
            _("Your role cannot manage a member with the {role} role.", role=current.value),
        )
    return member


def _check_grantable(principal: Principal, role: Role, path: tuple[str, ...]) -> None:
    if role not in grantable_roles(principal):
        raise DomainError.single(
            UserErrorCode.ROLE_NOT_ALLOWED,
            path,
            _("Your role cannot grant the {role} role.", role=role.value),
        )


async def _store_for_role(
    db: AsyncSession, principal: Principal, role: Role, store_id: str | None
) -> int | None:
    """The sub-store a STORE_* role is bound to; None for merchant-wide roles."""
    path = ("input", "storeId")
    if role not in STORE_SCOPED_ROLES:
        if store_id is not None:
            raise DomainError.single(
                UserErrorCode.INVALID_INPUT,
                path,
                _("storeId applies only to STORE_MANAGER and STORE_READ_ONLY."),
            )
        return None
    if store_id is None:
        raise DomainError.single(
            UserErrorCode.REQUIRED,
            path,
            _("{role} needs the sub-store it is bound to.", role=role.value),
        )
    store = await require_store(
        db=db, principal=principal, operation=Operation.MEMBER_MANAGE, store_id=store_id, path=path
    )
    if store.is_representative:
        raise DomainError.single(
            UserErrorCode.INVALID_INPUT,
            path,
            _("Store-scoped roles are bound to a sub-store, not the representative store."),
        )
    return store.id


async def _check_developer_limit(
    db: AsyncSession,
    merchant_pk: int,
    path: tuple[str, ...],
    accepting_invitation: int | None = None,
) -> None:
    """At most DEVELOPER_LIMIT developers, pending invitations included.

    The merchant row is locked first (FOR UPDATE on PostgreSQL; SQLite writes one at a time),
    so concurrent invitations cannot all see the same free slot.
    """
    await db.exec(select(Merchant.id).where(col(Merchant.id) == merchant_pk).with_for_update())
    members = (
        await db.exec(
            select(func.count()).where(
                col(User.merchant_id) == merchant_pk,
                col(User.role) == Role.DEVELOPER.value,
                col(User.removed_at).is_(None),
            )
        )
    ).one()
    pending_statement = select(func.count()).where(
        col(Invitation.merchant_id) == merchant_pk,
        col(Invitation.role) == Role.DEVELOPER.value,
        col(Invitation.accepted_at).is_(None),
        col(Invitation.revoked_at).is_(None),
        col(Invitation.expires_at) > utcnow(),
    )
    if accepting_invitation is not None:
        pending_statement = pending_statement.where(col(Invitation.id) != accepting_invitation)
    pending = (await db.exec(pending_statement)).one()
    if members + pending >= DEVELOPER_LIMIT:
        raise DomainError.single(
            UserErrorCode.MEMBER_LIMIT_EXCEEDED,
            path,
            _(
                "A merchant can have at most {limit} developers (pending invitations included).",
                limit=DEVELOPER_LIMIT,
            ),
        )
