"""What the GraphQL `Channel` shows, apart from its store. Secret credentials only ever masked.

`Channel` itself (these fields and `store`) is declared beside `Store` in gql_api.stores.types,
since each of the two refers to the other; gql_api.channels.types is where it is imported from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Self

import strawberry

from db.models import Channel as ChannelRow
from gql_api.channels import rules
from gql_api.channels.pages import ChannelRecord
from gql_api.enums import (
    ChannelPurpose,
    ChannelType,
    IntegrationMode,
    ModuleVersion,
    PgProvider,
    TaxType,
)
from gql_api.i18n import Locale, Localized, current_locale
from gql_api.node import Node, to_global_id
from gql_api.pg_catalog.catalog import Catalog


@strawberry.type(description="One credential of a channel. Secret values are never returned.")
class ChannelCredential:
    key: str = strawberry.field(description="The module's credential key, e.g. signKey.")
    label: str = strawberry.field(
        description="Label as the console shows it, in the request's language (Korean where "
        "no English exists)."
    )
    secret: bool = strawberry.field(
        description="True for write-only fields: only maskedValue is returned."
    )
    value: str | None = strawberry.field(description="The value, for non-secret fields only.")
    masked_value: str | None = strawberry.field(
        description="For secret fields: •••• and, for long values, the last 4 characters."
    )


@strawberry.input(description="Filter a store's channels; all given conditions must hold.")
class ChannelFilter:
    mode: IntegrationMode | None = strawberry.field(
        default=None, description="Only channels of this mode."
    )
    purpose: ChannelPurpose | None = strawberry.field(
        default=None, description="Only channels with this purpose."
    )
    pg_provider: PgProvider | None = strawberry.field(
        default=None, description="Only channels of this PG."
    )
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive match on name, MID or channel key."
    )


@strawberry.type
class ChannelFields(Node):
    """The fields of gql_api.stores.types.Channel but its store (never in the schema itself)."""

    channel_key: str = strawberry.field(
        description="channel-key-<uuid4>, passed as channelKey in payment calls."
    )
    name: str = strawberry.field(description="Unique per store and mode among live channels.")
    mode: IntegrationMode = strawberry.field(description="LIVE or TEST; fixed at creation.")
    type: ChannelType = strawberry.field(
        description="LIVE, MERCHANT_TEST (own test MID) or SHARED_TEST (public test MID)."
    )
    pg_provider: PgProvider = strawberry.field(description="The PG; fixed at creation.")
    module_code: str = strawberry.field(
        description="The payment module (결제 모듈) chosen at creation; see pgProviders."
    )
    module_versions: list[ModuleVersion] = strawberry.field(
        description="The PortOne module versions (V1, V2) the channel's module serves."
    )
    purpose: ChannelPurpose = strawberry.field(
        description="결제 (PAYMENT) or 본인인증 (IDENTITY_VERIFICATION); fixed at creation."
    )
    pg_merchant_id: str = strawberry.field(description="MID (PG상점아이디).")
    tax_type: TaxType = strawberry.field(
        description="과세구분, reference data for VAT reports; it does not change taxation."
    )
    credentials: list[ChannelCredential] = strawberry.field(
        description="The stored credentials in the module's order; secret values masked."
    )
    version: int = strawberry.field(
        description="Optimistic-concurrency counter; send it back to channelUpdate."
    )
    created_at: datetime = strawberry.field(description="When it was added (RFC 3339, UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (RFC 3339, UTC).")
    store_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: ChannelRow | ChannelRecord, catalog: Catalog) -> Self:
        """From an ORM row or a gql_api.channels.pages.ChannelRecord. A dashboard builds
        hundreds per request: the enum members and the labels come from dictionaries made
        once (the same members and texts the enum calls and Localized.render give)."""
        assert row.id is not None
        shape = _module_display(catalog, row.pg_provider, row.module_code)
        stored = row.credentials
        labels = shape.labels_in(current_locale.get())
        return cls(
            id=to_global_id("Channel", row.id),
            channel_key=row.channel_key,
            name=row.name,
            mode=_MODES[row.mode],
            type=rules.channel_type(row.mode, row.shared_test),
            pg_provider=shape.provider,
            module_code=row.module_code,
            module_versions=list(shape.versions),
            purpose=_PURPOSES[row.purpose],
            pg_merchant_id=row.pg_merchant_id,
            tax_type=_TAX_TYPES[row.tax_type],
            credentials=[
                _credential(key, stored[key], labels.get(key, key)) for key in shape.ordered(stored)
            ],
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            store_pk=row.store_pk,
        )


# Stored values to enum members (a KeyError for a value the enum lacks, as the call's
# ValueError would be: an INTERNAL error either way).
_MODES: dict[str, IntegrationMode] = {m.value: m for m in IntegrationMode}
_PURPOSES: dict[str, ChannelPurpose] = {p.value: p for p in ChannelPurpose}
_TAX_TYPES: dict[str, TaxType] = {t.value: t for t in TaxType}


@dataclass(frozen=True)
class ModuleDisplay:
    """What the catalog says about how channels of one module are shown."""

    provider: PgProvider
    versions: tuple[ModuleVersion, ...]
    order: tuple[str, ...]  # credential keys in catalog order
    labels: dict[str, Localized]
    _rendered: dict[Locale, dict[str, str]] = field(default_factory=dict, compare=False)

    def labels_in(self, locale: Locale) -> dict[str, str]:
        """Every label rendered in `locale` (rendered once per module and language); a key
        the catalog no longer has has none (the key itself is shown)."""
        found = self._rendered.get(locale)
        if found is None:
            found = self._rendered[locale] = {
                key: label.render(locale) for key, label in self.labels.items()
            }
        return found

    def ordered(self, stored: dict[str, dict[str, str]]) -> list[str]:
        """Stored keys in the order the catalog lists the fields (unknown keys last)."""
        known = [k for k in self.order if k in stored]
        if len(known) == len(stored):
            return known
        return known + sorted(k for k in stored if k not in self.order)


# Catalog lookups per (catalog, provider, module): a dashboard shows hundreds of channels.
_displays: dict[tuple[int, str, str], ModuleDisplay] = {}


def _module_display(catalog: Catalog, pg_provider: str, module_code: str) -> ModuleDisplay:
    key = (id(catalog), pg_provider, module_code)
    found = _displays.get(key)
    if found is None:
        provider = PgProvider(pg_provider)
        info = catalog.provider(provider)
        module = info.module(module_code) if info else None
        fields = module.credential_fields if module else ()
        found = _displays[key] = ModuleDisplay(
            provider=provider,
            versions=module.versions if module else (ModuleVersion.V2,),
            order=tuple(f.key for f in fields),
            labels={f.key: f.localized_label for f in fields},
        )
    return found


def _credential(key: str, stored: dict[str, str], label: str) -> ChannelCredential:
    secret = "cipher" in stored
    return ChannelCredential(
        key=key,
        label=label,
        secret=secret,
        value=None if secret else stored.get("value"),
        masked_value=stored.get("masked") if secret else None,
    )
