"""Business rules for sign-up, log-in and log-out; no GraphQL here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import begin_write, begin_write_after_reads, release_for_slow_work
from db.models import LoginFailure, Merchant, Store, User
from db.types import utcnow
from gql_api import validation
from gql_api.accounts.sessions import OpenedSession, open_session
from gql_api.audit import service as audit
from gql_api.errors import DomainError, Problems, RateLimited, UserErrorCode
from gql_api.ids import global_id
from gql_api.permissions import Role
from gql_api.security.passwords import PasswordHashing
from gql_api.settings import Settings
from gql_api.stores.service import REPRESENTATIVE_STORE_NAME, new_store_id


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
    if await user_by_email(db, email) is not None:
        raise email_taken()

    await release_for_slow_work(db)
    password_hash = await hashing.hash(password)
    await begin_write_after_reads(db)
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
        raise email_taken() from None
    assert user.id is not None
    await audit.record(
        db,
        merchant_id=merchant.id,
        actor=email,
        action="merchant.sign_up",
        store_id=store.store_id,
        target_id=global_id("Merchant", merchant.id),
        summary=f"Signed up merchant “{merchant_name}” with owner {email}",
    )
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

    Each attempt is first recorded as a failure in its own short transaction (refused once the
    email has too many), so concurrent guesses count too; argon2 then runs with no database
    lock held, and a success deletes the email's failures.
    """
    async with hashing.admission():
        return await _log_in(
            db=db, hashing=hashing, settings=settings, email=email, password=password
        )


async def _log_in(
    *, db: AsyncSession, hashing: PasswordHashing, settings: Settings, email: str, password: str
) -> OpenedSession:
    email = email.strip().lower()[: validation.EMAIL_MAX_LENGTH]
    await _claim_attempt(db, settings, email)
    user = await user_by_email(db, email)
    await release_for_slow_work(db)
    ok = await hashing.verify(user.password_hash if user else None, password[:1024])
    if user is None or not ok:
        raise DomainError.single(
            UserErrorCode.INVALID_CREDENTIALS, ("input",), "Email or password is incorrect."
        )
    new_hash = await hashing.hash(password) if hashing.needs_rehash(user.password_hash) else None

    await begin_write(db)
    await db.exec(delete(LoginFailure).where(col(LoginFailure.email) == email))
    user = await user_by_email(db, email)
    if user is None:  # removed meanwhile
        raise DomainError.single(
            UserErrorCode.INVALID_CREDENTIALS, ("input",), "Email or password is incorrect."
        )
    if new_hash is not None:
        user.password_hash = new_hash
        db.add(user)
    opened = await open_session(db=db, settings=settings, user=user)
    await audit.record(
        db,
        merchant_id=user.merchant_id,
        actor=user.email,
        action="session.create",
        target_id=global_id("User", opened.row.user_id),
        summary="Logged in",
    )
    return opened


async def _claim_attempt(db: AsyncSession, settings: Settings, email: str) -> None:
    """Record this attempt as a failure up front, or refuse it when the email is throttled."""
    now = utcnow()
    window = timedelta(minutes=settings.login_failure_window_minutes)
    await begin_write(db)
    if db.bind is not None and db.bind.dialect.name == "postgresql":
        # One attempt per email at a time decides; SQLite writes one at a time anyway.
        connection = await db.connection()
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"login:{email}"}
        )
    await db.exec(
        delete(LoginFailure).where(
            col(LoginFailure.email) == email, col(LoginFailure.attempted_at) < now - window
        )
    )
    count, oldest = (
        await db.exec(
            select(func.count(), func.min(LoginFailure.attempted_at)).where(
                col(LoginFailure.email) == email
            )
        )
    ).one()
    if count >= settings.login_max_failures and oldest is not None:
        await db.commit()
        retry_after = max(1, int((oldest + window - now).total_seconds()))
        raise RateLimited(
            "Too many failed log-in attempts for this email; try again later.",
            retryAfterSeconds=retry_after,
        )
    db.add(LoginFailure(email=email, attempted_at=now))
    await db.commit()


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    """The active account with this (normalised) email, in any merchant."""
    statement = select(User).where(col(User.email) == email, col(User.removed_at).is_(None))
    return (await db.exec(statement)).first()


def email_taken() -> DomainError:
    return DomainError.single(
        UserErrorCode.EMAIL_TAKEN, ("input", "email"), "An account with this email already exists."
    )
