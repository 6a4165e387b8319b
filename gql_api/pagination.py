"""Relay connections over keyset (seek) pagination: cursors stay valid under inserts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Generic, TypeAlias, TypeVar

import strawberry
from sqlalchemy.orm import Mapped
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from gql_api.errors import BadRequest
from gql_api.ids import MAX_PRIMARY_KEY

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
_CURSOR_PREFIX = "k1:"

Row = TypeVar("Row")
NodeT = TypeVar("NodeT")

OpenSession: TypeAlias = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""How a connection reads: the request's `context.db` (one session user at a time)."""


@lru_cache(maxsize=4096)
def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, argument: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        key = int(raw[len(_CURSOR_PREFIX) :])
        if not 0 <= key <= MAX_PRIMARY_KEY:
            raise ValueError(raw)
        return key
    except (ValueError, UnicodeError, binascii.Error):
        raise BadRequest(f"`{argument}` is not a cursor returned by this connection.") from None


@dataclass(frozen=True)
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self) -> tuple[int, bool, int | None, int | None]:
        """(limit, backward, after_key, before_key)"""
        if self.first is not None and self.last is not None:
            raise BadRequest("Pass either `first` or `last`, not both.")
        for name, value in (("first", self.first), ("last", self.last)):
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise BadRequest(f"`{name}` must be between 0 and {MAX_PAGE_SIZE}.")
        backward = self.last is not None
        limit = self.last if backward else self.first
        after = decode_cursor(self.after, "after") if self.after is not None else None
        before = decode_cursor(self.before, "before") if self.before is not None else None
        return (DEFAULT_PAGE_SIZE if limit is None else limit), backward, after, before


@dataclass(frozen=True)
class Page(Generic[Row]):
    rows: Sequence[Row]
    keys: Sequence[int]
    has_next_page: bool
    has_previous_page: bool


async def paginate(
    db: AsyncSession,
    statement: SelectOfScalar[Any],
    key: Mapped[Any],
    request: PageRequest,
    key_of: Callable[[Any], int],
    *,
    newest_first: bool = False,
) -> Page[Any]:
    """Run `statement` (already scoped to the caller) one page at a time, ordered by `key`."""
    limit, backward, after, before = request.validated()
    if after is not None:
        statement = statement.where(key < after if newest_first else key > after)
    if before is not None:
        statement = statement.where(key > before if newest_first else key < before)
    ascending = backward == newest_first
    statement = statement.order_by(key.asc() if ascending else key.desc()).limit(limit + 1)
    rows = list((await db.exec(statement)).all())
    return page_from_rows(rows, request, key_of)


def page_from_rows(
    rows: Sequence[Row], request: PageRequest, key_of: Callable[[Row], int]
) -> Page[Row]:
    """A page from up to limit + 1 rows fetched in the direction of travel."""
    limit, backward, after, before = request.validated()
    more = len(rows) > limit
    kept = list(rows[:limit])
    if backward:
        kept.reverse()
    return Page(
        rows=kept,
        keys=[key_of(row) for row in kept],
        has_next_page=more if not backward else before is not None,
        has_previous_page=more if backward else after is not None,
    )


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(description="Opaque cursor for `after` / `before`.")
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    nodes: list[NodeT] = strawberry.field(description="The nodes of `edges`, for convenience.")


def to_connection(page: Page[Row], convert: Callable[[Row], NodeT]) -> Connection[NodeT]:
    nodes = [convert(row) for row in page.rows]
    cursors = [encode_cursor(key) for key in page.keys]
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
    )


def empty_connection() -> Connection[Any]:
    return to_connection(Page(rows=[], keys=[], has_next_page=False, has_previous_page=False), id)


# Connection arguments, described once for every connection field.
First = Annotated[
    int | None,
    strawberry.argument(description="At most this many items from the start (0-100, default 50)."),
]
After = Annotated[str | None, strawberry.argument(description="Items after this cursor.")]
Last = Annotated[
    int | None, strawberry.argument(description="At most this many items from the end (0-100).")
]
Before = Annotated[str | None, strawberry.argument(description="Items before this cursor.")]


async def connection(
    db: OpenSession,
    statement: SelectOfScalar[Row],
    key: Mapped[Any],
    request: PageRequest,
    convert: Callable[[Row], NodeT],
    *,
    newest_first: bool = False,
) -> Connection[NodeT]:
    """One page of an already-scoped statement as a Relay connection, read through `db`."""
    async with db() as session:
        page = await paginate(session, statement, key, request, _row_id, newest_first=newest_first)
    return to_connection(page, convert)


def _row_id(row: Any) -> int:
    assert row.id is not None
    return int(row.id)
