"""Console sessions: opening, listing, revoking, and turning a bearer token into a Principal.

A session records when it was last seen and from which client address (gql_api.client_address)
with which user agent. Authentication reads `last_seen_at` with the session it reads anyway and
writes it only when it is a minute old or more, with a guarded UPDATE: the database decides,
so however many processes see the session at once, it is written at most once a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import CursorResult, Update, bindparam, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.driver_query import DriverQuery
from db.engine import independent_write
from db.models import AuthSession, Merchant, User
from db.types import utcnow
from gql_api.audit import service as audit
from gql_api.caller import Caller, CallerMerchant
from gql_api.errors import DomainError, Unauthenticated, UserErrorCode
from gql_api.i18n import _
from gql_api.ids import global_id, pk_of
from gql_api.permissions import Operation, Principal, PrincipalKind, Role, require
from gql_api.security.tokens import SESSION_TOKEN_PREFIX, new_token, token_hash
from gql_api.settings import Settings

MAX_TOKEN_LENGTH = 512
USER_AGENT_MAX_LENGTH = 256
SESSION_TYPE = "SessionInfo"  # the GraphQL type, and the type name in its global IDs
# How stale lastSeenAt may be: authentication writes it at most this often per session.
LAST_SEEN_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class OpenedSession:
    """A new log-in; `token` is the only copy of the secret and is shown once."""

    token: str
    row: AuthSession
    user: User


async def open_session(
    *,
    db: AsyncSession,
    settings: Settings,
    user: User,
    client_address: str | None = None,
    user_agent: str | None = None,
) -> OpenedSession:
    """A new session, seen now from `client_address` with `user_agent` (when known)."""
    assert user.id is not None
    token = new_token(SESSION_TOKEN_PREFIX)
    now = utcnow()
    row = AuthSession(
        token_hash=token_hash(token),
        user_id=user.id,
        created_at=now,
        expires_at=now + timedelta(hours=settings.session_ttl_hours),
        last_seen_at=now,
        client_address=client_address,
        user_agent=clean_user_agent(user_agent),
    )
    db.add(row)
    await db.flush()
    return OpenedSession(token=token, row=row, user=user)


def clean_user_agent(value: str | None) -> str | None:
    """The User-Agent as shown back to its user: printable characters only, at most
    USER_AGENT_MAX_LENGTH of them (a client chooses it, so it is never trusted to be short)."""
    if value is None:
        return None
    printable = "".join(ch for ch in value[: 4 * USER_AGENT_MAX_LENGTH] if ch.isprintable())
    return printable.strip()[:USER_AGENT_MAX_LENGTH] or None


async def revoke_session(
    *, db: AsyncSession, principal: Principal, session_id: str | None = None
) -> bool:
    """End one of the caller's own sessions: the current one when `session_id` is None.

    False when it had already ended (or an API secret asks to log out: it has no session);
    NOT_FOUND for an ID that is not one of the caller's sessions (another user's included)."""
    if session_id is None:
        if principal.session_id is None:
            return False
        pk: int | None = principal.session_id
        row = await db.get(AuthSession, pk)
    else:
        pk = pk_of(session_id, SESSION_TYPE)
        row = await db.get(AuthSession, pk) if pk is not None else None
        if row is None or principal.user_id is None or row.user_id != principal.user_id:
            raise DomainError.single(
                UserErrorCode.NOT_FOUND, ("input", "id"), _("No session of yours has this ID.")
            )
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return False
    row.revoked_at = now
    db.add(row)
    assert row.id is not None
    if row.id == principal.session_id:
        await audit.record_by(db, principal, "session.revoke", "Logged out")
    else:
        await audit.record_by(
            db,
            principal,
            "session.revoke",
            f"Ended another session of theirs ({_described(row)})",
            target_id=global_id(SESSION_TYPE, row.id),
        )
    return True


def own_sessions(principal: Principal) -> SelectOfScalar[AuthSession]:
    """The caller's sessions that still work (neither revoked nor expired); users only:
    API secrets have no sessions (FORBIDDEN)."""
    require(principal, Operation.OWN_ACCOUNT)
    return select(AuthSession).where(
        col(AuthSession.user_id) == principal.user_id,
        col(AuthSession.revoked_at).is_(None),
        col(AuthSession.expires_at) > utcnow(),
    )


async def own_session_by_pk(
    *, db: AsyncSession, principal: Principal, pk: int
) -> AuthSession | None:
    """One of the caller's working sessions (node(id:)); None for anyone else's."""
    if principal.user_id is None:
        return None
    return (await db.exec(own_sessions(principal).where(col(AuthSession.id) == pk))).first()


async def revoke_other_sessions(*, db: AsyncSession, principal: Principal) -> int:
    """End every working session of the caller but the current one; how many were ended."""
    require(principal, Operation.OWN_ACCOUNT)
    assert principal.user_id is not None
    count = await end_sessions(db, principal.user_id, keep=principal.session_id)
    await audit.record_by(
        db,
        principal,
        "session.revoke_all",
        f"Logged out everywhere else: ended {count} other session(s)",
        target_id=global_id("User", principal.user_id),
    )
    return count


async def end_sessions(db: AsyncSession, user_id: int, *, keep: int | None = None) -> int:
    """End the working sessions of one user, all of them or all but `keep`; how many."""
    statement = update(AuthSession).where(
        col(AuthSession.user_id) == user_id,
        col(AuthSession.revoked_at).is_(None),
        col(AuthSession.expires_at) > utcnow(),
    )
    if keep is not None:
        statement = statement.where(col(AuthSession.id) != keep)
    result = await db.exec(statement.values(revoked_at=utcnow()))
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _described(row: AuthSession) -> str:
    """A session in an audit summary: when it began and where it was last seen, no token."""
    where = row.client_address or "an unknown address"
    return f"opened {row.created_at:%Y-%m-%d %H:%M} UTC, last seen from {where}"


class _SessionCaller(NamedTuple):
    """What authentication reads of a session, its user and their merchant (by column label)."""

    session_id: int
    revoked_at: datetime | None
    expires_at: datetime
    last_seen_at: datetime | None
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
        col(AuthSession.last_seen_at).label("last_seen_at"),
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


async def caller_for_session(
    *,
    engine: AsyncEngine,
    token: str,
    client_address: str | None = None,
    user_agent: str | None = None,
) -> Caller:
    """The caller behind a `Bearer` session token; UNAUTHENTICATED says why it is refused.

    Read on a connection of its own, back in the pool before the query runs. When the session
    was last seen a minute ago or more, it is marked seen now, from `client_address` (and with
    `user_agent` when given): one short write a minute per session, none otherwise."""
    if not token.startswith(SESSION_TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated(_("The bearer token is malformed."), reason="MALFORMED")
    found = await _CALLER.first(engine, token_hash=token_hash(token))
    if found is None:
        raise Unauthenticated(_("The session token is not valid."), reason="INVALID")
    if found.revoked_at is not None or found.removed_at is not None:
        raise Unauthenticated(_("The session has been logged out."), reason="REVOKED")
    now = utcnow()
    if found.expires_at <= now:
        raise Unauthenticated(_("The session has expired; log in again."), reason="EXPIRED")
    if found.last_seen_at is None or found.last_seen_at <= now - LAST_SEEN_GRANULARITY:
        # On its own: authentication runs before, and outside, any mutation's unit of work.
        async with independent_write(engine, short=True) as conn:  # one row by its key
            await conn.execute(seen_statement(found.session_id, now, client_address, user_agent))
    principal = _user_principal(
        found.merchant_pk, found.user_id, found.role, found.store_pk, found.session_id, found.email
    )
    merchant = CallerMerchant(found.merchant_pk, found.merchant_name, found.merchant_created_at)
    return Caller(principal, merchant)


def seen_statement(
    session_id: int, now: datetime, client_address: str | None, user_agent: str | None
) -> Update:
    """lastSeenAt (and where from), written only if still a minute old: of processes that
    see the session at the same moment, one writes and the others change nothing."""
    values: dict[str, object] = {"last_seen_at": now}
    if client_address is not None:
        values["client_address"] = client_address
    if user_agent is not None:
        values["user_agent"] = clean_user_agent(user_agent)
    return (
        update(AuthSession)
        .where(
            col(AuthSession.id) == session_id,
            or_(
                col(AuthSession.last_seen_at).is_(None),
                col(AuthSession.last_seen_at) <= now - LAST_SEEN_GRANULARITY,
            ),
        )
        .values(**values)
    )


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
