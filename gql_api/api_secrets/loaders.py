"""DataLoaders of the api_secrets area: the secret pages of many stores in one statement, and
their totalCounts in one more (gql_api.api_secrets.pages)."""

from __future__ import annotations

from gql_api.api_secrets.pages import (
    ApiSecretRecord,
    SecretPageKey,
    load_secret_counts,
    load_secret_pages,
)
from gql_api.dataloaders import AreaLoader
from gql_api.pagination import Page


class SecretPagesLoader(AreaLoader[SecretPageKey, Page[ApiSecretRecord]]):
    """A page of a store's live secrets per key, in the caller's scope
    (gql_api.api_secrets.service.bound_secret_scope)."""

    context_key = "api_secrets.pages"

    async def batch_load(self, keys: list[SecretPageKey]) -> list[Page[ApiSecretRecord]]:
        principal = self.context.require_principal()
        async with self.context.db() as db:
            return await load_secret_pages(await db.connection(), principal, keys)


class SecretCountsLoader(AreaLoader[int, int]):
    """Store.apiSecrets' totalCount by store pk, in the same scope as the pages: the counts of
    a whole page of stores in one statement."""

    context_key = "api_secrets.counts"

    async def batch_load(self, keys: list[int]) -> list[int]:
        principal = self.context.require_principal()
        async with self.context.db() as db:
            return await load_secret_counts(await db.connection(), principal, keys)
