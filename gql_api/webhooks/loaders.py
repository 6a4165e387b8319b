"""DataLoaders of the webhooks area: effective settings and signing secrets of many stores,
the attempts of many events and their counts, the failed-event counts of many stores."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from db.models import Store, WebhookDelivery
from gql_api.dataloaders import AreaLoader
from gql_api.pagination import Page
from gql_api.stores.loaders import RepresentativeStoreLoader
from gql_api.webhooks import event_service
from gql_api.webhooks.event_service import AttemptCountKey, AttemptPageKey, FailedCountKey
from gql_api.webhooks.service import (
    EffectiveWebhookSetting,
    SecretRecord,
    effective_for_stores,
    listed_secrets_key,
    secrets_for,
)


class WebhookSettingsLoader(AreaLoader[Store, list[EffectiveWebhookSetting]]):
    """The four settings in force for each store; the key is the store row the caller already
    holds (it was read through visible_stores), cached by its pk."""

    context_key = "webhooks.settings"

    def cache_key(self, key: Store) -> Hashable:
        return key.id

    async def batch_load(self, keys: list[Store]) -> list[list[EffectiveWebhookSetting]]:
        principal = self.context.require_principal()
        representative = await RepresentativeStoreLoader.of(self.context).load(
            principal.merchant_pk
        )
        async with self.context.db() as db:
            found = await effective_for_stores(db, principal, keys, representative)
        return [found.get(store.id, []) if store.id else [] for store in keys]


class WebhookSecretsLoader(AreaLoader[tuple[int, str], list[SecretRecord]]):
    """Signing secrets by (store pk, mode), within the caller's scope."""

    context_key = "webhooks.secrets"

    async def batch_load(self, keys: list[tuple[int, str]]) -> list[list[SecretRecord]]:
        principal = self.context.require_principal()
        async with self.context.db() as db:
            found = await secrets_for(db, principal, list(keys))
        return [found[key] for key in keys]

    def not_asked(self, keys: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
        """Those of `keys` (once each) this request has neither loaded nor asked for yet."""
        return [key for key in dict.fromkeys(keys) if self.cache_map.get(key) is None]


class WebhookSettingsWithSecretsLoader(WebhookSettingsLoader):
    """WebhookSettingsLoader for a selection that asks the settings' `secrets` too: each batch
    reads the signing secrets of its settings as well (one statement more, in the same batch)
    and hands them to WebhookSecretsLoader.

    Left to WebhookSecretsLoader, the secrets of the settings of different batches (the
    representative store's, asked first; its sub-stores', after their page) were read together
    or apart depending on which answers arrived in the same loop iteration: a dashboard's
    statements varied between runs. Here each batch of settings brings its own secrets: the
    same statements every time, and no loop iteration spent waiting between the two."""

    context_key = "webhooks.settings_with_secrets"

    async def batch_load(self, keys: list[Store]) -> list[list[EffectiveWebhookSetting]]:
        found = await super().batch_load(keys)
        secrets = WebhookSecretsLoader.of(self.context)
        wanted = secrets.not_asked(
            key
            for settings in found
            for setting in settings
            if (key := listed_secrets_key(setting))
        )
        if wanted:  # read as WebhookSecretsLoader reads them, within this batch's turn
            secrets.prime_many(dict(zip(wanted, await secrets.batch_load(wanted), strict=True)))
        return found


class WebhookAttemptPagesLoader(AreaLoader[AttemptPageKey, Page[WebhookDelivery]]):
    """A page of an event's attempts per key (WebhookEvent.attempts of a whole page of events
    in a few statements), within what the caller may see (event_service.attempt_pages)."""

    context_key = "webhooks.attempt_pages"

    async def batch_load(self, keys: list[AttemptPageKey]) -> list[Page[WebhookDelivery]]:
        principal = self.context.require_principal()
        async with self.context.db() as db:
            return await event_service.attempt_pages(db=db, principal=principal, keys=keys)


class WebhookAttemptCountsLoader(AreaLoader[AttemptCountKey, int]):
    """WebhookEvent.attempts' totalCount of a whole page of events in a few statements, within
    what the caller may see (event_service.attempt_counts)."""

    context_key = "webhooks.attempt_counts"

    async def batch_load(self, keys: list[AttemptCountKey]) -> list[int]:
        principal = self.context.require_principal()
        async with self.context.db() as db:
            return await event_service.attempt_counts(db=db, principal=principal, keys=keys)


class FailedWebhookEventCountLoader(AreaLoader[FailedCountKey, int]):
    """Store.failedWebhookEventCount of many stores, one statement per window."""

    context_key = "webhooks.failed_event_counts"

    async def batch_load(self, keys: list[FailedCountKey]) -> list[int]:
        principal = self.context.require_principal()
        async with self.context.db() as db:
            return await event_service.failed_counts(db=db, principal=principal, keys=keys)
