"""Business rules for stores: visibility, sub-store create / rename / delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.models import ApiSecret, Channel, Invitation, Store, User, WebhookSecret
from db.types import utcnow
from gql_api import validation
from gql_api.accounts.sessions import revoke_user_sessions
from gql_api.audit import service as audit
from gql_api.errors import DomainError, Problems, UserErrorCode
from gql_api.i18n import _
from gql_api.permissions import Operation, Principal, may_act_on_store, require
from gql_api.scoping import scope_to_store
from gql_api.unique_names import UniqueName

REPRESENTATIVE_STORE_NAME = "대표상점"
STORE_NAME_MAX_LENGTH = 100
STORE_ID_PREFIX = "store-"
STORE_ID_PATH = ("input", "storeId")
STORE_NOT_FOUND = _("No store with this storeId.")
_STORE_NAME = UniqueName(
    UserErrorCode.NAME_TAKEN, _("Another store of this merchant has this name.")
)


def merchant_visible(principal: Principal, merchant_pk: int) -> bool:
    """A caller sees one merchant: its own."""
    return merchant_pk == principal.merchant_pk


def new_store_id() -> str:
    return f"{STORE_ID_PREFIX}{uuid.uuid4()}"


def is_store_id(value: str) -> bool:
    if not value.startswith(STORE_ID_PREFIX) or len(value) != len(STORE_ID_PREFIX) + 36:
        return False
    try:
        uuid.UUID(value[len(STORE_ID_PREFIX) :])
    except ValueError:
        return False
    return True


def visible_stores(principal: Principal) -> SelectOfScalar[Store]:
    """Live stores of the caller's merchant that the caller may read."""
    statement = select(Store).where(
        col(Store.merchant_id) == principal.merchant_pk, col(Store.deleted_at).is_(None)
    )
    return scope_to_store(statement, principal, Operation.READ, col(Store.id))


def visible_sub_stores(principal: Principal, store: Store) -> SelectOfScalar[Store] | None:
    """The sub-stores under `store`; None when it has none (a sub-store has no children)."""
    if not store.is_representative or store.merchant_id != principal.merchant_pk:
        return None
    return visible_stores(principal).where(col(Store.is_representative).is_(False))


async def store_by_store_id(
    *, db: AsyncSession, principal: Principal, store_id: str
) -> Store | None:
    if not is_store_id(store_id):
        return None
    statement = visible_stores(principal).where(col(Store.store_id) == store_id)
    return (await db.exec(statement)).first()


async def require_store(
    *,
    db: AsyncSession,
    principal: Principal,
    operation: Operation,
    store_id: str,
    path: Sequence[str] = STORE_ID_PATH,
) -> Store:
    """The live store `store_id` names, if `principal` may perform `operation` on it;
    FORBIDDEN if it may not perform `operation` at all, else NOT_FOUND at `path` (a store the
    caller may not act on is reported as missing, as it is invisible to the caller)."""
    require(principal, operation)
    store = await store_by_store_id(db=db, principal=principal, store_id=store_id)
    if store is None or store.id is None or not may_act_on_store(principal, operation, store.id):
        raise DomainError.single(UserErrorCode.NOT_FOUND, path, STORE_NOT_FOUND)
    return store


async def store_by_pk(*, db: AsyncSession, principal: Principal, pk: int) -> Store | None:
    return (await db.exec(visible_stores(principal).where(col(Store.id) == pk))).first()


async def create_sub_store(*, db: AsyncSession, principal: Principal, name: str) -> Store:
    require(principal, Operation.STORE_MANAGE)
    name = _valid_name(name)
    await _ensure_name_free(db, principal.merchant_pk, name)
    store = Store(
        store_id=new_store_id(),
        merchant_id=principal.merchant_pk,
        name=name,
        is_representative=False,
    )
    db.add(store)
    await _STORE_NAME.flush(db)
    await audit.record_by(
        db, principal, "store.create", f"Created sub-store “{name}”", store_id=store.store_id
    )
    return store


async def rename_store(
    *, db: AsyncSession, principal: Principal, store_id: str, name: str
) -> Store:
    store = await require_store(
        db=db, principal=principal, operation=Operation.STORE_MANAGE, store_id=store_id
    )
    name = _valid_name(name)
    if name != store.name:
        await _ensure_name_free(db, principal.merchant_pk, name)
        summary = f"Renamed store “{store.name}” to “{name}”"
        store.name = name
        store.updated_at = utcnow()
        db.add(store)
        await _STORE_NAME.flush(db)
        await audit.record_by(db, principal, "store.update", summary, store_id=store.store_id)
    return store


async def delete_sub_store(*, db: AsyncSession, principal: Principal, store_id: str) -> Store:
    """Soft delete: the row stays for audit and payments, the ID stops resolving."""
    store = await require_store(
        db=db, principal=principal, operation=Operation.STORE_MANAGE, store_id=store_id
    )
    if store.is_representative:
        raise DomainError.single(
            UserErrorCode.REPRESENTATIVE_STORE_UNDELETABLE,
            ("input", "storeId"),
            _("The representative store (대표상점) cannot be deleted."),
        )
    store.deleted_at = utcnow()
    store.updated_at = store.deleted_at
    db.add(store)
    await _release_store_members(db, store)
    await audit.record_by(
        db, principal, "store.delete", f"Deleted sub-store “{store.name}”", store_id=store.store_id
    )
    return store


async def _release_store_members(db: AsyncSession, store: Store) -> None:
    """Members bound to a deleted sub-store lose access; its invitations, channels and secrets
    end with it."""
    now = utcnow()
    members = (
        await db.exec(
            select(User).where(col(User.store_pk) == store.id, col(User.removed_at).is_(None))
        )
    ).all()
    for member in members:
        member.removed_at = now
        db.add(member)
    await revoke_user_sessions(db, [m.id for m in members if m.id is not None])
    await db.exec(
        update(Invitation)
        .where(
            col(Invitation.store_pk) == store.id,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    # What belonged to the store goes with it: channels, API secrets (and so their tokens, which
    # are checked against their secret), webhook signing secrets.
    await db.exec(
        update(Channel)
        .where(col(Channel.store_pk) == store.id, col(Channel.deleted_at).is_(None))
        .values(deleted_at=now, updated_at=now)
    )
    await db.exec(
        update(ApiSecret)
        .where(col(ApiSecret.store_pk) == store.id, col(ApiSecret.deleted_at).is_(None))
        .values(deleted_at=now)
    )
    await db.exec(
        update(WebhookSecret)
        .where(col(WebhookSecret.store_pk) == store.id, col(WebhookSecret.expired_at).is_(None))
        .values(expired_at=now)
    )


def _valid_name(name: str) -> str:
    problems = Problems()
    cleaned = validation.name(
        problems, name, ("input", "name"), label=_("Store name"), max_length=STORE_NAME_MAX_LENGTH
    )
    problems.raise_if_any()
    return cleaned


async def _ensure_name_free(db: AsyncSession, merchant_pk: int, name: str) -> None:
    await _STORE_NAME.ensure_free(
        db,
        select(Store.id).where(
            col(Store.merchant_id) == merchant_pk,
            col(Store.name) == name,
            col(Store.deleted_at).is_(None),
        ),
    )


async def store_id_of(db: AsyncSession, store_pk: int | None) -> str | None:
    """The storeId of a store's primary key (for audit events), None for none or a gone one."""
    if store_pk is None:
        return None
    store = await db.get(Store, store_pk)
    return store.store_id if store else None
