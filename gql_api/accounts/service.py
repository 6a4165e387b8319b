"""Business rules for sign-up, log-in and log-out; no GraphQL here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import AuthSession, LoginFailure, Merchant, Store, User
from db.types import utcnow
from gql_api import validation
from gql_api.errors import DomainError, Problems, RateLimited, Unauthenticated, UserErrorCode
from gql_api.permissions import Principal, PrincipalKind, Role
from gql_api.security.passwords import PasswordHashing
from gql_api.security.tokens import SESSION_TOKEN_PREFIX, new_token, token_hash
from gql_api.settings import Settings
from gql_api.stores.service import REPRESENTATIVE_STORE_NAME, new_store_id

MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class OpenedSession:
    """A new log-in; `token` is the only copy of the secret and is shown once."""

    token: str
    row: AuthSession
    user: User


@dataclass(frozen=True)
class SignUp:
    merchant: Merchant
    store: Store
    session: OpenedSession


async def sign_up(
    *,
    db: AsyncSession,
    hashing: PasswordHashing,
    settings: Settings,
    merchant_name: str,
    email: str,
    password: str,
    name: str,
) -> SignUp:
    """Create the merchant, its representative store, the OWNER and a session, in one go."""
    problems = Problems()
    merchant_name = validation.name(
        problems, merchant_name, ("input", "merchantName"), label="Merchant name"
    )
    email = validation.email(problems, email, ("input", "email"))
    validation.new_password(problems, password, ("input", "password"))
    name = validation.name(problems, name, ("input", "name"), label="Name")
    problems.raise_if_any()
    if await _user_by_email(db, email) is not None:
        raise _email_taken()

    password_hash = await hashing.hash(password)
    merchant = Merchant(name=merchant_name)
    db.add(merchant)
    await db.flush()
    assert merchant.id is not None
    store = Store(
        store_id=new_store_id(),
        merchant_id=merchant.id,
        name=REPRESENTATIVE_STORE_NAME,
        is_representative=True,
    )
    user = User(
        merchant_id=merchant.id,
        email=email,
        name=name,
        password_hash=password_hash,
        role=Role.OWNER.value,
    )
    db.add_all([store, user])
    try:
        await db.flush()
    except IntegrityError:  # the same email signed up concurrently
        raise _email_taken() from None
    return SignUp(
        merchant=merchant,
        store=store,
        session=await open_session(db=db, settings=settings, user=user),
    )


async def log_in(
    *,
    db: AsyncSession,
    hashing: PasswordHashing,
    settings: Settings,
    email: str,
    password: str,
) -> OpenedSession:
    """Check the password (timing-safe for unknown emails), throttled per email.

    A failure is committed here, before the error is raised, so that it counts even though
    the mutation itself changes nothing.
    """
    email = email.strip().lower()[: validation.EMAIL_MAX_LENGTH]
    now = utcnow()
    window = timedelta(minutes=settings.login_failure_window_minutes)
    await db.exec(
        delete(LoginFailure).where(
            col(LoginFailure.email) == email, col(LoginFailure.attempted_at) < now - window
        )
    )
    failures = (
        await db.exec(
            select(func.count(), func.min(LoginFailure.attempted_at)).where(
                col(LoginFailure.email) == email
            )
        )
    ).one()
    count, oldest = failures
    if count >= settings.login_max_failures and oldest is not None:
        retry_after = max(1, int((oldest + window - now).total_seconds()))
        raise RateLimited(
            "Too many failed log-in attempts for this email; try again later.",
            retryAfterSeconds=retry_after,
        )

    user = await _user_by_email(db, email)
    ok = await hashing.verify(user.password_hash if user else None, password[:1024])
    if user is None or not ok:
        db.add(LoginFailure(email=email, attempted_at=now))
        await db.commit()
        raise DomainError.single(
            UserErrorCode.INVALID_CREDENTIALS, ("input",), "Email or password is incorrect."
        )

    await db.exec(delete(LoginFailure).where(col(LoginFailure.email) == email))
    if hashing.needs_rehash(user.password_hash):
        user.password_hash = await hashing.hash(password)
        db.add(user)
    return await open_session(db=db, settings=settings, user=user)


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
    await db.flush()
    return True


async def principal_for_session(*, db: AsyncSession, token: str) -> Principal:
    """The caller behind a `Bearer` session token; UNAUTHENTICATED says why it is refused."""
    if not token.startswith(SESSION_TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("The bearer token is malformed.", reason="MALFORMED")
    found = (
        await db.exec(
            select(AuthSession, User)
            .join(User, col(User.id) == col(AuthSession.user_id))
            .where(col(AuthSession.token_hash) == token_hash(token))
        )
    ).first()
    if found is None:
        raise Unauthenticated("The session token is not valid.", reason="INVALID")
    session, user = found
    if session.revoked_at is not None:
        raise Unauthenticated("The session has been logged out.", reason="REVOKED")
    if session.expires_at <= utcnow():
        raise Unauthenticated("The session has expired; log in again.", reason="EXPIRED")
    return principal_of(user, session)


def principal_of(user: User, session: AuthSession) -> Principal:
    assert user.id is not None
    return Principal(
        kind=PrincipalKind.USER,
        merchant_id=user.merchant_id,
        user_id=user.id,
        role=Role(user.role),
        store_pk=user.store_pk,
        session_id=session.id,
    )


async def _user_by_email(db: AsyncSession, email: str) -> User | None:
    return (await db.exec(select(User).where(col(User.email) == email))).first()


def _email_taken() -> DomainError:
    return DomainError.single(
        UserErrorCode.EMAIL_TAKEN, ("input", "email"), "An account with this email already exists."
    )
