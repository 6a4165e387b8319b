"""Issuing, listing and deleting API secrets, and their network rules (OWNER and ADMIN only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, bindparam, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Tx
from db.models import ApiSecret, ApiToken, Store
from db.types import utcnow
from gql_api import validation
from gql_api.api_secrets import network_rules
from gql_api.api_secrets.network_rules import NetworkRule
from gql_api.audit import service as audit
from gql_api.errors import DomainError, Problems, UserErrorCode
from gql_api.i18n import _
from gql_api.ids import global_id, pk_of
from gql_api.permissions import Operation, Principal, confined_store_pk, require
from gql_api.scoping import scope_to_store
from gql_api.security import api_keys
from gql_api.security.passwords import PasswordHashing
from gql_api.stores.service import STORE_ID_PATH, STORE_NOT_FOUND, store_by_store_id

MAX_EXPIRATION_DAYS = 3650
SECRET_NOT_FOUND = _("No API secret with this ID.")


@dataclass(frozen=True)
class IssuedSecret:
    """A new secret; `plaintext` is the only copy and is shown once."""

    row: ApiSecret
    plaintext: str


def bound_secret_scope(own_store_only: bool) -> list[ColumnElement[bool]]:
    """Conditions for the live secrets of the caller's merchant, of its own store only when it
    is confined to one for READ (a STORE_* role, a sub-store API secret): the caller's values
    are bind parameters (secret_scope_params), so a statement built once serves every caller
    with the same `own_store_only` (confined_store_pk(principal, READ) is not None)."""
    conditions = [
        col(ApiSecret.merchant_id) == bindparam("merchant_pk"),
        col(ApiSecret.deleted_at).is_(None),
    ]
    if own_store_only:
        conditions.append(col(ApiSecret.store_pk) == bindparam("own_store_pk"))
    return conditions


def secret_scope_params(principal: Principal) -> dict[str, int | None]:
    """The values of bound_secret_scope for `principal`, who must be allowed to READ."""
    require(principal, Operation.READ)
    return {
        "merchant_pk": principal.merchant_pk,
        "own_store_pk": confined_store_pk(principal, Operation.READ),
    }


async def secret_by_pk(*, db: AsyncSession, principal: Principal, pk: int) -> ApiSecret | None:
    require(principal, Operation.READ)
    statement = select(ApiSecret).where(
        col(ApiSecret.id) == pk,
        col(ApiSecret.merchant_id) == principal.merchant_pk,
        col(ApiSecret.deleted_at).is_(None),
    )
    statement = scope_to_store(statement, principal, Operation.READ, col(ApiSecret.store_pk))
    return (await db.exec(statement)).first()


async def issue(
    *,
    tx: Tx,
    principal: Principal,
    hashing: PasswordHashing,
    store_id: str,
    name: str,
    expiration_days: int | None,
) -> IssuedSecret:
    """A new secret for a store (argon2 runs between the reads and the write, with no
    connection held); its plaintext is returned once."""
    require(principal, Operation.API_SECRET_MANAGE)
    store = await store_by_store_id(db=tx.db, principal=principal, store_id=store_id)
    problems = Problems()
    if store is None:
        problems.add(UserErrorCode.NOT_FOUND, STORE_ID_PATH, STORE_NOT_FOUND)
    name = validation.name(problems, name, ("input", "name"), label=_("Secret name"))
    if expiration_days is not None and not 1 <= expiration_days <= MAX_EXPIRATION_DAYS:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            ("input", "expirationDays"),
            _(
                "Expiry must be 1 to {max_days} days, or null for no expiry.",
                max_days=MAX_EXPIRATION_DAYS,
            ),
        )
    problems.raise_if_any()
    assert store is not None and store.id is not None
    generated = api_keys.generate()
    await tx.release()
    secret_hash = await hashing.hash(generated.plaintext)
    async with tx.write() as db:
        now = utcnow()
        row = ApiSecret(
            key_id=generated.key_id,
            merchant_id=principal.merchant_pk,
            store_pk=store.id,
            name=name,
            secret_hash=secret_hash,
            hint=api_keys.hint(generated),
            verify_tag=api_keys.verify_tag(generated.plaintext),
            created_by=principal.user_id,
            created_at=now,
            expires_at=now + timedelta(days=expiration_days) if expiration_days else None,
        )
        db.add(row)
        await db.flush()
        assert row.id is not None
        expiry = f"expires in {expiration_days} days" if expiration_days else "no expiry"
        await audit.record_by(
            db,
            principal,
            "api_secret.issue",
            f"Issued API secret “{name}” ({row.hint}), {expiry}",
            store_id=store.store_id,
            target_id=global_id("ApiSecret", row.id),
        )
        return IssuedSecret(row=row, plaintext=generated.plaintext)


async def delete(*, db: AsyncSession, principal: Principal, secret_id: str) -> ApiSecret:
    """The secret and every token exchanged for it stop working on the next request."""
    require(principal, Operation.API_SECRET_MANAGE)
    pk = pk_of(secret_id, "ApiSecret")
    row = await secret_by_pk(db=db, principal=principal, pk=pk) if pk is not None else None
    if row is None:
        raise DomainError.single(UserErrorCode.NOT_FOUND, ("input", "id"), SECRET_NOT_FOUND)
    now = utcnow()
    row.deleted_at = now
    db.add(row)
    await db.exec(
        update(ApiToken)
        .where(col(ApiToken.api_secret_id) == row.id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    store = await db.get(Store, row.store_pk)
    await audit.record_by(
        db,
        principal,
        "api_secret.delete",
        f"Deleted API secret “{row.name}” ({row.hint})",
        store_id=store.store_id if store else None,
        target_id=secret_id,
    )
    return row


async def update_network_rules(
    *, db: AsyncSession, principal: Principal, secret_id: str, rules: Sequence[NetworkRule]
) -> ApiSecret:
    """Replace the secret's network rules (an empty list: any address). Every process applies
    them from the next request: authentication reads them with the secret's row each time."""
    require(principal, Operation.API_SECRET_MANAGE)
    problems = Problems()
    pk = pk_of(secret_id, "ApiSecret")
    row = await secret_by_pk(db=db, principal=principal, pk=pk) if pk is not None else None
    if row is None:
        problems.add(UserErrorCode.NOT_FOUND, ("input", "id"), SECRET_NOT_FOUND)
    stored = network_rules.validated(problems, rules)
    problems.raise_if_any()
    assert row is not None
    before = len(row.network_rules)
    row.network_rules = stored
    db.add(row)
    await db.flush()
    store = await db.get(Store, row.store_pk)
    if stored:
        listed = ", ".join(rule["cidr"] or "" for rule in stored[:10])
        more = f" and {len(stored) - 10} more" if len(stored) > 10 else ""
        change = f"now allows {len(stored)} network rule(s) only: {listed}{more}"
    else:
        change = "now allows any address (no network rules)"
    await audit.record_by(
        db,
        principal,
        "api_secret.network_rules_update",
        f"API secret “{row.name}” ({row.hint}) {change}; it had {before} rule(s)",
        store_id=store.store_id if store else None,
        target_id=secret_id,
    )
    return row
