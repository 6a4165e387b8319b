"""The public `pgProviders` query."""

from __future__ import annotations

from typing import Annotated

import strawberry

from gql_api.context import Info
from gql_api.enums import ChannelPurpose, ModuleVersion
from gql_api.pg_catalog import catalog
from gql_api.pg_catalog.types import PgProviderInfo


@strawberry.type
class Query:
    @strawberry.field(
        description="The PG catalog (public): providers with the modules that serve the given "
        "module version and purpose."
    )
    def pg_providers(
        self,
        info: Info,
        module_version: Annotated[
            ModuleVersion | None,
            strawberry.argument(description="Only modules of this PortOne module version."),
        ] = None,
        purpose: Annotated[
            ChannelPurpose | None,
            strawberry.argument(description="Only modules with this channel purpose."),
        ] = None,
    ) -> list[PgProviderInfo]:
        providers = info.context.app.catalog.filtered(
            version=catalog.ModuleVersion(module_version) if module_version else None,
            purpose=catalog.ChannelPurpose(purpose) if purpose else None,
        )
        return [PgProviderInfo.from_model(p) for p in providers]
