"""Persisted queries: automatic (Apollo's and urql's protocol) and trusted documents.

A request names its document by `extensions.persistedQuery = {"version": 1, "sha256Hash": h}`,
where h is the SHA-256 of the document's text (UTF-8, lowercase hexadecimal):

- hash only, known: the stored document runs (so a GET carries a hash instead of the text);
- hash only, unknown: PersistedQueryNotFound, on which Apollo Client and urql send the
  request again with the text and the hash, which registers the text and runs it;
- text and hash that differ: refused, nothing registered.

Only a document that validates against the schema and has at most
PERSISTED_QUERIES_MAX_DOCUMENT_BYTES is registered: anyone may send one, so the store must not
fill with texts that never run, nor with large ones. Any other text sent with its hash still
runs (or gets its parse or validation error), unregistered: its client is told
PersistedQueryNotFound each time and sends the text again, which works, uncached.

The store is the `persisted_queries` table, shared by every process (db.models.PersistedQuery),
with at most PERSISTED_QUERIES_MAX_ENTRIES automatic entries: registrations evict one at a time
(serialized: SQLite's write lock, an advisory lock on PostgreSQL), so the cap holds exactly.
In front of it each process keeps the documents it met in a small LRU cache: a hash names one
text forever, so a cached document is never stale and a cached hash costs no round trip to the
database. A text sent with its hash is still looked up there (a read), since another process
may have evicted it.

With PERSISTED_QUERIES_ONLY nothing but the trusted documents runs, the ones the operator
registered (`integration-api persisted-queries add`), by hash or by a text whose hash is one of
them; nothing is registered automatically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from weakref import WeakKeyDictionary

from cross_web import HTTPException
from graphql import GraphQLError, GraphQLSchema, parse, validate
from sqlalchemy import Table, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from strawberry.http import GraphQLRequestData

from db.engine import independent_write
from db.models import PersistedQuery
from db.types import utcnow
from gql_api.context import AppState
from gql_api.i18n import Message, _
from gql_api.schema import build_schema

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
PERSISTED_QUERY_NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
BAD_REQUEST = "BAD_REQUEST"
# Apollo's texts. PersistedQueryNotFound is a token clients match (Apollo Client's link
# sends the document when it reads it): the same in every language, never translated. The
# others are words for a person, translated as every message is (gql_api.i18n).
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
MISMATCH_MESSAGE = _("provided sha does not match query")
VERSION_MESSAGE = _("Unsupported persisted query version")
HASH_MESSAGE = _("extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits.")
SHAPE_MESSAGE = _("extensions.persistedQuery must be an object.")
NOT_ALLOWED_MESSAGE = _(
    "Only registered persisted queries may run on this server (PERSISTED_QUERIES_ONLY): "
    "send the sha256Hash of a registered document."
)

EVICTION_BATCH = 100  # automatic entries removed at most per registration
# Registrations on PostgreSQL take this transaction-level advisory lock first, so that each
# one's eviction sees every other's committed rows (no overshoot of the cap), and no two wait
# on each other's rows in a cycle.
_EVICTION_LOCK_KEY = "gql_api.persisted_queries.eviction"
CACHE_BYTES = 8 * 1024 * 1024  # documents' text kept per process, per database
# last_used_at of an automatic entry is written again at most this often by a process, so
# that a document in constant use, served from the processes' caches, is not evicted.
TOUCH_INTERVAL = timedelta(hours=1)

_TABLE = PersistedQuery.__table__  # type: ignore[attr-defined]

logger = logging.getLogger("gql_api.persisted_queries")


class PersistedQueryError(HTTPException):
    """A persisted-query request that cannot run: answered as a GraphQL response with one
    error of `code`, never cached (`headers`), so that a CDN never keeps a "not found" that
    the client's next request makes untrue. `status_code`: 200 for PersistedQueryNotFound
    (the protocol's normal step, which clients must read as GraphQL, as Apollo Server
    answers it), 400 for the rest (a client error). `message`: a Message, rendered at once in
    the language of the request being answered, or a protocol token shown as it is."""

    def __init__(self, status_code: int, message: Message | str, code: str) -> None:
        super().__init__(status_code, message.render() if isinstance(message, Message) else message)
        self.code = code
        self.headers = {"Cache-Control": "no-store"}


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Stored:
    document: str
    trusted: bool


@dataclass
class _Entry:
    stored: Stored
    touched: float  # time.monotonic() when last_used_at was last written or read fresh


class _ProcessCache:
    """Hash → document, least recently used first out, at most CACHE_BYTES of text."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0

    def get(self, sha: str) -> _Entry | None:
        entry = self._entries.get(sha)
        if entry is not None:
            self._entries.move_to_end(sha)
        return entry

    def put(self, sha: str, stored: Stored, *, touched: float) -> None:
        size = len(stored.document)
        if size > self.max_bytes:
            return
        old = self._entries.pop(sha, None)
        if old is not None:
            self._bytes -= len(old.stored.document)
        self._entries[sha] = _Entry(stored, touched)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _sha, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.stored.document)


# One cache per engine (per database and process; two apps in one process keep their own).
_caches: WeakKeyDictionary[Engine, _ProcessCache] = WeakKeyDictionary()
# The schema built from an app's settings, by its engine, when resolve() is passed none.
_schemas: WeakKeyDictionary[Engine, GraphQLSchema] = WeakKeyDictionary()


def _cache(engine: AsyncEngine) -> _ProcessCache:
    cache = _caches.get(engine.sync_engine)
    if cache is None:
        cache = _caches[engine.sync_engine] = _ProcessCache()
    return cache


async def resolve(
    state: AppState, request_data: GraphQLRequestData, *, schema: GraphQLSchema | None = None
) -> GraphQLRequestData:
    """The request with its document, found by the hash in `extensions.persistedQuery`
    (registered first when the text comes with it and validates against `schema`, the app's,
    else one built from state.settings); PersistedQueryError when it cannot run.
    A request without the extension passes unchanged, unless PERSISTED_QUERIES_ONLY."""
    only = state.settings.persisted_queries_only
    extension = (request_data.extensions or {}).get("persistedQuery")
    query = request_data.query
    if extension is None:
        if only and query is not None:
            await _require_trusted(state.engine, sha256_hex(query))
        return request_data
    sha = _requested_hash(extension)
    if query is None:
        stored = await find(engine=state.engine, sha=sha, trusted_only=only)
        if only and (stored is None or not stored.trusted):
            raise PersistedQueryError(400, NOT_ALLOWED_MESSAGE, PERSISTED_QUERY_NOT_ALLOWED)
        if stored is None:
            raise PersistedQueryError(200, NOT_FOUND_MESSAGE, PERSISTED_QUERY_NOT_FOUND)
        return dataclasses.replace(request_data, query=stored.document)
    encoded = query.encode("utf-8")
    if hashlib.sha256(encoded).hexdigest() != sha:
        raise PersistedQueryError(400, MISMATCH_MESSAGE, PERSISTED_QUERY_HASH_MISMATCH)
    if only:
        await _require_trusted(state.engine, sha)
        return request_data
    settings = state.settings
    if await _known(state.engine, sha):
        return request_data
    if len(encoded) <= settings.persisted_queries_max_document_bytes and _validates(
        schema if schema is not None else _schema_of(state), query, max_tokens=settings.max_tokens
    ):
        await _register(
            state.engine, sha, query, max_entries=settings.persisted_queries_max_entries
        )
    return request_data


def _schema_of(state: AppState) -> GraphQLSchema:
    """The schema of the app `state` belongs to, built from its settings once per process
    (build_schema is what the app runs: the same types, so the same validation)."""
    schema = _schemas.get(state.engine.sync_engine)
    if schema is None:
        schema = _schemas[state.engine.sync_engine] = build_schema(state.settings)._schema
    return schema


def _requested_hash(extension: object) -> str:
    if not isinstance(extension, dict):
        raise PersistedQueryError(400, SHAPE_MESSAGE, BAD_REQUEST)
    version = extension.get("version")
    if version != 1 or isinstance(version, bool):
        raise PersistedQueryError(400, VERSION_MESSAGE, BAD_REQUEST)
    sha = extension.get("sha256Hash")
    if not isinstance(sha, str) or len(sha) != 64:
        raise PersistedQueryError(400, HASH_MESSAGE, BAD_REQUEST)
    sha = sha.lower()
    if sha.strip("0123456789abcdef"):
        raise PersistedQueryError(400, HASH_MESSAGE, BAD_REQUEST)
    return sha


def _validates(schema: GraphQLSchema, query: str, *, max_tokens: int) -> bool:
    """Whether `query` parses and passes graphql-core's validation rules against `schema`:
    only such a text may be registered (the app's own limits, depth, aliases and cost, are
    checked when it runs; a document that fails them is at most the size cap)."""
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return False
    return not validate(schema, document, max_errors=1)


async def _known(engine: AsyncEngine, sha: str) -> bool:
    """Whether `sha` is in the store now. A document this process has cached may have been
    evicted by another process since, and clients routed elsewhere would get
    PersistedQueryNotFound forever: a text sent with its hash is looked up (a read by the
    unique index), and registered again when gone. An uncached text costs no read here: it
    is validated and registered (an upsert), as Apollo sends a text only after NotFound."""
    entry = _cache(engine).get(sha)
    if entry is None:
        return False
    if entry.stored.trusted:
        return True  # trusted documents are never evicted
    async with engine.connect() as conn:
        row = (await conn.execute(select(_TABLE.c.id).where(_TABLE.c.sha256 == sha))).first()
    return row is not None


async def _require_trusted(engine: AsyncEngine, sha: str) -> None:
    stored = await find(engine=engine, sha=sha, trusted_only=True)
    if stored is None or not stored.trusted:
        raise PersistedQueryError(400, NOT_ALLOWED_MESSAGE, PERSISTED_QUERY_NOT_ALLOWED)


async def find(*, engine: AsyncEngine, sha: str, trusted_only: bool = False) -> Stored | None:
    """The document of `sha`: from this process's cache, else from the database (then cached).
    `trusted_only`: an automatic entry in the cache is read again from the database, where
    the operator may have made it trusted since.

    An automatic entry's last_used_at is written again when older than TOUCH_INTERVAL, so
    the ones in use stay while the cap removes those no process asked for in a while."""
    cache = _cache(engine)
    now = time.monotonic()
    entry = cache.get(sha)
    if entry is not None and (entry.stored.trusted or not trusted_only):
        if not entry.stored.trusted and now - entry.touched > TOUCH_INTERVAL.total_seconds():
            entry.touched = now
            await _touch(engine, sha)
        return entry.stored
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(_TABLE.c.document, _TABLE.c.trusted, _TABLE.c.last_used_at).where(
                    _TABLE.c.sha256 == sha
                )
            )
        ).first()
    if row is None:
        return None
    stored = Stored(document=row.document, trusted=row.trusted)
    last_used_at: datetime = row.last_used_at
    if not stored.trusted and utcnow() - last_used_at > TOUCH_INTERVAL:
        await _touch(engine, sha)
    cache.put(sha, stored, touched=now)
    return stored


async def _touch(engine: AsyncEngine, sha: str) -> None:
    """Mark an automatic entry used now. Only an eviction hint: a failure is logged, and the
    request, whose document is known, goes on."""
    try:
        # Committed on its own: no request transaction is open while a request is parsed.
        async with independent_write(engine) as conn:
            await conn.execute(
                update(_TABLE)
                .where(_TABLE.c.sha256 == sha, _TABLE.c.trusted.is_(False))
                .values(last_used_at=utcnow())
            )
    except Exception:  # the database's trouble shows in the request's own reads, if any
        logger.warning("could not mark persisted query %s used", sha, exc_info=True)


async def _register(engine: AsyncEngine, sha: str, document: str, *, max_entries: int) -> None:
    """Keep `document` as an automatic entry (or mark it used again), then remove the least
    recently used automatic entries beyond `max_entries`, at most EVICTION_BATCH at a time.
    Registrations are serialized (SQLite's write lock, an advisory lock on PostgreSQL), so
    each eviction counts every committed entry: the store stays within the cap, also under
    concurrent registrations from many processes."""
    # Committed on its own, before the document runs: no request transaction is open yet.
    now = utcnow()
    async with independent_write(engine) as conn:
        await _lock_for_eviction(conn)
        upsert = _insert(conn)(_TABLE).values(
            sha256=sha, document=document, trusted=False, registered_at=now, last_used_at=now
        )
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["sha256"],
                set_={"last_used_at": now},
                where=_TABLE.c.trusted.is_(False),
            )
        )
        beyond = (
            select(_TABLE.c.id)
            .where(_TABLE.c.trusted.is_(False))
            .order_by(_TABLE.c.last_used_at.desc(), _TABLE.c.id.desc())
            .offset(max_entries)
            .limit(EVICTION_BATCH)
        )
        await conn.execute(delete(_TABLE).where(_TABLE.c.id.in_(beyond)))
    _cache(engine).put(sha, Stored(document=document, trusted=False), touched=time.monotonic())


async def _lock_for_eviction(conn: AsyncConnection) -> None:
    """On PostgreSQL, wait for the store's advisory lock, held until the transaction ends;
    taken first, before any row lock, so that no two writers of the store wait in a cycle.
    SQLite needs none: independent_write's transaction holds its database's write lock."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": _EVICTION_LOCK_KEY}
        )


def _insert(conn: AsyncConnection) -> Callable[[Table], postgresql.Insert | sqlite.Insert]:
    """INSERT with ON CONFLICT, in the connection's dialect."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def document_problems(schema: GraphQLSchema, document: str) -> list[str]:
    """Why `document` cannot be a trusted document: it does not parse, or does not validate
    against `schema` (graphql-core's rules; the cost and depth limits are checked when it
    runs, with its variables). Empty when it can."""
    try:
        parsed = parse(document)
    except GraphQLError as error:
        return [error.formatted["message"] + _where(error)]
    return [error.message + _where(error) for error in validate(schema, parsed)]


def _where(error: GraphQLError) -> str:
    if not error.locations:
        return ""
    first = error.locations[0]
    return f" (line {first.line}, column {first.column})"


async def register_trusted(*, engine: AsyncEngine, documents: Sequence[str]) -> list[str]:
    """Register `documents` as trusted, in one transaction (an automatic entry of the same
    text becomes trusted); their hashes, in order. Registering again changes nothing."""
    hashes = [sha256_hex(document) for document in documents]
    now = utcnow()
    async with independent_write(engine) as conn:  # an operator's command: no request around
        await _lock_for_eviction(conn)
        for sha, document in zip(hashes, documents, strict=True):
            upsert = _insert(conn)(_TABLE).values(
                sha256=sha, document=document, trusted=True, registered_at=now, last_used_at=now
            )
            await conn.execute(
                upsert.on_conflict_do_update(index_elements=["sha256"], set_={"trusted": True})
            )
    return hashes


async def trusted_hashes(*, engine: AsyncEngine) -> list[tuple[str, str]]:
    """(sha256, document) of every trusted document, by hash."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(_TABLE.c.sha256, _TABLE.c.document)
            .where(_TABLE.c.trusted.is_(True))
            .order_by(_TABLE.c.sha256)
        )
        return [(row.sha256, row.document) for row in rows]
