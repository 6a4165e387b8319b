"""Rows for tests that are not about sign-up or invitations: a merchant, its stores and members
inserted directly, each member with an open session, usable through HTTP exactly like a member
who signed up or accepted an invitation (tests.support.SignedUp / Joined).

Every user gets the same password hash (of tests.support.PASSWORD), computed once per test
session with the test argon2 settings; sessions are opened with the app's own `open_session`.
Nothing is audited: these rows stand for history the test is not about.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import PoolOptions, create_engine
from db.models import Merchant, Store, User
from gql_api.accounts.sessions import open_session
from gql_api.ids import global_id
from gql_api.permissions import STORE_SCOPED_ROLES, Role
from gql_api.settings import Settings
from gql_api.stores.service import REPRESENTATIVE_STORE_NAME, new_store_id
from tests.conftest import make_settings
from tests.support import PASSWORD, Joined, SignedUp

# Every role but OWNER (the owner is always seeded).
MEMBER_ROLES = tuple(role.value for role in Role if role is not Role.OWNER)

# A database URL, or better the app's engine (the `db_engine` fixture): its pooled connection
# is ready, where a new engine connects afresh (tens of milliseconds on PostgreSQL).
Database = str | AsyncEngine

_counter = itertools.count(1)


@cache
def _test_settings() -> Settings:
    return make_settings("sqlite:///unused.db")


@cache
def password_hash() -> str:
    """PASSWORD hashed as the test app hashes it (its argon2 settings): once per session."""
    settings = _test_settings()
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    return hasher.hash(PASSWORD)


@dataclass(frozen=True)
class Seeded:
    owner: SignedUp
    merchant_pk: int
    representative_store_pk: int
    stores: dict[str, str]  # sub-store name -> storeId
    store_pks: dict[str, int]  # storeId -> primary key, the representative store's included
    members: dict[str, Joined]  # role -> the member seeded with it
    settings: Settings


@asynccontextmanager
async def _session(database: Database) -> AsyncIterator[AsyncSession]:
    engine = (
        create_engine(database, pool=PoolOptions(size=1, max_overflow=1))
        if isinstance(database, str)
        else database
    )
    try:
        async with AsyncSession(engine, expire_on_commit=False) as db:
            yield db
            await db.commit()
    finally:
        if isinstance(database, str):
            await engine.dispose()


async def seed_merchant(
    database: Database,
    *,
    roles: Sequence[str] = MEMBER_ROLES,
    stores: Sequence[str] = ("Sub store",),
    member_store: str | None = None,
    settings: Settings | None = None,
) -> Seeded:
    """A merchant with its representative store, the sub-stores `stores` (by name), an OWNER
    and one member of each of `roles`, all logged in. STORE_* members are bound to the
    sub-store `member_store` (default: the first of `stores`)."""
    settings = settings or _test_settings()
    n = next(_counter)
    async with _session(database) as db:
        merchant = Merchant(name=f"Seeded merchant {n}")
        db.add(merchant)
        await db.flush()
        assert merchant.id is not None
        representative = Store(
            store_id=new_store_id(),
            merchant_id=merchant.id,
            name=REPRESENTATIVE_STORE_NAME,
            is_representative=True,
        )
        sub_stores = [
            Store(store_id=new_store_id(), merchant_id=merchant.id, name=name) for name in stores
        ]
        db.add_all([representative, *sub_stores])
        await db.flush()
        assert representative.id is not None
        by_name = {store.name: store for store in sub_stores}
        bound_to = by_name[member_store or stores[0]] if stores else None
        owner = await _member(db, settings, merchant.id, Role.OWNER, None, "owner")
        members = {}
        for role in roles:
            store_pk = None
            if Role(role) in STORE_SCOPED_ROLES:
                if bound_to is None:
                    raise ValueError(f"{role} needs a sub-store: pass stores=")
                store_pk = bound_to.id
            members[role] = await _member(db, settings, merchant.id, Role(role), store_pk, "member")
    return Seeded(
        owner=SignedUp(
            token=owner.token,
            email=owner.email,
            merchant_id=global_id("Merchant", merchant.id),
            representative_store_id=representative.store_id,
        ),
        merchant_pk=merchant.id,
        representative_store_pk=representative.id,
        stores={store.name: store.store_id for store in sub_stores},
        store_pks={
            store.store_id: store.id
            for store in (representative, *sub_stores)
            if store.id is not None
        },
        members=members,
        settings=settings,
    )


async def add_member(
    database: Database, seeded: Seeded, role: str, store_id: str | None = None
) -> Joined:
    """One more logged-in member of `seeded`'s merchant (`store_id`: a STORE_* role's store)."""
    store_pk = seeded.store_pks[store_id] if store_id is not None else None
    async with _session(database) as db:
        return await _member(
            db, seeded.settings, seeded.merchant_pk, Role(role), store_pk, "member"
        )


async def _member(
    db: AsyncSession,
    settings: Settings,
    merchant_pk: int,
    role: Role,
    store_pk: int | None,
    email_prefix: str,
) -> Joined:
    n = next(_counter)
    email = f"seeded-{email_prefix}-{n}@example.com"
    user = User(
        merchant_id=merchant_pk,
        email=email,
        name=f"Seeded {role.value.lower()} {n}",
        password_hash=password_hash(),
        role=role.value,
        store_pk=store_pk,
    )
    db.add(user)
    await db.flush()
    assert user.id is not None
    opened = await open_session(db=db, settings=settings, user=user)
    return Joined(
        token=opened.token,
        member_id=global_id("Member", user.id),
        user_id=global_id("User", user.id),
        email=email,
    )
