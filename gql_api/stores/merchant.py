"""The `Merchant` (고객사) GraphQL type: its stores, members, invitations and audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from sqlmodel import col

from db.models import AuditEvent as AuditEventRow
from db.models import Merchant as MerchantRow
from db.models import Store as StoreRow
from db.models import User as UserRow
from gql_api.audit import service as audit_service
from gql_api.audit.types import AuditEvent
from gql_api.caller import CallerMerchant
from gql_api.context import Info
from gql_api.errors import Forbidden
from gql_api.i18n import _
from gql_api.members import service as members_service
from gql_api.members.types import (
    INVITATIONS_DESCRIPTION,
    Invitation,
    Member,
    StatusFilter,
    invitation_connection,
)
from gql_api.node import Node, to_global_id
from gql_api.pagination import (
    After,
    Before,
    Connection,
    First,
    Last,
    PageRequest,
    connection,
)
from gql_api.permissions import Access, Operation, access
from gql_api.stores import service as stores_service
from gql_api.stores.loaders import RepresentativeStoreLoader
from gql_api.stores.types import Store


@strawberry.type(description="고객사: the merchant account that owns the stores.")
class Merchant(Node):
    name: str = strawberry.field(description="고객사 name, 1-100 characters.")
    created_at: datetime = strawberry.field(description="When it signed up (RFC 3339, UTC).")
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: MerchantRow | CallerMerchant) -> Merchant:
        assert row.id is not None
        return cls(
            id=to_global_id("Merchant", row.id), name=row.name, created_at=row.created_at, pk=row.id
        )

    @strawberry.field(description="대표상점, created at sign-up; it cannot be deleted.")
    async def representative_store(self, info: Info) -> Store:
        principal = info.context.require_principal()
        if access(principal, Operation.READ) is not Access.ALL:
            raise Forbidden(_("Callers bound to a sub-store see only that sub-store."))
        row = await RepresentativeStoreLoader.of(info.context).load(self.pk)
        if row is None:
            raise RuntimeError("merchant without a representative store")
        return Store.from_row(row)

    @strawberry.field(
        description="The representative store first, then the sub-stores the caller can see."
    )
    async def stores(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Store]:
        principal = info.context.require_principal()
        request = PageRequest.of(info, first=first, after=after, last=last, before=before)
        statement = stores_service.visible_stores(principal)
        return await connection(
            info.context.db, statement, col(StoreRow.id), request, Store.from_row
        )

    @strawberry.field(
        description="Members, oldest first; STORE_* callers see only their sub-store's members."
    )
    async def members(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Member]:
        principal = info.context.require_principal()
        request = PageRequest.of(info, first=first, after=after, last=last, before=before)
        statement = members_service.visible_members(principal)
        return await connection(
            info.context.db, statement, col(UserRow.id), request, Member.from_row
        )

    @strawberry.field(description=INVITATIONS_DESCRIPTION)
    async def invitations(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        status: StatusFilter = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Invitation]:
        return await invitation_connection(
            info, first=first, after=after, last=last, before=before, status=status
        )

    @strawberry.field(description="The audit log, newest first (OWNER and ADMIN only).")
    async def audit_events(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        store_id: Annotated[
            str | None, strawberry.argument(description="Only events of this store.")
        ] = None,
        action: Annotated[
            str | None, strawberry.argument(description='Only this action, e.g. "store.create".')
        ] = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[AuditEvent]:
        principal = info.context.require_principal()
        request = PageRequest.of(info, first=first, after=after, last=last, before=before)
        statement = audit_service.events_query(principal, store_id=store_id, action=action)
        return await connection(
            info.context.db,
            statement,
            col(AuditEventRow.id),
            request,
            AuditEvent.from_row,
            newest_first=True,
        )


def own_merchant(info: Info) -> Merchant:
    """The caller's merchant, as authentication read it (no query)."""
    principal = info.context.require_principal()
    known = info.context.caller_merchant
    if known is None or known.id != principal.merchant_pk:
        raise RuntimeError("an authenticated caller without its merchant")
    return Merchant.from_row(known)


def visible_merchant(info: Info, pk: int) -> Merchant | None:
    """The merchant `pk` if it is the caller's, the only one a caller may see."""
    principal = info.context.require_principal()
    return own_merchant(info) if stores_service.merchant_visible(principal, pk) else None
