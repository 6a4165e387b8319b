"""Console sessions: opening, revoking, and turning a bearer token into a Principal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.driver_query import DriverQuery
from db.models import AuthSession, Merchant, User
from db.types import utcnow
from gql_api.audit import service as audit
from gql_api.caller import Caller, CallerMerchant
from gql_api.errors import Unauthenticated
from gql_api.permissions import Principal, PrincipalKind, Role
from gql_api.security.tokens import SESSION_TOKEN_PREFIX, new_token, token_hash
from gql_api.settings import Settings

MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class OpenedSession:
    """A new log-in; `token` is the only copy of the secret and is shown once."""

    token: str
    row: AuthSession
    user: User


async def open_session(*, db: AsyncSession, settings: Settings, user: User) -> OpenedSession:
    assert user.id is not None
    token = new_token(SESSION_TOKEN_PREFIX)
    row = AuthSession(
        token_hash=token_hash(token),
        user_id=user.id,
        expires_at=utcnow() + timedelta(hours=settings.session_ttl_hours),
    )
    db.add(row)
    await db.flush()
    return OpenedSession(token=token, row=row, user=user)


async def revoke_session(*, db: AsyncSession, principal: Principal) -> bool:
    if principal.session_id is None:
        return False
    row = await db.get(AuthSession, principal.session_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    db.add(row)
    await audit.record_by(db, principal, "session.revoke", "Logged out")
    return True


class _SessionCaller(NamedTuple):
    """What authentication reads of a session, its user and their merchant (by column label)."""

    session_id: int
    revoked_at: datetime | None
    expires_at: datetime
    user_id: int
    merchant_pk: int
    role: str
    store_pk: int | None
    email: str
    removed_at: datetime | None
    merchant_name: str
    merchant_created_at: datetime


# The session, its user and their merchant in one row (`viewer { merchant }` needs no second
# query), read on every request, so run without the ORM (see db.driver_query).
_CALLER = DriverQuery(
    core_select(
        col(AuthSession.id).label("session_id"),
        col(AuthSession.revoked_at).label("revoked_at"),
        col(AuthSession.expires_at).label("expires_at"),
        col(User.id).label("user_id"),
        col(User.merchant_id).label("merchant_pk"),
        col(User.role).label("role"),
        col(User.store_pk).label("store_pk"),
        col(User.email).label("email"),
        col(User.removed_at).label("removed_at"),
        col(Merchant.name).label("merchant_name"),
        col(Merchant.created_at).label("merchant_created_at"),
    )
    .join(User, col(User.id) == col(AuthSession.user_id))
    .join(Merchant, col(Merchant.id) == col(User.merchant_id))
    .where(col(AuthSession.token_hash) == bindparam("token_hash")),
    _SessionCaller,
)


async def caller_for_session(*, engine: AsyncEngine, token: str) -> Caller:
    """The caller behind a `Bearer` session token; UNAUTHENTICATED says why it is refused.

    Read on a connection of its own, back in the pool before the query runs."""
    if not token.startswith(SESSION_TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("The bearer token is malformed.", reason="MALFORMED")
    found = await _CALLER.first(engine, token_hash=token_hash(token))
    if found is None:
        raise Unauthenticated("The session token is not valid.", reason="INVALID")
    if found.revoked_at is not None or found.removed_at is not None:
        raise Unauthenticated("The session has been logged out.", reason="REVOKED")
    if found.expires_at <= utcnow():
        raise Unauthenticated("The session has expired; log in again.", reason="EXPIRED")
    principal = _user_principal(
        found.merchant_pk, found.user_id, found.role, found.store_pk, found.session_id, found.email
    )
    merchant = CallerMerchant(found.merchant_pk, found.merchant_name, found.merchant_created_at)
    return Caller(principal, merchant)


def principal_of(user: User, session: AuthSession) -> Principal:
    assert user.id is not None
    return _user_principal(
        user.merchant_id, user.id, user.role, user.store_pk, session.id, user.email
    )


def _user_principal(
    merchant_pk: int,
    user_id: int,
    role: str,
    store_pk: int | None,
    session_id: int | None,
    email: str,
) -> Principal:
    return Principal(
        kind=PrincipalKind.USER,
        merchant_pk=merchant_pk,
        user_id=user_id,
        role=Role(role),
        store_pk=store_pk,
        session_id=session_id,
        label=email,
    )


async def revoke_user_sessions(db: AsyncSession, user_ids: Sequence[int]) -> None:
    """End every open session of these users (removed members, deleted sub-stores)."""
    if not user_ids:
        return
    await db.exec(
        update(AuthSession)
        .where(col(AuthSession.user_id).in_(user_ids), col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
