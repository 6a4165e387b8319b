"""Business rules for sign-up, log-in and password changes; no GraphQL here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Tx, independent_write
from db.models import Merchant, Store, User
from gql_api import validation
from gql_api.accounts import throttling
from gql_api.accounts.sessions import OpenedSession, end_sessions, open_session
from gql_api.audit import service as audit
from gql_api.errors import DomainError, Problems, UserErrorCode
from gql_api.i18n import _
from gql_api.ids import global_id
from gql_api.metrics import Metrics
from gql_api.permissions import Operation, Principal, Role, require
from gql_api.security.passwords import PasswordHashing
from gql_api.settings import Settings
from gql_api.stores.service import REPRESENTATIVE_STORE_NAME, new_store_id

logger = logging.getLogger("gql_api.accounts")

T = TypeVar("T")


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
    client_address: str | None = None,
    user_agent: str | None = None,
) -> SignUp:
    """Create the merchant, its representative store, the OWNER and a session, in one go
    (argon2 runs between the reads and the write, with no connection held)."""
    problems = Problems()
    merchant_name = validation.name(
        problems, merchant_name, ("input", "merchantName"), label=_("Merchant name")
    )
    email = validation.email(problems, email, ("input", "email"))
    validation.new_password(problems, password, ("input", "password"))
    name = validation.name(problems, name, ("input", "name"), label=_("Name"))
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
            session=await open_session(
                db=db,
                settings=settings,
                user=user,
                client_address=client_address,
                user_agent=user_agent,
            ),
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
    user_agent: str | None = None,
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
            user_agent=user_agent,
        )

    return await _throttled(
        tx=tx,
        hashing=hashing,
        settings=settings,
        metrics=metrics,
        email=email,
        client_address=client_address,
        check=check,
    )


async def _throttled(
    *,
    tx: Tx,
    hashing: PasswordHashing,
    settings: Settings,
    metrics: Metrics,
    email: str,
    client_address: str,
    check: Callable[[throttling.Claim], Awaitable[T]],
) -> T:
    """Run a password check for `email` as a log-in attempt: claimed (and counted as a
    failure until it succeeds) by accounts.throttling, waiting for its turn if it has one."""
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
    user_agent: str | None,
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

    # Short: rows found by their keys, a pruned batch of at most PRUNE_BATCH, three inserts.
    async with tx.write(short=True) as db:
        await throttling.succeeded(db, email=email, client_address=client_address)
        user = await user_by_email(db, email)
        if user is None:  # removed meanwhile
            raise invalid_credentials()
        if new_hash is not None:
            user.password_hash = new_hash
            db.add(user)
        opened = await open_session(
            db=db,
            settings=settings,
            user=user,
            client_address=client_address,
            user_agent=user_agent,
        )
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


async def change_password(
    *,
    tx: Tx,
    hashing: PasswordHashing,
    settings: Settings,
    metrics: Metrics,
    principal: Principal,
    current_password: str,
    new_password: str,
    client_address: str,
) -> int:
    """Replace the caller's password and end every other session of theirs; how many ended.

    The new password follows the sign-up rule (validation.new_password), checked before the
    current one so that a refused new password costs no attempt. The current password is
    checked as a log-in attempt for the caller's email from this address (accounts.throttling):
    a stolen session cannot guess it faster than a log-in form could. The hash is replaced
    only if it is still the one checked, so of two concurrent changes one wins and the other
    is refused as a wrong current password.
    """
    require(principal, Operation.OWN_ACCOUNT)
    assert principal.user_id is not None
    problems = Problems()
    validation.new_password(problems, new_password, ("input", "newPassword"))
    problems.raise_if_any()
    user = await tx.db.get(User, principal.user_id)
    if user is None or user.removed_at is not None:
        raise wrong_current_password()
    email, checked_hash = user.email, user.password_hash
    await tx.release()

    async def check(claim: throttling.Claim) -> None:
        if not await hashing.verify(checked_hash, current_password[:1024]):
            await _failed(
                tx.engine,
                settings=settings,
                claim=claim,
                user=user,
                email=email,
                client_address=client_address,
            )
            raise wrong_current_password()

    await _throttled(
        tx=tx,
        hashing=hashing,
        settings=settings,
        metrics=metrics,
        email=email,
        client_address=client_address,
        check=check,
    )
    new_hash = await hashing.hash(new_password)
    async with tx.write() as db:
        await throttling.succeeded(db, email=email, client_address=client_address)
        replaced = await db.exec(
            update(User)
            .where(
                col(User.id) == principal.user_id,
                col(User.password_hash) == checked_hash,
                col(User.removed_at).is_(None),
            )
            .values(password_hash=new_hash)
        )
        assert isinstance(replaced, CursorResult)
        if replaced.rowcount != 1:  # changed (or removed) since it was checked
            raise wrong_current_password()
        ended = await end_sessions(db, principal.user_id, keep=principal.session_id)
        await audit.record_by(
            db,
            principal,
            "user.password_change",
            f"Changed their password; ended {ended} other session(s)",
            target_id=global_id("User", principal.user_id),
        )
        return ended


def wrong_current_password() -> DomainError:
    return DomainError.single(
        UserErrorCode.INVALID_CREDENTIALS,
        ("input", "currentPassword"),
        _("The current password is incorrect."),
    )


def invalid_credentials() -> DomainError:
    return DomainError.single(
        UserErrorCode.INVALID_CREDENTIALS, ("input",), _("Email or password is incorrect.")
    )


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    """The active account with this (normalised) email, in any merchant."""
    statement = select(User).where(col(User.email) == email, col(User.removed_at).is_(None))
    return (await db.exec(statement)).first()


def email_taken() -> DomainError:
    return DomainError.single(
        UserErrorCode.EMAIL_TAKEN,
        ("input", "email"),
        _("An account with this email already exists."),
    )
