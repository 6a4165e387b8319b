"""DataLoaders of the members area, scoped by gql_api.members.service.visible_members."""

from __future__ import annotations

from sqlmodel import col

from db.models import User
from gql_api.dataloaders import AreaLoader
from gql_api.members.service import visible_members
from gql_api.permissions import Access, Operation, access


class UserLoader(AreaLoader[int, User | None]):
    """Users the caller may see as members (for createdBy and the viewer's own account)."""

    context_key = "members.user"

    async def batch_load(self, keys: list[int]) -> list[User | None]:
        principal = self.context.principal
        if principal is None or access(principal, Operation.MEMBER_READ) is Access.NONE:
            return [None for _ in keys]
        statement = visible_members(principal).where(col(User.id).in_(keys))
        async with self.context.db() as db:
            rows = (await db.exec(statement)).all()
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in keys]
