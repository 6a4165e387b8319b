"""Relay connections over keyset (seek) pagination: cursors stay valid under inserts.

A cursor names the connection that returned it (`Store.channels`: the parent type and the
field), so a client cache that mixes up cursors is told so (BAD_REQUEST) instead of getting a
page of another list that happens to be ordered by the same keys. Every connection has a
`totalCount`, counted only when selected, under the same filters and scope as its pages.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Generic, TypeAlias, TypeVar

import strawberry
from sqlalchemy import func
from sqlalchemy.orm import Mapped
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar
from strawberry.types.base import StrawberryObjectDefinition, get_object_definition

from gql_api.errors import BadRequest
from gql_api.i18n import _
from gql_api.ids import MAX_PRIMARY_KEY

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
_CURSOR_PREFIX = "k2:"  # k1 (before cursors named their connection) is refused as garbage
_MAX_CURSOR_LENGTH = 200
_CONNECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")

Row = TypeVar("Row")
NodeT = TypeVar("NodeT")

OpenSession: TypeAlias = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""How a connection reads: the request's `context.db` (one session user at a time)."""

Counter: TypeAlias = Callable[[], Awaitable[int]]
"""How a connection counts everything it lists (totalCount), called only when selected."""


def connection_name(info: strawberry.Info[Any, Any]) -> str:
    """`Parent.field` of the connection field being resolved: what its cursors are valid for."""
    return f"{info.path.typename}.{info.field_name}"


@lru_cache(maxsize=4096)
def encode_cursor(key: int, connection: str = "") -> str:
    """The cursor of `key` in `connection` (without one: a cursor no connection accepts)."""
    raw = f"{_CURSOR_PREFIX}{connection}:{key}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, argument: str, connection: str) -> int:
    """The key in `cursor`; BAD_REQUEST for anything but a cursor `connection` returned."""
    name, key = _decoded(cursor, argument)
    if name != connection:
        raise BadRequest(
            _(
                "`{argument}` is a cursor of {name}, not of {connection}: pass a cursor that "
                "this connection returned.",
                argument=argument,
                name=name,
                connection=connection,
            )
        )
    return key


def _decoded(cursor: str, argument: str) -> tuple[str, int]:
    try:
        if len(cursor) > _MAX_CURSOR_LENGTH:
            raise ValueError(cursor)
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        name, _sep, digits = raw[len(_CURSOR_PREFIX) :].rpartition(":")
        if not _CONNECTION_NAME.fullmatch(name) or not (digits.isascii() and digits.isdigit()):
            raise ValueError(raw)
        key = int(digits)
        if not 0 <= key <= MAX_PRIMARY_KEY:
            raise ValueError(raw)
        return name, key
    except (ValueError, UnicodeError, binascii.Error):
        raise BadRequest(
            _("`{argument}` is not a cursor returned by this connection.", argument=argument)
        ) from None


@dataclass(frozen=True)
class PageRequest:
    connection: str  # `Parent.field` (connection_name): the cursors it accepts and returns
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self) -> tuple[int, bool, int | None, int | None]:
        """(limit, backward, after_key, before_key)"""
        if self.first is not None and self.last is not None:
            raise BadRequest(_("Pass either `first` or `last`, not both."))
        for name, value in (("first", self.first), ("last", self.last)):
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise BadRequest(
                    _(
                        "`{name}` must be between 0 and {max_page_size}.",
                        name=name,
                        max_page_size=MAX_PAGE_SIZE,
                    )
                )
        backward = self.last is not None
        limit = self.last if backward else self.first
        after = self._key(self.after, "after")
        before = self._key(self.before, "before")
        return (DEFAULT_PAGE_SIZE if limit is None else limit), backward, after, before

    def _key(self, cursor: str | None, argument: str) -> int | None:
        return decode_cursor(cursor, argument, self.connection) if cursor is not None else None

    @classmethod
    def of(
        cls,
        info: strawberry.Info[Any, Any],
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> PageRequest:
        """The page the connection field being resolved is asked for."""
        return cls(connection_name(info), first=first, after=after, last=last, before=before)


@dataclass(frozen=True)
class Page(Generic[Row]):
    connection: str  # whose cursors the keys become
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
        connection=request.connection,
        rows=kept,
        keys=[key_of(row) for row in kept],
        has_next_page=more if not backward else before is not None,
        has_previous_page=more if backward else after is not None,
    )


@strawberry.type(
    description="Where a page of a connection lies in the whole list, and the cursors to page "
    "on from it (Relay PageInfo)."
)
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="True when more items follow this page: pass `endCursor` as `after` for "
        "them. When paging backwards (`last`), true whenever `before` was given."
    )
    has_previous_page: bool = strawberry.field(
        description="True when more items precede this page: pass `startCursor` as `before` "
        "for them. When paging forwards (`first`, or neither), true whenever `after` was given."
    )
    start_cursor: str | None = strawberry.field(
        description="Cursor of the page's first edge; null when the page is empty."
    )
    end_cursor: str | None = strawberry.field(
        description="Cursor of the page's last edge; null when the page is empty."
    )


def _describe_specialization(cls: type, describe: Callable[[str], str]) -> None:
    """Describe a specialized Edge or Connection by its node type's GraphQL name: strawberry
    specializes a generic type (`Connection[Channel]`, published as ChannelConnection) by
    subclassing it with the type filled in, and would otherwise copy the generic description.
    The generic class itself and undecorated subclasses are left alone."""
    definition = cls.__dict__.get("__strawberry_definition__")  # its own, not inherited
    if not isinstance(definition, StrawberryObjectDefinition):
        return
    node_type = definition.type_var_map.get(NodeT.__name__)
    node = get_object_definition(node_type) if node_type is not None else None
    if node is not None:
        definition.description = describe(node.name)


@strawberry.type
class Edge(Generic[NodeT]):
    """Described per node type (`ChannelEdge`: "One Channel in a page…") when specialized."""

    cursor: str = strawberry.field(
        description="Opaque cursor of this item: pass it as `after` or `before` to the same "
        "connection field (another connection refuses it)."
    )
    node: NodeT = strawberry.field(description="The item.")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _describe_specialization(
            cls,
            lambda name: (
                f"One {name} in a page of a connection, with the cursor that marks its place."
            ),
        )


@strawberry.type
class Connection(Generic[NodeT]):
    """Described per node type (`ChannelConnection`: "A page of Channel objects…") when
    specialized."""

    edges: list[Edge[NodeT]] = strawberry.field(
        description="The items of this page in the connection's order, each with its cursor."
    )
    page_info: PageInfo = strawberry.field(
        description="Whether more items lie before or after this page, and the cursors to get them."
    )
    nodes: list[NodeT] = strawberry.field(description="The nodes of `edges`, for convenience.")
    count: strawberry.Private[Counter]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _describe_specialization(
            cls,
            lambda name: (
                f"A page of {name} objects (Relay connection): the items in `edges` "
                "(with cursors) or `nodes`; `pageInfo` to ask for the next page (`first`, `after`) "
                "or the previous one (`last`, `before`); `totalCount` for all of them."
            ),
        )

    @strawberry.field(
        description="How many items this connection lists in all, on every page together: "
        "with the same filters and what the caller may see, whatever `first`, `after`, "
        "`last` and `before` are. Counted only when selected."
    )
    async def total_count(self) -> int:
        return await self.count()


def to_connection(
    page: Page[Row], convert: Callable[[Row], NodeT], *, count: Counter
) -> Connection[NodeT]:
    """`page` as a connection; `count` answers totalCount when it is selected."""
    nodes = [convert(row) for row in page.rows]
    cursors = [encode_cursor(key, page.connection) for key in page.keys]
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
        nodes=nodes,
        count=count,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
    )


def empty_connection() -> Connection[Any]:
    """A connection that lists nothing (no cursors: nothing to name)."""
    empty: Page[Any] = Page(
        connection="", rows=[], keys=[], has_next_page=False, has_previous_page=False
    )
    return to_connection(empty, id, count=_nothing)


async def _nothing() -> int:
    return 0


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
    """One page of an already-scoped statement as a Relay connection, read through `db`;
    totalCount counts the same statement, one more statement when selected."""
    async with db() as session:
        page = await paginate(session, statement, key, request, _row_id, newest_first=newest_first)

    async def count() -> int:
        async with db() as session:
            return (await session.exec(count_of(statement))).one()

    return to_connection(page, convert, count=count)


def count_of(statement: SelectOfScalar[Any]) -> SelectOfScalar[int]:
    """How many rows `statement` selects (its order does not matter to a count)."""
    return select(func.count()).select_from(statement.order_by(None).subquery())


def _row_id(row: Any) -> int:
    assert row.id is not None
    return int(row.id)
