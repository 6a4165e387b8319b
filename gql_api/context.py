"""Per-request context: the caller, one database session, and per-request DataLoaders.

The loaders belong to their areas (gql_api/<area>/loaders.py, on gql_api.dataloaders.AreaLoader);
the context only holds them by key, so it imports no area.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import strawberry
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from gql_api.api_secrets.auth import SecretVerifier
from gql_api.caller import CallerMerchant
from gql_api.fairness import Fairness, Lane
from gql_api.metrics import Metrics
from gql_api.permissions import Principal, require_principal
from gql_api.pg_catalog.catalog import Catalog
from gql_api.security.encryption import Encryptor
from gql_api.security.passwords import PasswordHashing
from gql_api.settings import Settings

logger = logging.getLogger("gql_api.context")


@dataclass
class AppState:
    """What lives as long as the process: settings, the engine, the argon2 hasher."""

    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    hashing: PasswordHashing
    catalog: Catalog
    encryptor: Encryptor
    verifier: SecretVerifier
    metrics: Metrics
    fairness: Fairness


class ContextClosed(RuntimeError):
    """context.db() after the request's context was closed."""


@dataclass
class Context:
    request: Request
    response: Response | None
    app: AppState
    principal: Principal | None
    request_id: str
    # gql_api.client_address: the peer, or what a trusted proxy forwarded.
    client_address: str
    # The caller's merchant as authentication read it (None: anonymous, or not read).
    caller_merchant: CallerMerchant | None = None
    # gql_api.dataloaders.AreaLoader instances by context_key, created on first use.
    dataloaders: dict[str, object] = field(default_factory=dict)
    # Light or heavy (gql_api.fairness); None outside the HTTP app: nothing is paced.
    lane: Lane | None = None
    # Set once a unit of work of this request sent its COMMIT (see commit_begins).
    commit_begun: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _holder: asyncio.Task[Any] | None = None
    _session: AsyncSession | None = None
    _closed: bool = False

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The request's session, one user at a time (sibling fields resolve concurrently).

        Created on first use (a query answered without the database never opens one).
        Inside this block the task holds the lock that DataLoader batches take, so loading
        there would wait forever: AreaLoader.load refuses with a RuntimeError, as does a
        nested db() in the same task.

        After close() it raises ContextClosed: a resolver still running once the answer is
        made (a sibling of a field that failed) never reopens a session nobody would close.
        """
        if self.holds_db():
            raise RuntimeError("context.db() inside context.db() in the same task")
        async with self._lock:
            if self._closed:
                raise ContextClosed("the request's answer is made: its session is closed")
            self._holder = asyncio.current_task()
            try:
                if self._session is None:
                    self._session = self.app.session_factory()
                yield self._session
            except (asyncio.CancelledError, SQLAlchemyError):
                # Cancelled mid-statement (graphql-core cancels the siblings of a field whose
                # error nulls their parent) or failed in the database: the session's
                # connection may be mid-query or its transaction dead. The fields still to
                # resolve get a new session; this one is thrown away, its connection
                # invalidated rather than given back to the pool.
                broken, self._session = self._session, None
                if broken is not None:
                    await _discard(broken)
                raise
            finally:
                self._holder = None

    def commit_begins(self) -> None:
        """Called by the transaction runner (gql_api.mutations) just before a unit of work of
        this request sends its COMMIT. From then on the request may have changed something
        although it fails: a COMMIT whose reply was lost may have been applied, and a request
        whose first mutation committed fails in a later field. Sending it again could apply it
        twice, so its failures are no longer `retryable` (gql_api.errors.masked_extensions).

        Writes committed on their own (db.engine.independent_write: log-in and API-secret
        throttling claims, failures counted, their audit events) do not count: they record an
        attempt, and a retried attempt is one more attempt, counted as such."""
        self.commit_begun = True

    def holds_db(self) -> bool:
        """True inside this task's `async with self.db()` block."""
        return self._holder is not None and self._holder is asyncio.current_task()

    async def close(self) -> None:
        """Give the session's connection back, once no resolver uses it.

        Resolvers may outlive the answer (graphql-core settles a failed field's siblings in
        the background), so the session is closed under the lock that db() lends it under,
        and db() refuses from then on (a waiter already queued gets the lock and refuses).
        """
        if self.holds_db():
            raise RuntimeError("context.close() inside context.db()")
        self._closed = True
        async with self._lock:
            session, self._session = self._session, None
            if session is not None:
                await session.close()

    def require_principal(self) -> Principal:
        return require_principal(self.principal)


async def _discard(session: AsyncSession) -> None:
    """Close a session whose connection cannot be trusted, invalidating the connection."""
    try:
        await session.invalidate()
    except Exception:  # already broken: nothing more to give back
        logger.warning("discarding a broken database session failed", exc_info=True)


Info: TypeAlias = strawberry.Info[Context, Any]
