"""Business rules for sign-up, log-in and log-out; no GraphQL here."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Tx, independent_write
from db.models import Merchant, Store, User
from gql_api import validation
from gql_api.accounts import throttling
from gql_api.accounts.sessions import OpenedSession, open_session
from gql_api.audit import service as audit
from gql_api.errors import DomainError, Problems, UserErrorCode
from gql_api.ids import global_id
from gql_api.metrics import Metrics
from gql_api.permissions import Role
from gql_api.security.passwords import PasswordHashing
from gql_api.settings import Settings
from gql_api.stores.service import REPRESENTATIVE_STORE_NAME, new_store_id

logger = logging.getLogger("gql_api.accounts")


@dataclass(frozen=True)
class SignUp:
    merchant: Merchant
    store: Store
    session: OpenedSession


async def sign_up(
    *,
    tx: Tx,
    hashing: PasswordHashing,
    settings: Settings,
    merchant_name: str,
    email: str,
    password: str,
    name: str,
) -> SignUp:
    """Create the merchant, its representative store, the OWNER and a session, in one go
    (argon2 runs between the reads and the write, with no connection held)."""
    problems = Problems()
    merchant_name = validation.name(
        problems, merchant_name, ("input", "merchantName"), label="Merchant name"
    )
    email = validation.email(problems, email, ("input", "email"))
    validation.new_password(problems, password, ("input", "password"))
    name = validation.name(problems, name, ("input", "name"), label="Name")
    problems.raise_if_any()
    if await user_by_email(tx.db, email) is not None:
        raise email_taken()

    await tx.release()
    password_hash = await hashing.hash(password)
    async with tx.write() as db:
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
            merchant_pk=merchant.id,
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
    tx: Tx,
    hashing: PasswordHashing,
    settings: Settings,
    metrics: Metrics,
    email: str,
    password: str,
    client_address: str,
) -> OpenedSession:
    """Check the password (timing-safe for unknown emails), throttled (accounts.throttling):
    refused per (email, client address) and per address; per email, past its ceiling, checks
    take turns (refused when the turn is too far ahead), except from an address that has
    logged in to it before.

    Each attempt is first recorded as a failure in its own short transaction, so concurrent
    guesses count too; its turn is waited for, and argon2 runs, with no connection held; a
    success then writes in the unit's one write transaction.
    """
    email = email.strip().lower()[: validation.EMAIL_MAX_LENGTH]

    async def check(claim: throttling.Claim) -> OpenedSession:
        return await _check_password(
            tx=tx,
            hashing=hashing,
            settings=settings,
            claim=claim,
            email=email,
            password=password,
            client_address=client_address,
        )

    async with hashing.admission():
        claim = await throttling.claim_attempt(
            tx.engine, settings=settings, email=email, client_address=client_address
        )
        if not claim.delay_seconds:
            return await check(claim)
    # Waited outside the admission, so slowed-down emails do not hold up other log-ins.
    await tx.release()
    metrics.login_delays.inc()
    logger.info(
        "log-in attempt delayed",
        extra={
            "client": client_address,
            "delay_seconds": claim.delay_seconds,
            **throttling.email_for_logs(email),
        },
    )
    await asyncio.sleep(claim.delay_seconds)
    async with hashing.admission():
        return await check(claim)


async def _check_password(
    *,
    tx: Tx,
    hashing: PasswordHashing,
    settings: Settings,
    claim: throttling.Claim,
    email: str,
    password: str,
    client_address: str,
) -> OpenedSession:
    user = await user_by_email(tx.db, email)
    await tx.release()
    ok = await hashing.verify(user.password_hash if user else None, password[:1024])
    if user is None or not ok:
        await _failed(
            tx.engine,
            settings=settings,
            claim=claim,
            user=user,
            email=email,
            client_address=client_address,
        )
        raise invalid_credentials()
    new_hash = await hashing.hash(password) if hashing.needs_rehash(user.password_hash) else None

    async with tx.write() as db:
        await throttling.succeeded(db, email=email, client_address=client_address)
        user = await user_by_email(db, email)
        if user is None:  # removed meanwhile
            raise invalid_credentials()
        if new_hash is not None:
            user.password_hash = new_hash
            db.add(user)
        opened = await open_session(db=db, settings=settings, user=user)
        await audit.record(
            db,
            merchant_pk=user.merchant_id,
            actor=user.email,
            action="session.create",
            target_id=global_id("User", opened.row.user_id),
            summary="Logged in",
        )
        return opened


async def _failed(
    engine: AsyncEngine,
    *,
    settings: Settings,
    claim: throttling.Claim,
    user: User | None,
    email: str,
    client_address: str,
) -> None:
    """A log line for every failure; for an account, an audit event at 5, 10, 20, 40 … failures
    (audit.failures_worth_an_event: a flood cannot bury the merchant's audit log)."""
    logger.warning(
        "failed log-in",
        extra={
            "client": client_address,
            "email_failures": claim.email_failures,
            **throttling.email_for_logs(email),
        },
    )
    if user is None or not audit.failures_worth_an_event(claim.email_failures):
        return
    assert user.id is not None
    # Committed on its own: the request fails (INVALID_CREDENTIALS), and its unit rolls back.
    async with independent_write(engine) as conn:
        await audit.record_on(
            conn,
            merchant_pk=user.merchant_id,
            actor=f"unknown caller at {client_address}",
            action="session.failed_login",
            target_id=global_id("User", user.id),
            summary=f"{claim.email_failures} failed log-in attempts for {user.email} within "
            f"{settings.login_failure_window_minutes} minutes, the latest from {client_address}",
        )


def invalid_credentials() -> DomainError:
    return DomainError.single(
        UserErrorCode.INVALID_CREDENTIALS, ("input",), "Email or password is incorrect."
    )


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    """The active account with this (normalised) email, in any merchant."""
    statement = select(User).where(col(User.email) == email, col(User.removed_at).is_(None))
    return (await db.exec(statement)).first()


def email_taken() -> DomainError:
    return DomainError.single(
        UserErrorCode.EMAIL_TAKEN, ("input", "email"), "An account with this email already exists."
    )
