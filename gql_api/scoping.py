"""The store-scope condition of the permission matrix, on a statement."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Mapped

from gql_api.permissions import Operation, Principal, confined_store_pk

_Statement = TypeVar("_Statement", bound=Select[Any])


def scope_to_store(
    statement: _Statement, principal: Principal, operation: Operation, column: Mapped[Any]
) -> _Statement:
    """`statement` limited to the caller's own store (`column` = its store_pk) when the caller
    has OWN_STORE access to `operation`; unchanged otherwise (a representative-store API secret
    has ALL: see permissions.access)."""
    store_pk = confined_store_pk(principal, operation)
    if store_pk is None:
        return statement
    return statement.where(column == store_pk)
