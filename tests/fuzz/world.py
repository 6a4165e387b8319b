"""The world the schema fuzz runs in: merchant A with every kind of row and five callers, and
merchant B whose rows A's callers must never see.

Everything secret is planted (API secrets, webhook signing secrets, session and invitation
tokens, the secret credentials of a PG channel, the password) so that the fuzz can grep every
response for it; B's names, emails, channel keys and MIDs are planted too, and never handed to
the fuzzer, so that any of them in a response to A is a leak.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import User
from gql_api.accounts.sessions import open_session
from gql_api.pg_catalog.catalog import PgProvider, load_catalog
from gql_api.settings import Settings
from tests.api_secrets.helpers import issue, portone
from tests.channel_groups.helpers import create_group
from tests.channels.helpers import create_channel, inicis_live_input, kcp_live_input
from tests.factories import Seeded, seed_merchant
from tests.support import INVITE, PASSWORD, Api
from tests.webhooks.helpers import SECRET_ISSUE, SETTING_UPDATE

# The callers of A, by name: each an Authorization header (None: anonymous).
CALLER_NAMES = ("owner", "developer", "store_manager", "api_secret", "anonymous")


@dataclass
class World:
    callers: dict[str, str | None]
    # Never in any response, whoever asks.
    secrets: set[str] = field(default_factory=set)
    # B's data that is never sent to the fuzzer: never in any response to A's callers.
    b_markers: set[str] = field(default_factory=set)
    # B's identifiers, handed to the fuzzer to try across the tenant boundary: in a response
    # only where a request carried them (echoed in an error or stored as a name).
    b_ids: set[str] = field(default_factory=set)
    # Identifiers of both merchants the fuzzer puts into string arguments now and then.
    pool: list[str] = field(default_factory=list)
    # The email of each caller that is a person: a revoked session is reopened (revive).
    emails: dict[str, str] = field(default_factory=dict)
    # Where the API secret caller's secret is reissued when a fuzzed operation deleted it.
    api_secret_store_id: str = ""


def _unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}"


async def _ok(api: Api, query: str, variables: dict[str, Any], token: str, name: str) -> Any:
    result = await api.gql(query, variables, token=token)
    payload = result.data[name]
    assert payload["userErrors"] == [], payload
    return payload


def _secret_credentials(channel_input: dict[str, Any]) -> set[str]:
    """The values of `channel_input`'s credentials that the PG catalog marks secret."""
    provider = load_catalog().provider(PgProvider(channel_input["pgProvider"]))
    assert provider is not None
    module = provider.module(channel_input["moduleCode"])
    assert module is not None
    planted = set()
    for credential in channel_input["credentials"]:
        described = module.field(credential["key"])
        assert described is not None
        if described.secret:
            planted.add(credential["value"])
    return planted


async def _furnish(api: Api, seeded: Seeded, *, live_channel: dict[str, Any]) -> dict[str, Any]:
    """Channels, a channel group, webhook settings and secrets, an API secret and a pending
    invitation for `seeded`'s merchant, through the API. Returns what was made."""
    token = seeded.owner.token
    store_id = seeded.owner.representative_store_id
    sub_store_id = next(iter(seeded.stores.values()))
    live = await create_channel(api, token, live_channel)
    tests = [
        await create_channel(
            api,
            token,
            {
                "storeId": store_id,
                "mode": "TEST",
                "pgProvider": "KCP_V2",
                "moduleCode": "KCP_V2_PAYMENT",
                "name": _unique("test-channel"),
                "pgMerchantId": "T0000",
            },
        )
        for _ in range(2)
    ]
    group = await create_group(
        api,
        token,
        store_id,
        _unique("group"),
        [
            {"channelId": tests[0]["id"], "weight": 60},
            {"channelId": tests[1]["id"], "weight": 40},
        ],
    )
    webhook_secrets = []
    for store in (store_id, sub_store_id):
        await _ok(
            api,
            SETTING_UPDATE,
            {
                "input": {
                    "storeId": store,
                    "moduleVersion": "V2",
                    "mode": "TEST",
                    "url": f"http://127.0.0.1:9/{uuid.uuid4().hex}",
                }
            },
            token,
            "webhookSettingUpdate",
        )
        webhook_secrets.append(
            await _ok(
                api,
                SECRET_ISSUE,
                {"input": {"storeId": store, "mode": "TEST"}},
                token,
                "webhookSecretIssue",
            )
        )
    api_secret = await issue(api, token, store_id, name=_unique("api-secret"))
    invitation = await _ok(
        api,
        INVITE,
        {"input": {"email": f"{_unique('invitee')}@example.com", "role": "READ_ONLY"}},
        token,
        "memberInvite",
    )
    return {
        "store_ids": [store_id, *seeded.stores.values()],
        "channels": [live, *tests],
        "group": group,
        "webhook_secrets": webhook_secrets,
        "api_secret": api_secret,
        "invitation": invitation,
    }


def _ids(made: dict[str, Any], seeded: Seeded) -> list[str]:
    """The identifiers of `made` a caller could send: storeIds and global IDs."""
    return [
        *made["store_ids"],
        seeded.owner.merchant_id,
        *(channel["id"] for channel in made["channels"]),
        made["group"]["id"],
        made["group"]["channelGroupId"],
        *(secret["webhookSecret"]["id"] for secret in made["webhook_secrets"]),
        made["api_secret"].id,
        made["invitation"]["invitation"]["id"],
        *(member.member_id for member in seeded.members.values()),
        *(member.user_id for member in seeded.members.values()),
    ]


def _secrets(made: dict[str, Any], seeded: Seeded, live_channel: dict[str, Any]) -> set[str]:
    return {
        made["api_secret"].secret,
        made["invitation"]["invitationToken"],
        *(secret["secret"] for secret in made["webhook_secrets"]),
        seeded.owner.token,
        *(member.token for member in seeded.members.values()),
        *_secret_credentials(live_channel),
    }


async def build_world(api: Api, engine: AsyncEngine, settings: Settings) -> World:
    """Merchants A and B, furnished; A's five callers."""
    a = await seed_merchant(
        engine,
        roles=("DEVELOPER", "STORE_MANAGER"),
        stores=(_unique("A store"),),
        settings=settings,
    )
    b = await seed_merchant(
        engine, roles=("DEVELOPER",), stores=(_unique("B store"),), settings=settings
    )
    a_live = kcp_live_input(a.owner.representative_store_id, name=_unique("A live"))
    b_mid = f"MOI{uuid.uuid4().hex[:7]}"
    b_live = inicis_live_input(
        b.owner.representative_store_id, name=_unique("B live"), pgMerchantId=b_mid
    )
    made_a = await _furnish(api, a, live_channel=a_live)
    made_b = await _furnish(api, b, live_channel=b_live)
    world = World(
        callers={
            "owner": f"Bearer {a.owner.token}",
            "developer": f"Bearer {a.members['DEVELOPER'].token}",
            "store_manager": f"Bearer {a.members['STORE_MANAGER'].token}",
            "api_secret": portone(made_a["api_secret"].secret),
            "anonymous": None,
        },
        api_secret_store_id=a.owner.representative_store_id,
        emails={
            "owner": a.owner.email,
            "developer": a.members["DEVELOPER"].email,
            "store_manager": a.members["STORE_MANAGER"].email,
        },
    )
    world.secrets = {PASSWORD, *_secrets(made_a, a, a_live), *_secrets(made_b, b, b_live)}
    world.b_ids = set(_ids(made_b, b))
    world.b_markers = {
        b.owner.email,
        *(member.email for member in b.members.values()),
        *b.stores,
        b_live["name"],
        b_mid,
        made_b["group"]["name"],
        *(channel["name"] for channel in made_b["channels"]),
        *(channel["channelKey"] for channel in made_b["channels"]),
        made_b["api_secret"].node["name"],
        made_b["invitation"]["invitation"]["email"],
    }
    world.pool = sorted({*_ids(made_a, a), *world.b_ids})
    assert set(CALLER_NAMES) == set(world.callers)
    return world


async def revive(
    api: Api, engine: AsyncEngine, settings: Settings, world: World, caller: str
) -> None:
    """New credentials for `caller` once a fuzzed operation ended its own (its sessionRevoke
    is generated often; apiSecretDelete and network rules on an ID from the pool now and
    then): the rest of the run still acts as that caller. A person gets a new session, the
    API secret caller a new secret issued by the owner; both are planted like the others.
    A removed member stays removed."""
    if caller == "api_secret":
        owner = world.callers["owner"]
        assert owner is not None
        try:
            issued = await issue(
                api, owner.removeprefix("Bearer "), world.api_secret_store_id, _unique("again")
            )
        except AssertionError:  # the owner is no longer an owner (a fuzzed transfer)
            return
        world.callers[caller] = portone(issued.secret)
        world.secrets.add(issued.secret)
        return
    email = world.emails.get(caller)
    if email is None:
        return
    async with AsyncSession(engine, expire_on_commit=False) as db:
        user = (
            await db.exec(select(User).where(User.email == email, col(User.removed_at).is_(None)))
        ).first()
        if user is None:
            return
        opened = await open_session(db=db, settings=settings, user=user)
        await db.commit()
    world.callers[caller] = f"Bearer {opened.token}"
    world.secrets.add(opened.token)
