"""The framework floor: the dashboard response served by strawberry alone, from memory.

Same type names, field names, arguments, enums and scalars as the real schema for everything the
dashboard query selects; the data is built once, at start-up, from a JSON capture of the real
server's response (`--data`), so the floor answers byte-for-byte the same JSON. No database,
no authentication, no middleware, no DataLoaders: fields that are resolvers in the real app
(subStores, channels) are plain synchronous resolvers returning the prebuilt objects, the rest
are plain attributes. strawberry.asgi.GraphQL on Starlette with ParserCache and ValidationCache
(as the real app).

Level with the app in what is not the app's own code (issue 20): responses are encoded with
orjson (the app's GraphQLApp.encode_json), the garbage collector is set up by the app's own
gql_api.runtime.tune_garbage_collector at start-up (gc.freeze), and uvicorn runs with the options
`integration-api serve` passes it, captured from the CLI itself (bench/parity.py) and handed over
as `--uvicorn-options` JSON. bench/parity.py checks all three before any load and fails the run
when the app and the floor differ.

    python bench/floor.py --port 8001 --data bench/out/dashboard-sqlite.json \
        --uvicorn-options '{"access_log": false, "proxy_headers": false, ...}'
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
import strawberry
import uvicorn
from graphql import GraphQLEnumType, build_schema
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

from gql_api.runtime import tune_garbage_collector  # gc only: no other part of the app

T = TypeVar("T")


@strawberry.enum(name="IntegrationMode")
class IntegrationMode(StrEnum):
    LIVE = "LIVE"
    TEST = "TEST"


@strawberry.enum(name="ChannelType")
class ChannelType(StrEnum):
    LIVE = "LIVE"
    MERCHANT_TEST = "MERCHANT_TEST"
    SHARED_TEST = "SHARED_TEST"


@strawberry.enum(name="ModuleVersion")
class ModuleVersion(StrEnum):
    V1 = "V1"
    V2 = "V2"


@strawberry.enum(name="ChannelPurpose")
class ChannelPurpose(StrEnum):
    PAYMENT = "PAYMENT"
    IDENTITY_VERIFICATION = "IDENTITY_VERIFICATION"


@strawberry.enum(name="TaxType")
class TaxType(StrEnum):
    UNSET = "UNSET"
    TAXABLE = "TAXABLE"
    TAX_FREE = "TAX_FREE"


@strawberry.enum(name="WebhookContentType")
class WebhookContentType(StrEnum):
    JSON = "JSON"
    FORM_URLENCODED = "FORM_URLENCODED"


@strawberry.enum(name="WebhookPayloadVersion")
class WebhookPayloadVersion(StrEnum):
    V2024_01_01 = "V2024_01_01"
    V2024_04_25 = "V2024_04_25"


def _pg_provider_enum() -> Any:
    """The real schema's PgProvider values (read from schema.graphql, not from gql_api)."""
    sdl = (Path(__file__).resolve().parent.parent / "schema.graphql").read_text(encoding="utf-8")
    enum = build_schema(sdl).type_map["PgProvider"]  # values may carry descriptions
    assert isinstance(enum, GraphQLEnumType)
    values = StrEnum("PgProvider", {name: name for name in enum.values})  # type: ignore[misc]
    return strawberry.enum(values, name="PgProvider")


PgProvider = _pg_provider_enum()


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    nodes: list[T]


@strawberry.type
class ChannelCredential:
    key: str
    label: str
    secret: bool
    value: str | None
    masked_value: str | None


@strawberry.type
class Channel:
    id: strawberry.ID
    channel_key: str
    name: str
    mode: IntegrationMode
    type: ChannelType
    pg_provider: PgProvider  # type: ignore[valid-type]
    module_code: str
    module_versions: list[ModuleVersion]
    purpose: ChannelPurpose
    pg_merchant_id: str
    tax_type: TaxType
    credentials: list[ChannelCredential]
    version: int
    created_at: datetime
    updated_at: datetime


@strawberry.type
class WebhookSecret:
    id: strawberry.ID
    hint: str
    created_at: datetime
    expired_at: datetime | None


@strawberry.type
class WebhookSetting:
    module_version: ModuleVersion
    mode: IntegrationMode
    url: str | None
    content_type: WebhookContentType
    payload_version: WebhookPayloadVersion | None
    uses_representative_setting: bool
    updated_at: datetime | None
    secrets: list[WebhookSecret]


@strawberry.type
class Store:
    id: strawberry.ID
    store_id: str
    name: str
    is_representative: bool
    created_at: datetime
    webhook_settings: list[WebhookSetting]
    sub_store_page: strawberry.Private[Any]
    channel_page: strawberry.Private[Any]

    @strawberry.field
    def sub_stores(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Store]:
        return self.sub_store_page  # type: ignore[no-any-return]

    @strawberry.field
    def channels(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Channel]:
        return self.channel_page  # type: ignore[no-any-return]


@strawberry.type
class Merchant:
    id: strawberry.ID
    name: str
    representative_store: Store


# ---- building the objects from the captured JSON -------------------------------------------


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _page_info(raw: dict[str, Any]) -> PageInfo:
    return PageInfo(
        has_next_page=raw["hasNextPage"],
        has_previous_page=raw["hasPreviousPage"],
        start_cursor=raw["startCursor"],
        end_cursor=raw["endCursor"],
    )


def _channel(raw: dict[str, Any]) -> Channel:
    return Channel(
        id=strawberry.ID(raw["id"]),
        channel_key=raw["channelKey"],
        name=raw["name"],
        mode=IntegrationMode(raw["mode"]),
        type=ChannelType(raw["type"]),
        pg_provider=PgProvider(raw["pgProvider"]),
        module_code=raw["moduleCode"],
        module_versions=[ModuleVersion(v) for v in raw["moduleVersions"]],
        purpose=ChannelPurpose(raw["purpose"]),
        pg_merchant_id=raw["pgMerchantId"],
        tax_type=TaxType(raw["taxType"]),
        credentials=[
            ChannelCredential(
                key=c["key"],
                label=c["label"],
                secret=c["secret"],
                value=c["value"],
                masked_value=c["maskedValue"],
            )
            for c in raw["credentials"]
        ],
        version=raw["version"],
        created_at=datetime.fromisoformat(raw["createdAt"]),
        updated_at=datetime.fromisoformat(raw["updatedAt"]),
    )


def _connection(raw: dict[str, Any], build: Any) -> Connection[Any]:
    nodes = [build(edge["node"]) for edge in raw["edges"]]
    return Connection(
        edges=[Edge(cursor=e["cursor"], node=n) for e, n in zip(raw["edges"], nodes, strict=True)],
        page_info=_page_info(raw["pageInfo"]),
        nodes=nodes,
    )


def _setting(raw: dict[str, Any]) -> WebhookSetting:
    return WebhookSetting(
        module_version=ModuleVersion(raw["moduleVersion"]),
        mode=IntegrationMode(raw["mode"]),
        url=raw["url"],
        content_type=WebhookContentType(raw["contentType"]),
        payload_version=(
            WebhookPayloadVersion(raw["payloadVersion"]) if raw["payloadVersion"] else None
        ),
        uses_representative_setting=raw["usesRepresentativeSetting"],
        updated_at=_dt(raw["updatedAt"]),
        secrets=[
            WebhookSecret(
                id=strawberry.ID(s["id"]),
                hint=s["hint"],
                created_at=datetime.fromisoformat(s["createdAt"]),
                expired_at=_dt(s["expiredAt"]),
            )
            for s in raw["secrets"]
        ],
    )


def _store(raw: dict[str, Any]) -> Store:
    sub = raw.get("subStores")
    return Store(
        id=strawberry.ID(raw["id"]),
        store_id=raw["storeId"],
        name=raw["name"],
        is_representative=raw["isRepresentative"],
        created_at=datetime.fromisoformat(raw["createdAt"]),
        webhook_settings=[_setting(s) for s in raw["webhookSettings"]],
        sub_store_page=_connection(sub, _store) if sub is not None else None,
        channel_page=_connection(raw["channels"], _channel),
    )


def build_merchant(capture: dict[str, Any]) -> Merchant:
    raw = capture["data"]["merchant"]
    return Merchant(
        id=strawberry.ID(raw["id"]),
        name=raw["name"],
        representative_store=_store(raw["representativeStore"]),
    )


def create_app(capture_path: Path) -> Starlette:
    merchant = build_merchant(json.loads(capture_path.read_text(encoding="utf-8")))

    @strawberry.type
    class Query:
        @strawberry.field
        def merchant(self) -> Merchant:
            return merchant

    schema = strawberry.Schema(
        query=Query,
        extensions=[
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
        ],
    )
    graphql = OrjsonGraphQL(
        schema, graphql_ide=None, allow_queries_via_get=False, multipart_uploads_enabled=False
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        tune_garbage_collector()  # as gql_api.app's lifespan, first thing at start-up
        yield

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


class OrjsonGraphQL(GraphQL[None, None]):
    """strawberry's ASGI view answering with orjson, as the app's GraphQLApp does."""

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True, help="JSON capture of the dashboard")
    parser.add_argument(
        "--uvicorn-options",
        type=json.loads,
        default={},
        help="JSON: the uvicorn options of `integration-api serve` other than host, port and "
        "log_config (bench/parity.py captures them)",
    )
    args = parser.parse_args()
    options: dict[str, Any] = args.uvicorn_options
    uvicorn.run(
        lambda: create_app(args.data),
        factory=True,
        host=args.host,
        port=args.port,
        log_config=None,  # no logging of its own: the floor has no access log to write
        log_level="warning",
        **options,
    )


if __name__ == "__main__":
    main()
