"""What holds when many requests overlap, through two real server processes on PostgreSQL.

Each rule below is enforced in the database (a conditional update, a row lock, a unique
index), never in one process's memory, so it must hold with half the requests sent through
server A and half through server B, all released at the same instant (StartingLine):

- of the updates of one channel from the same version, exactly one wins;
- a store never has more than 2 active webhook signing secrets per mode;
- a merchant always has exactly one owner, whatever role changes race an ownership transfer;
- an API secret is refused by both servers from the moment its delete is acknowledged, even
  by a server that verified it and remembers it.

PostgreSQL only: on SQLite writes are serialized whole, so nothing could overlap. The servers
are started once for the module; each test seeds its own merchant. Time is read only to order
events (a request started after an acknowledgement), never to assert how long anything took.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text

from tests.api_secrets.helpers import DELETE as API_SECRET_DELETE
from tests.api_secrets.helpers import ISSUE as API_SECRET_ISSUE
from tests.api_secrets.helpers import WHO_AM_I, assert_refused, portone
from tests.channels.helpers import CHANNEL_CREATE, CHANNEL_UPDATE, NODE, kcp_shared_test_input
from tests.concurrency_support import (
    StartingLine,
    TwoServers,
    api_of,
    running_two_servers,
    verifications,
)
from tests.factories import Seeded, add_member, seed_merchant
from tests.pg_server import PostgresServer
from tests.support import Api, GraphQLResponse, Joined, SignedUp, connect
from tests.webhooks.helpers import SECRET_ISSUE as WEBHOOK_SECRET_ISSUE
from tests.webhooks.helpers import read_setting

MEMBER_ROLE_UPDATE = """
mutation RoleUpdate($input: MemberRoleUpdateInput!) {
  memberRoleUpdate(input: $input) {
    member { id role }
    userErrors { field code message }
  }
}
"""

OWNERSHIP_TRANSFER = """
mutation Transfer($input: MerchantOwnershipTransferInput!) {
  merchantOwnershipTransfer(input: $input) {
    previousOwner { id role }
    newOwner { id role }
    userErrors { field code message }
  }
}
"""

MEMBERS = "{ merchant { members(first: 100) { nodes { id role } } } }"

CHANNEL_UPDATES = 50
WEBHOOK_SECRET_ISSUES = 20
MAX_ACTIVE_WEBHOOK_SECRETS = 2
ROLE_CHANGES = 20
RACES = 3  # merchants racing at once
API_SECRETS = 10  # issued (and cached by both servers) before, deleted in the race
USES_AFTER_ACKNOWLEDGEMENT = 4  # per secret, alternating A and B
MAX_USES = 400  # per secret: a loop that never sees its delete acknowledged is stuck

SERVER_ENV = {
    "WEBHOOK_WORKER": "off",
    # Up to 32 requests at once on each server's 20 connections: the rest wait for one. A
    # deadline for a stuck pool on a loaded machine, not a performance assertion.
    "DB_POOL_TIMEOUT_SECONDS": "60",
}


@pytest.fixture(scope="module")
def two_servers(pg_server: PostgresServer) -> Iterator[TwoServers]:
    with running_two_servers(pg_server, SERVER_ENV, prefix="concurrency") as servers:
        yield servers


@pytest.fixture
async def a(two_servers: TwoServers) -> AsyncIterator[Api]:
    async with api_of(two_servers.a) as api:
        yield api


@pytest.fixture
async def b(two_servers: TwoServers) -> AsyncIterator[Api]:
    async with api_of(two_servers.b) as api:
        yield api


def answered(result: GraphQLResponse, mutation: str) -> dict[str, Any]:
    """The payload of `mutation`: answered with 200 and no top-level error (no INTERNAL)."""
    assert result.status == 200, result.body
    assert result.body.get("errors") is None, result.body
    payload: dict[str, Any] = result.data[mutation]
    return payload


def codes(payload: dict[str, Any]) -> list[str]:
    return [error["code"] for error in payload["userErrors"]]


# --- optimistic concurrency -----------------------------------------------------------------


async def test_of_50_updates_from_one_version_through_both_servers_exactly_one_wins(
    a: Api, b: Api, two_servers: TwoServers
) -> None:
    # given: a channel at version 1
    owner = (await seed_merchant(two_servers.database_url, roles=(), stores=())).owner
    created = await a.gql(
        CHANNEL_CREATE,
        {"input": kcp_shared_test_input(owner.representative_store_id)},
        token=owner.token,
    )
    channel = answered(created, "channelCreate")["channel"]
    assert channel["version"] == 1

    # when: 50 updates, all from version 1, half through A and half through B, at once
    line = StartingLine(CHANNEL_UPDATES)
    results = await asyncio.gather(
        *(
            line.send(
                (a, b)[n % 2],
                CHANNEL_UPDATE,
                {"input": {"id": channel["id"], "version": 1, "name": f"Renamed {n}"}},
                token=owner.token,
            )
            for n in range(CHANNEL_UPDATES)
        )
    )

    # then: every one is answered; exactly one wins, the other 49 are told the version is stale
    payloads = [answered(result, "channelUpdate") for result in results]
    winners = [p["channel"] for p in payloads if p["userErrors"] == []]
    losers = [p for p in payloads if p["userErrors"] != []]
    assert len(winners) == 1, [w["name"] for w in winners]
    assert winners[0]["version"] == 2
    assert [[(e["code"], e["field"]) for e in p["userErrors"]] for p in losers] == [
        [("VERSION_CONFLICT", ["input", "version"])]
    ] * (CHANNEL_UPDATES - 1)
    assert all(p["channel"] is None for p in losers)
    # and: both servers read the winner's change at version 2
    for api in (a, b):
        current = (await api.gql(NODE, {"id": channel["id"]}, token=owner.token)).data["node"]
        assert (current["version"], current["name"]) == (2, winners[0]["name"])


# --- webhook signing secrets ----------------------------------------------------------------


async def test_of_20_webhook_secrets_issued_at_once_at_most_2_become_active(
    a: Api, b: Api, two_servers: TwoServers
) -> None:
    # given: a store without webhook signing secrets
    owner = (await seed_merchant(two_servers.database_url, roles=(), stores=())).owner
    store_id = owner.representative_store_id

    # when: 20 issues for its TEST mode, half through A and half through B, at once
    line = StartingLine(WEBHOOK_SECRET_ISSUES)
    results = await asyncio.gather(
        *(
            line.send(
                (a, b)[n % 2],
                WEBHOOK_SECRET_ISSUE,
                {"input": {"storeId": store_id, "mode": "TEST"}},
                token=owner.token,
            )
            for n in range(WEBHOOK_SECRET_ISSUES)
        )
    )

    # then: every one is answered; the 2 free slots are filled, the other 18 are refused
    payloads = [answered(result, "webhookSecretIssue") for result in results]
    issued = [p for p in payloads if p["userErrors"] == []]
    refused = [p for p in payloads if p["userErrors"] != []]
    assert len(issued) == MAX_ACTIVE_WEBHOOK_SECRETS
    assert [codes(p) for p in refused] == [["WEBHOOK_SECRET_LIMIT"]] * (
        WEBHOOK_SECRET_ISSUES - MAX_ACTIVE_WEBHOOK_SECRETS
    )
    assert all(p["secret"] is None and p["webhookSecret"] is None for p in refused)
    # and: both servers, and the database, show exactly those 2 active
    issued_ids = sorted(p["webhookSecret"]["id"] for p in issued)
    for api in (a, b):
        setting = await read_setting(api, owner.token, store_id)
        active = [s["id"] for s in setting["secrets"] if s["expiredAt"] is None]
        assert sorted(active) == issued_ids
    async with connect(two_servers.database_url) as conn:
        stored = await conn.execute(
            text(
                "SELECT count(*) FROM webhook_secrets JOIN stores ON stores.id = store_pk"
                " WHERE stores.store_id = :store_id AND mode = 'TEST' AND expired_at IS NULL"
            ),
            {"store_id": store_id},
        )
        assert stored.scalar_one() == MAX_ACTIVE_WEBHOOK_SECRETS


# --- one owner ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    """A merchant for the ownership race: the owner (and its member id), the ADMIN it hands
    ownership to, two ADMINs who change roles (and are never changed), and four members."""

    seeded: Seeded
    owner_id: str
    heir: Joined
    admins: tuple[Joined, Joined]
    others: tuple[Joined, ...]

    @property
    def owner(self) -> SignedUp:
        return self.seeded.owner

    @property
    def reader(self) -> str:
        """A token that stays a member's whatever the race does: to read the outcome."""
        return self.admins[1].token


async def cast_for_the_transfer(database_url: str, api: Api) -> Cast:
    seeded = await seed_merchant(database_url, roles=("ADMIN",), stores=())
    admins = (
        await add_member(database_url, seeded, "ADMIN"),
        await add_member(database_url, seeded, "ADMIN"),
    )
    others = [await add_member(database_url, seeded, role) for role in ("MANAGER", "READ_ONLY") * 2]
    owner_id = await owner_member_id(api, admins[1].token)
    return Cast(seeded, owner_id, seeded.members["ADMIN"], admins, tuple(others))


async def owner_member_id(api: Api, token: str) -> str:
    """The member id of the merchant's one OWNER, as `api` lists the members."""
    members = (await api.gql(MEMBERS, token=token)).data["merchant"]["members"]["nodes"]
    owners = [str(member["id"]) for member in members if member["role"] == "OWNER"]
    assert len(owners) == 1, members
    return owners[0]


def role_changes(cast: Cast) -> list[tuple[str, str, str]]:
    """20 (actor's token, member id, new role), never to ADMIN or OWNER: 10 demotions of the
    heir by the owner and the ADMINs (the race that could leave no owner, or make a member just
    demoted the owner), 4 of the owner by the ADMINs (refused while it is the owner, allowed
    once it is an ADMIN), and 6 changes of the other members."""
    actors = itertools.cycle([cast.owner.token, cast.admins[0].token, cast.admins[1].token])
    roles = itertools.cycle(["MANAGER", "READ_ONLY"])
    changes = [(next(actors), cast.heir.member_id, next(roles)) for _ in range(10)]
    changes += [(admin.token, cast.owner_id, "MANAGER") for admin in cast.admins * 2]
    others = itertools.cycle(cast.others)
    changes += [(next(actors), next(others).member_id, next(roles)) for _ in range(6)]
    assert len(changes) == ROLE_CHANGES
    return changes


@dataclass(frozen=True)
class Race:
    """One merchant's race as answered: the transfer's payload, and (member id, payload) of
    each role change."""

    transfer: dict[str, Any]
    changes: list[tuple[str, dict[str, Any]]]

    def of(self, member_id: str) -> list[list[str]]:
        """The user error codes of the role changes of `member_id`."""
        return [codes(payload) for member, payload in self.changes if member == member_id]


async def race(cast: Cast, line: StartingLine, first: Api, second: Api) -> Race:
    """The transfer through `first`, the 20 role changes alternately through `second` and
    `first`, all released with `line`; every one answered without a top-level error."""
    changes = role_changes(cast)
    transfer, *updates = await asyncio.gather(
        line.send(
            first,
            OWNERSHIP_TRANSFER,
            {"input": {"memberId": cast.heir.member_id}},
            token=cast.owner.token,
        ),
        *(
            line.send(
                (second, first)[n % 2],
                MEMBER_ROLE_UPDATE,
                {"input": {"memberId": member, "role": role}},
                token=token,
            )
            for n, (token, member, role) in enumerate(changes)
        ),
    )
    return Race(
        answered(transfer, "merchantOwnershipTransfer"),
        [
            (member, answered(update, "memberRoleUpdate"))
            for (_, member, _), update in zip(changes, updates, strict=True)
        ],
    )


async def test_role_changes_racing_an_ownership_transfer_leave_exactly_one_owner(
    a: Api, b: Api, two_servers: TwoServers
) -> None:
    # given: merchants each with an owner, the ADMIN it hands ownership to, two other ADMINs
    # and four members (several at once: which order one race takes is up to chance)
    casts = [await cast_for_the_transfer(two_servers.database_url, a) for _ in range(RACES)]

    # when: in each, the transfer and 20 role changes, half through A and half through B, all
    # released at once
    line = StartingLine(RACES * (1 + ROLE_CHANGES))
    races = await asyncio.gather(
        *(race(cast, line, *((a, b), (b, a))[n % 2]) for n, cast in enumerate(casts))
    )

    for cast, result in zip(casts, races, strict=True):
        # then: every request was answered, with success or a user error saying why not
        assert codes(result.transfer) in ([], ["ROLE_NOT_ALLOWED"]), result.transfer
        assert {tuple(codes(p)) for _, p in result.changes} <= {
            (),
            ("OWNER_REQUIRED",),
            ("ROLE_NOT_ALLOWED",),
        }, result.changes
        # and: exactly one owner, as the database and both servers see it
        async with connect(two_servers.database_url) as conn:
            owners = await conn.execute(
                text(
                    "SELECT count(*) FROM users WHERE merchant_id = :merchant"
                    " AND role = 'OWNER' AND removed_at IS NULL"
                ),
                {"merchant": cast.seeded.merchant_pk},
            )
            assert owners.scalar_one() == 1
        owner = await owner_member_id(a, cast.reader)
        assert await owner_member_id(b, cast.reader) == owner
        # and: the outcome is that of the requests one after another (none changes a role
        # read before another committed): either the transfer came first, and the heir, now
        # the owner, could not be demoted, or a demotion of the heir came first, and the
        # transfer was refused
        if result.transfer["userErrors"] == []:
            assert owner == cast.heir.member_id
            assert result.of(cast.heir.member_id) == [["OWNER_REQUIRED"]] * 10, result.changes
        else:
            assert owner == cast.owner_id
            assert result.of(cast.heir.member_id) == [[]] * 10, result.changes
            assert result.of(cast.owner_id) == [["OWNER_REQUIRED"]] * 4, result.changes


# --- API secrets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    """One use of a secret: when it was sent and answered (time.monotonic, for ordering),
    through which server, and the outcome: "accepted", "REVOKED", or what else came back."""

    started: float
    finished: float
    server: str
    outcome: str


@dataclass
class SecretLife:
    """One API secret in the race: its uses, and when its delete was sent and acknowledged."""

    secret: str
    id: str
    uses: list[Use] = field(default_factory=list)
    delete_sent: float = float("inf")
    delete_acknowledged: float = float("inf")
    cached_by_both: asyncio.Event = field(default_factory=asyncio.Event)

    def uses_after_acknowledgement(self) -> list[Use]:
        return [use for use in self.uses if use.started > self.delete_acknowledged]

    def uses_before_delete(self) -> list[Use]:
        return [use for use in self.uses if use.finished < self.delete_sent]


def outcome(result: GraphQLResponse, secret: str) -> str:
    """ "accepted", the reason of a refusal (which never echoes the secret), or the answer."""
    if result.status == 200 and result.body.get("errors") is None:
        assert result.body["data"]["viewer"]["merchant"]["name"], result.body
        return "accepted"
    if result.status == 401:
        assert_refused(result, None, secret)
        return str(result.body["errors"][0]["extensions"]["reason"])
    return f"{result.status}: {result.body}"


async def keep_using(life: SecretLife, servers: dict[str, Api]) -> None:
    """Use the secret through A and B in turn until USES_AFTER_ACKNOWLEDGEMENT uses have
    started after its delete was acknowledged; `cached_by_both` once both servers accepted it
    twice (the second time from their memory of verified secrets)."""
    try:
        for n in range(MAX_USES):
            if len(life.uses_after_acknowledgement()) >= USES_AFTER_ACKNOWLEDGEMENT:
                return
            server = "AB"[n % 2]
            started = time.monotonic()
            result = await servers[server].gql(WHO_AM_I, authorization=portone(life.secret))
            life.uses.append(Use(started, time.monotonic(), server, outcome(result, life.secret)))
            accepted = [use.server for use in life.uses if use.outcome == "accepted"]
            if min(accepted.count("A"), accepted.count("B")) >= 2:
                life.cached_by_both.set()
    finally:
        life.cached_by_both.set()  # never leave the deleter waiting: the checks will tell


async def delete_secret(api: Api, token: str, life: SecretLife, line: StartingLine | None) -> None:
    """Delete it (released with `line`'s others, if given), noting when it was sent and when
    the acknowledgement came back."""
    variables = {"id": life.id}
    life.delete_sent = time.monotonic()
    if line is None:
        result = await api.gql(API_SECRET_DELETE, variables, token=token)
    else:
        result = await line.send(api, API_SECRET_DELETE, variables, token=token)
    payload = answered(result, "apiSecretDelete")
    assert payload == {"deletedApiSecretId": life.id, "userErrors": []}, payload
    life.delete_acknowledged = time.monotonic()


async def test_no_deleted_api_secret_is_accepted_after_its_delete_was_acknowledged(
    a: Api, b: Api, two_servers: TwoServers
) -> None:
    # given: 10 API secrets of a store, each used twice through A and twice through B (each
    # server verified each once with argon2 and answered the second use from its memory)
    owner = (await seed_merchant(two_servers.database_url, roles=(), stores=())).owner
    servers = {"A": a, "B": b}

    async def issue(api: Api, name: str, line: StartingLine | None = None) -> SecretLife:
        variables = {"input": {"storeId": owner.representative_store_id, "name": name}}
        result = await (
            line.send(api, API_SECRET_ISSUE, variables, token=owner.token)
            if line is not None
            else api.gql(API_SECRET_ISSUE, variables, token=owner.token)
        )
        payload = answered(result, "apiSecretIssue")
        assert payload["userErrors"] == [], payload
        return SecretLife(payload["secret"], payload["apiSecret"]["id"])

    verified_before = {name: await verifications(api, "ok") for name, api in servers.items()}
    cached = [await issue(a, f"Cached {n}") for n in range(API_SECRETS)]
    for life in cached:
        for server in "ABAB":
            result = await servers[server].gql(WHO_AM_I, authorization=portone(life.secret))
            assert outcome(result, life.secret) == "accepted"
    for name, api in servers.items():
        assert await verifications(api, "ok") == verified_before[name] + API_SECRETS

    # when: at once, half through A and half through B, 10 new secrets are issued and the 10
    # cached ones deleted, while every secret is used through both servers in turn; each new
    # one, once both servers have accepted it twice, is deleted too
    line = StartingLine(2 * API_SECRETS)
    issued: list[SecretLife] = []

    async def cached_life(n: int, life: SecretLife) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(keep_using(life, servers))
            group.create_task(delete_secret((a, b)[n % 2], owner.token, life, line))

    async def new_life(n: int) -> None:
        life = await issue((b, a)[n % 2], f"Racing {n}", line)
        issued.append(life)

        async def delete_once_cached() -> None:
            await life.cached_by_both.wait()
            await delete_secret((a, b)[n % 2], owner.token, life, None)

        async with asyncio.TaskGroup() as group:
            group.create_task(keep_using(life, servers))
            group.create_task(delete_once_cached())

    async with asyncio.TaskGroup() as group:
        for n, life in enumerate(cached):
            group.create_task(cached_life(n, life))
        for n in range(API_SECRETS):
            group.create_task(new_life(n))

    # then: every use was answered, accepted or refused as REVOKED (no 5xx, no INTERNAL)
    lives = cached + issued
    assert len(issued) == API_SECRETS
    for life in lives:
        assert {use.outcome for use in life.uses} <= {"accepted", "REVOKED"}, life.uses
        # and: every use sent after the delete was acknowledged was refused, by both servers
        after = life.uses_after_acknowledgement()
        assert len(after) >= USES_AFTER_ACKNOWLEDGEMENT, life.uses
        assert {use.server for use in after} == {"A", "B"}
        assert [use.outcome for use in after] == ["REVOKED"] * len(after), life.uses
        # and: every use answered before the delete was sent was accepted
        assert {use.outcome for use in life.uses_before_delete()} <= {"accepted"}, life.uses
    # and: each new secret worked through both servers before its delete
    for life in issued:
        accepted = [use.server for use in life.uses_before_delete()]
        assert min(accepted.count("A"), accepted.count("B")) >= 2, life.uses
