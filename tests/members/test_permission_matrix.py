"""Every operation, as every role and as an anonymous caller, against the permission matrix.

The expected matrix below is copied from the issue, not from the code; the code's matrix must
equal it, and every Query and Mutation field of the schema must have a case here, so a new
operation without a row fails this test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.types import utcnow
from gql_api.ids import global_id
from gql_api.permissions import MATRIX, Operation
from gql_api.schema import build_schema
from gql_api.settings import Settings
from gql_api.webhooks import outbox
from gql_api.webhooks.events import check_event
from tests.conftest import make_settings
from tests.factories import Database, Seeded, add_member, seed_merchant
from tests.support import (
    ACCEPT,
    INVITE,
    PASSWORD,
    Api,
    GraphQLResponse,
    Joined,
    create_store,
)

ROLES = [
    "OWNER",
    "ADMIN",
    "MANAGER",
    "DEVELOPER",
    "READ_ONLY",
    "STORE_MANAGER",
    "STORE_READ_ONLY",
]
COLUMNS = [*ROLES, "API_SECRET"]

# all = anywhere in the merchant; own = the caller's own sub-store / store(s); no = FORBIDDEN
EXPECTED_MATRIX = {
    "read": "all all all all all own own own",
    "member_read": "all all all all all own own no",
    "store_manage": "all all no no no no no no",
    "member_manage": "all all all no no own no no",
    "audit_read": "all all no no no no no no",
    "ownership_transfer": "all no no no no no no no",
    "channel_manage": "all all no all no own no own",
    "api_secret_manage": "all all no no no no no no",
    "webhook_manage": "all all no all no own no own",
    "own_account": "all all all all all all all no",
}


def test_code_matrix_is_the_issue_matrix() -> None:
    actual = {
        operation.value: " ".join(MATRIX[operation][column].value for column in COLUMNS)
        for operation in Operation
    }
    expected = {
        name: row.replace("own", "own_store").replace("no", "none")
        for name, row in EXPECTED_MATRIX.items()
    }
    assert actual == expected


SECRET_ISSUE = """mutation($i: ApiSecretIssueInput!) { apiSecretIssue(input: $i) {
    secret apiSecret { id } userErrors { code } } }"""


@dataclass
class World:
    api: Api
    tokens: dict[str, str]
    emails: dict[str, str]
    members: dict[str, Joined]
    sub_store: str  # the STORE_* roles are bound to this one
    other_sub_store: str
    representative_store: str
    database: Database
    seeded: Seeded
    created: list[str] = field(default_factory=list)

    async def fresh_sub_store(self) -> str:
        store_id, _ = await create_store(
            self.api, self.tokens["OWNER"], f"Target {len(self.created)}"
        )
        self.created.append(store_id)
        return store_id

    async def fresh_store_member(self) -> Joined:
        """A STORE_READ_ONLY member of the sub-store: something every manager may act on."""
        return await self.fresh_member("STORE_READ_ONLY", self.sub_store)

    async def fresh_member(self, role: str, store_id: str | None = None) -> Joined:
        return await add_member(self.database, self.seeded, role, store_id)


async def build_world(api: Api, database: Database) -> World:
    # the merchant, its stores and members are rows (tests.factories): this test is about
    # what each role may do, not about signing up or joining (tests of their own)
    seeded = await seed_merchant(database, roles=ROLES[1:], stores=("Sub store", "Other sub store"))
    owner = seeded.owner
    sub_store, other = seeded.stores["Sub store"], seeded.stores["Other sub store"]
    tokens = {"OWNER": owner.token}
    emails = {"OWNER": owner.email}
    members: dict[str, Joined] = dict(seeded.members)
    for role in ROLES[1:]:
        tokens[role] = members[role].token
        emails[role] = members[role].email
    issued = await api.gql(
        SECRET_ISSUE, {"i": {"storeId": sub_store, "name": "Partner"}}, token=owner.token
    )
    tokens["API_SECRET"] = f"PortOne {issued.data['apiSecretIssue']['secret']}"
    return World(
        api,
        tokens,
        emails,
        members,
        sub_store,
        other,
        owner.representative_store_id,
        database,
        seeded,
    )


Runner = Callable[[World, str | None, str | None], Awaitable[GraphQLResponse]]


@dataclass(frozen=True)
class Case:
    operation: str | None  # a row of the matrix; None = public
    run: Runner  # (world, caller token, caller role) -> response
    payload: str | None = None  # mutation payload field whose userErrors must be empty
    anonymous: str = "UNAUTHENTICATED"  # a field under `viewer` is out of reach: "allowed"


async def _gql(
    world: World, credential: str | None, query: str, variables: dict[str, object]
) -> GraphQLResponse:
    """As a console user (a session token) or a partner integration (PortOne <secret>)."""
    if credential is not None and credential.startswith("PortOne "):
        return await world.api.gql(query, variables, authorization=credential)
    return await world.api.gql(query, variables, token=credential)


async def _q(world: World, token: str | None, query: str, **variables: object) -> GraphQLResponse:
    return await _gql(world, token, query, dict(variables))


def _bound_to_sub_store(role: str | None) -> bool:
    return role is not None and (role.startswith("STORE_") or role == "API_SECRET")


def _target_store(world: World, role: str | None) -> str:
    return world.sub_store if _bound_to_sub_store(role) else world.representative_store


async def run_node(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    member_id = world.members["STORE_READ_ONLY"].member_id
    return await _q(world, token, "query($id: ID!) { node(id: $id) { id } }", id=member_id)


async def run_viewer(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    return await _q(world, token, "{ viewer { role } }")


async def run_merchant(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    return await _q(world, token, "{ merchant { name stores { nodes { storeId } } } }")


async def run_store(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    query = "query($s: String!) { store(storeId: $s) { name } }"
    return await _q(world, token, query, s=_target_store(world, role))


async def run_members(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    return await _q(world, token, "{ merchant { members { nodes { role } } } }")


async def run_invitations(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    await _owner_invitation(world)
    return await _q(world, token, "{ merchant { invitations { totalCount nodes { status } } } }")


async def run_viewer_sessions(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    # anonymous: viewer is null, its sessions out of reach (no error)
    return await _q(world, token, "{ viewer { sessions { totalCount nodes { current } } } }")


async def run_store_channel_groups(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    query = "query($s: String!) { store(storeId: $s) { channelGroups { totalCount } } }"
    return await _q(world, token, query, s=_target_store(world, role))


async def run_secret_network_rules(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    query = """query($s: String!) { store(storeId: $s) {
        apiSecrets { nodes { networkRules { cidr memo } } } } }"""
    return await _q(world, token, query, s=_target_store(world, role))


async def run_audit(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    return await _q(world, token, "{ merchant { auditEvents(first: 5) { nodes { action } } } }")


async def run_sign_up(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    query = """mutation($i: MerchantSignUpInput!) { merchantSignUp(input: $i) {
        userErrors { code } } }"""
    n = len(world.created)
    world.created.append("signup")
    email = f"signup{n}-{role or 'anon'}@example.com"
    payload = {"merchantName": "Another", "email": email, "password": PASSWORD, "name": "N"}
    return await world.api.gql(query, {"i": payload})


async def run_session_create(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    query = """mutation($i: SessionCreateInput!) { sessionCreate(input: $i) {
        userErrors { code } } }"""
    email = world.members["READ_ONLY"].email
    return await world.api.gql(query, {"i": {"email": email, "password": PASSWORD}})


async def run_session_revoke(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    query = "mutation { sessionRevoke { revoked userErrors { code } } }"
    if role is None or role == "API_SECRET":
        return await _q(world, token, query)
    # log the same person in a second time and revoke that session, so the world keeps working
    login = await world.api.gql(
        "mutation($i: SessionCreateInput!) { sessionCreate(input: $i) { session { token } } }",
        {"i": {"email": world.emails[role], "password": PASSWORD}},
    )
    return await _q(world, login.data["sessionCreate"]["session"]["token"], query)


async def run_store_create(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    query = """mutation($n: String!) { storeCreate(input: {name: $n}) { userErrors { code } } }"""
    world.created.append("create")
    return await _q(world, token, query, n=f"Created {len(world.created)}")


async def run_store_update(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    query = """mutation($s: String!, $n: String!) {
        storeUpdate(input: {storeId: $s, name: $n}) { userErrors { code } } }"""
    world.created.append("rename")
    return await _q(world, token, query, s=world.other_sub_store, n=f"Renamed {len(world.created)}")


async def run_store_delete(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    query = (
        """mutation($s: String!) { storeDelete(input: {storeId: $s}) { userErrors { code } } }"""
    )
    return await _q(world, token, query, s=await world.fresh_sub_store())


async def run_member_invite(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    world.created.append("invite")
    invite = {
        "email": f"invitee{len(world.created)}@example.com",
        "role": "STORE_READ_ONLY",
        "storeId": world.sub_store,
    }
    return await _gql(world, token, INVITE, {"input": invite})


async def run_invitation_accept(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    world.created.append("accept")
    invite = {"email": f"accepts{len(world.created)}@example.com", "role": "READ_ONLY"}
    issued = await world.api.gql(INVITE, {"input": invite}, token=world.tokens["OWNER"])
    invitation_token = issued.data["memberInvite"]["invitationToken"]
    accept = {"token": invitation_token, "name": "New", "password": PASSWORD}
    return await world.api.gql(ACCEPT, {"input": accept})


async def _owner_invitation(world: World) -> str:
    """A pending STORE_READ_ONLY invitation to the sub-store, sent by the owner: one every
    member manager may manage (a STORE_MANAGER too: its own sub-store, a role it may grant)."""
    world.created.append("invitation")
    invite = {
        "email": f"managed{len(world.created)}@example.com",
        "role": "STORE_READ_ONLY",
        "storeId": world.sub_store,
    }
    issued = await world.api.gql(INVITE, {"input": invite}, token=world.tokens["OWNER"])
    return str(issued.data["memberInvite"]["invitation"]["id"])


async def run_invitation_revoke(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    query = """mutation($id: ID!) { invitationRevoke(input: {id: $id}) {
        invitation { status } userErrors { code } } }"""
    return await _q(world, token, query, id=await _owner_invitation(world))


async def run_invitation_resend(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    query = """mutation($id: ID!) { invitationResend(input: {id: $id}) {
        invitationToken userErrors { code } } }"""
    return await _q(world, token, query, id=await _owner_invitation(world))


async def run_session_revoke_all(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    # every session but the caller's current one: the world's tokens keep working
    query = "mutation { sessionRevokeAll { revokedCount userErrors { code } } }"
    return await _q(world, token, query)


async def run_password_change(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    query = """mutation($i: PasswordChangeInput!) { passwordChange(input: $i) {
        revokedSessionCount userErrors { code } } }"""
    change = {"currentPassword": PASSWORD, "newPassword": "another horse battery"}
    return await _q(world, token, query, i=change)


async def run_member_sessions_revoke(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    target = await world.fresh_store_member()
    query = """mutation($m: ID!) { memberSessionsRevoke(input: {memberId: $m}) {
        revokedCount userErrors { code } } }"""
    return await _q(world, token, query, m=target.member_id)


async def run_member_role_update(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    target = await world.fresh_store_member()
    # STORE_READ_ONLY: a role every member manager may grant (a MANAGER may not make a
    # STORE_MANAGER: that role may edit channels, which a MANAGER may not).
    query = """mutation($m: ID!, $s: String!) { memberRoleUpdate(input:
        {memberId: $m, role: STORE_READ_ONLY, storeId: $s}) { userErrors { code } } }"""
    return await _q(world, token, query, m=target.member_id, s=world.sub_store)


async def run_member_remove(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    target = await world.fresh_store_member()
    query = """mutation($m: ID!) { memberRemove(input: {memberId: $m}) { userErrors { code } } }"""
    return await _q(world, token, query, m=target.member_id)


async def run_ownership_transfer(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    query = """mutation($m: ID!) { merchantOwnershipTransfer(input: {memberId: $m}) {
        userErrors { code } } }"""
    target = await world.fresh_member("ADMIN")
    return await _q(world, token, query, m=target.member_id)


CHANNEL_CREATE = """mutation($i: ChannelCreateInput!) { channelCreate(input: $i) {
    channel { id version } userErrors { code } } }"""


def _channel_input(world: World, store_id: str) -> dict[str, object]:
    world.created.append("channel")
    return {
        "storeId": store_id,
        "mode": "TEST",
        "pgProvider": "KCP_V2",
        "moduleCode": "KCP_V2_PAYMENT",
        "name": f"KCP test {len(world.created)}",
        "pgMerchantId": "T0000",
    }


async def _owner_channel(world: World, role: str | None) -> str:
    """A channel, made by the owner, in the store the role may manage."""
    created = await world.api.gql(
        CHANNEL_CREATE,
        {"i": _channel_input(world, _target_store(world, role))},
        token=world.tokens["OWNER"],
    )
    return str(created.data["channelCreate"]["channel"]["id"])


async def run_pg_providers(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    return await _q(world, token, "{ pgProviders { provider modules { code } } }")


async def run_channel_create(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    store_id = _target_store(world, role)
    return await _gql(world, token, CHANNEL_CREATE, {"i": _channel_input(world, store_id)})


async def run_channel_update(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    channel_id = await _owner_channel(world, role)
    query = """mutation($id: ID!) { channelUpdate(input: {id: $id, version: 1, taxType: TAXABLE}) {
        userErrors { code } } }"""
    return await _q(world, token, query, id=channel_id)


async def run_channel_delete(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    channel_id = await _owner_channel(world, role)
    query = """mutation($id: ID!) { channelDelete(input: {id: $id}) { userErrors { code } } }"""
    return await _q(world, token, query, id=channel_id)


GROUP_CREATE = """mutation($i: ChannelGroupCreateInput!) { channelGroupCreate(input: $i) {
    channelGroup { id channelGroupId } userErrors { code } } }"""


def _group_input(world: World, store_id: str, channel_id: str) -> dict[str, object]:
    world.created.append("group")
    return {
        "storeId": store_id,
        "mode": "TEST",
        "name": f"Group {len(world.created)}",
        "entries": [{"channelId": channel_id, "weight": 100}],
    }


def _next_day_on_the_hour() -> str:
    later = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    return later.isoformat()


async def _owner_group(
    world: World, role: str | None, *, scheduled: bool = False
) -> dict[str, str]:
    """A channel group (with a scheduled change if asked), made by the owner, in the store
    the role may manage."""
    channel_id = await _owner_channel(world, role)
    created = await world.api.gql(
        GROUP_CREATE,
        {"i": _group_input(world, _target_store(world, role), channel_id)},
        token=world.tokens["OWNER"],
    )
    group: dict[str, str] = created.data["channelGroupCreate"]["channelGroup"]
    if scheduled:
        update = """mutation($i: ChannelGroupUpdateInput!) { channelGroupUpdate(input: $i) {
            userErrors { code } } }"""
        entries = [{"channelId": channel_id, "weight": 100}]
        changed = await world.api.gql(
            update,
            {"i": {"id": group["id"], "entries": entries, "beginAt": _next_day_on_the_hour()}},
            token=world.tokens["OWNER"],
        )
        assert changed.data["channelGroupUpdate"]["userErrors"] == []
    return group


async def run_group_create(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    channel_id = await _owner_channel(world, role)
    variables: dict[str, object] = {
        "i": _group_input(world, _target_store(world, role), channel_id)
    }
    return await _gql(world, token, GROUP_CREATE, variables)


async def run_group_update(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    group = await _owner_group(world, role)
    query = """mutation($id: ID!, $name: String!) {
        channelGroupUpdate(input: {id: $id, name: $name}) { userErrors { code } } }"""
    return await _q(world, token, query, id=group["id"], name=f"Renamed {len(world.created)}")


async def run_group_schedule_delete(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    group = await _owner_group(world, role, scheduled=True)
    query = """mutation($id: ID!) { channelGroupScheduledSessionDelete(input: {id: $id}) {
        userErrors { code } } }"""
    return await _q(world, token, query, id=group["id"])


async def run_group_delete(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    group = await _owner_group(world, role)
    query = (
        """mutation($id: ID!) { channelGroupDelete(input: {id: $id}) { userErrors { code } } }"""
    )
    return await _q(world, token, query, id=group["id"])


async def run_group_pick(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    group = await _owner_group(world, role)
    query = """query($g: String!) { channelGroupPick(channelGroupId: $g) { id } }"""
    response = await _q(world, token, query, g=group["channelGroupId"])
    if not response.error_codes:  # every reader of the store is answered with the channel
        assert response.body["data"]["channelGroupPick"] is not None
    return response


async def _owner_secret(world: World, role: str | None) -> dict[str, str]:
    issued = await world.api.gql(
        SECRET_ISSUE,
        {"i": {"storeId": _target_store(world, role), "name": "Target"}},
        token=world.tokens["OWNER"],
    )
    payload = issued.data["apiSecretIssue"]
    return {"id": payload["apiSecret"]["id"], "secret": payload["secret"]}


async def run_secret_issue(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    variables = {
        "i": {"storeId": _target_store(world, role), "name": "Issued", "expirationDays": 30}
    }
    return await _gql(world, token, SECRET_ISSUE, variables)


async def run_secret_delete(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    target = await _owner_secret(world, role)
    query = """mutation($id: ID!) { apiSecretDelete(input: {id: $id}) { userErrors { code } } }"""
    return await _q(world, token, query, id=target["id"])


async def run_secret_network_rules_update(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    target = await _owner_secret(world, role)
    query = """mutation($i: ApiSecretNetworkRulesUpdateInput!) {
        apiSecretNetworkRulesUpdate(input: $i) { apiSecret { id } userErrors { code } } }"""
    rules = [{"cidr": "127.0.0.0/8", "memo": "the world's own clients"}]
    return await _q(world, token, query, i={"id": target["id"], "rules": rules})


LOGIN = """mutation($s: String!) { apiSecretLogin(input: {apiSecret: $s}) {
    refreshToken userErrors { code } } }"""


async def run_secret_login(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    target = await _owner_secret(world, role)
    return await _q(world, token, LOGIN, s=target["secret"])


async def run_token_refresh(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    target = await _owner_secret(world, role)
    login = await _q(world, None, LOGIN, s=target["secret"])
    query = """mutation($r: String!) { accessTokenRefresh(input: {refreshToken: $r}) {
        accessToken userErrors { code } } }"""
    return await _q(world, token, query, r=login.data["apiSecretLogin"]["refreshToken"])


@pytest.fixture
def settings(database_url: str) -> Settings:
    # webhook test calls go to a closed port on loopback, never off this machine
    return make_settings(database_url, webhook_allowed_networks=["127.0.0.0/8"])


CLOSED_PORT_URL = "http://127.0.0.1:9/matrix"
SETTING_UPDATE = """mutation($i: WebhookSettingUpdateInput!) { webhookSettingUpdate(input: $i) {
    webhookSetting { url } userErrors { code } } }"""
WEBHOOK_SECRET_ISSUE = """mutation($s: String!) {
    webhookSecretIssue(input: {storeId: $s, mode: TEST}) {
    webhookSecret { id } userErrors { code } } }"""


async def run_setting_update(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    setting = {
        "storeId": _target_store(world, role),
        "moduleVersion": "V2",
        "mode": "TEST",
        "url": CLOSED_PORT_URL,
    }
    return await _gql(world, token, SETTING_UPDATE, {"i": setting})


async def run_webhook_secret_issue(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    store_id = await world.fresh_sub_store() if not _bound_to_sub_store(role) else None
    return await _q(world, token, WEBHOOK_SECRET_ISSUE, s=store_id or world.sub_store)


async def run_webhook_secret_expire(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    if _bound_to_sub_store(role):
        store_id = world.sub_store
        # keep room for the next issue: expire the secrets of the sub-store made before
        secrets = await _q(world, world.tokens["OWNER"], SUB_STORE_SECRETS, s=store_id)
        store = secrets.data["store"]
        for secret in store["webhookSetting"]["secrets"] if store else []:
            if secret["expiredAt"] is None:
                await _q(world, world.tokens["OWNER"], EXPIRE, id=secret["id"])
    else:
        store_id = await world.fresh_sub_store()
    issued = await _q(world, world.tokens["OWNER"], WEBHOOK_SECRET_ISSUE, s=store_id)
    secret_id = issued.data["webhookSecretIssue"]["webhookSecret"]["id"]
    return await _q(world, token, EXPIRE, id=secret_id)


SUB_STORE_SECRETS = """query($s: String!) { store(storeId: $s) {
    webhookSetting(moduleVersion: V2, mode: TEST) { secrets { id expiredAt } } } }"""
EXPIRE = """mutation($id: ID!) { webhookSecretExpire(input: {id: $id}) { userErrors { code } } }"""


async def run_webhook_test(world: World, token: str | None, role: str | None) -> GraphQLResponse:
    setting = {
        "storeId": _target_store(world, role),
        "moduleVersion": "V2",
        "mode": "TEST",
        "url": CLOSED_PORT_URL,
    }
    if _bound_to_sub_store(role):
        # A store-scoped caller may test only its sub-store's own setting, never the
        # representative store's that a sub-store follows by default.
        setting["usesRepresentativeSetting"] = False
    await _gql(world, world.tokens["OWNER"], SETTING_UPDATE, {"i": setting})
    # A V2 test call needs an active signing secret (WEBHOOK_SECRET_NOT_SET otherwise): one is
    # issued for the call and expired after it, leaving room for the secret cases' issues.
    issued = await _q(world, world.tokens["OWNER"], WEBHOOK_SECRET_ISSUE, s=setting["storeId"])
    secret = issued.data["webhookSecretIssue"]["webhookSecret"]  # None: 2 active already
    query = """mutation($s: String!) { webhookTest(input: {storeId: $s, moduleVersion: V2,
        mode: TEST}) { delivery { succeeded error } userErrors { code } } }"""
    result = await _q(world, token, query, s=_target_store(world, role))
    if secret is not None:
        await _q(world, world.tokens["OWNER"], EXPIRE, id=secret["id"])
    return result


async def _event_for(world: World, role: str | None) -> str:
    """A webhook event of the store the role may act on, whose setting sends to a closed port
    (its own setting for a sub-store: store-scoped callers never send to the representative
    store's URL). Published as the platform does, straight into the outbox."""
    store_id = _target_store(world, role)
    setting: dict[str, object] = {
        "storeId": store_id,
        "moduleVersion": "V2",
        "mode": "TEST",
        "url": CLOSED_PORT_URL,
    }
    if _bound_to_sub_store(role):
        setting["usesRepresentativeSetting"] = False
    variables: dict[str, object] = {"i": setting}
    await _gql(world, world.tokens["OWNER"], SETTING_UPDATE, variables)
    world.created.append("event")
    body = {
        "id": f"matrix-event-{len(world.created)}",
        "storeId": store_id,
        "moduleVersion": "V2",
        "mode": "TEST",
        "type": "Transaction.Paid",
        "data": {"paymentId": "payment-1", "transactionId": "transaction-1"},
    }
    assert isinstance(world.database, AsyncEngine)
    async with AsyncSession(world.database, expire_on_commit=False) as db:
        published = await outbox.publish(db=db, event=check_event(body), now=utcnow())
        await db.commit()
    assert published.event.id is not None
    return global_id("WebhookEvent", published.event.id)


async def run_webhook_event_resend(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    event_id = await _event_for(world, role)
    query = """mutation($id: ID!) { webhookEventResend(input: {id: $id}) {
        delivery { trigger } userErrors { code } } }"""
    return await _q(world, token, query, id=event_id)


async def run_webhook_events_resend_failed(
    world: World, token: str | None, role: str | None
) -> GraphQLResponse:
    query = """mutation($s: String!) { webhookEventsResendFailed(input: {storeId: $s}) {
        queuedCount userErrors { code } } }"""
    return await _q(world, token, query, s=_target_store(world, role))


CASES: dict[str, Case] = {
    "Mutation.webhookEventResend": Case(
        "webhook_manage", run_webhook_event_resend, "webhookEventResend"
    ),
    "Mutation.webhookEventsResendFailed": Case(
        "webhook_manage", run_webhook_events_resend_failed, "webhookEventsResendFailed"
    ),
    "Mutation.webhookSettingUpdate": Case(
        "webhook_manage", run_setting_update, "webhookSettingUpdate"
    ),
    "Mutation.webhookSecretIssue": Case(
        "webhook_manage", run_webhook_secret_issue, "webhookSecretIssue"
    ),
    "Mutation.webhookSecretExpire": Case(
        "webhook_manage", run_webhook_secret_expire, "webhookSecretExpire"
    ),
    "Mutation.webhookTest": Case("webhook_manage", run_webhook_test, "webhookTest"),
    "Mutation.apiSecretIssue": Case("api_secret_manage", run_secret_issue, "apiSecretIssue"),
    "Mutation.apiSecretDelete": Case("api_secret_manage", run_secret_delete, "apiSecretDelete"),
    "Mutation.apiSecretNetworkRulesUpdate": Case(
        "api_secret_manage", run_secret_network_rules_update, "apiSecretNetworkRulesUpdate"
    ),
    "Mutation.apiSecretLogin": Case(None, run_secret_login, "apiSecretLogin"),
    "Mutation.accessTokenRefresh": Case(None, run_token_refresh, "accessTokenRefresh"),
    "Query.pgProviders": Case(None, run_pg_providers),
    "Mutation.channelCreate": Case("channel_manage", run_channel_create, "channelCreate"),
    "Mutation.channelUpdate": Case("channel_manage", run_channel_update, "channelUpdate"),
    "Mutation.channelDelete": Case("channel_manage", run_channel_delete, "channelDelete"),
    "Mutation.channelGroupCreate": Case("channel_manage", run_group_create, "channelGroupCreate"),
    "Mutation.channelGroupUpdate": Case("channel_manage", run_group_update, "channelGroupUpdate"),
    "Mutation.channelGroupScheduledSessionDelete": Case(
        "channel_manage", run_group_schedule_delete, "channelGroupScheduledSessionDelete"
    ),
    "Mutation.channelGroupDelete": Case("channel_manage", run_group_delete, "channelGroupDelete"),
    "Query.channelGroupPick": Case("read", run_group_pick),
    "Query.node": Case("read", run_node),
    "Query.viewer": Case(None, run_viewer),
    "Query.merchant": Case("read", run_merchant),
    "Query.store": Case("read", run_store),
    "Merchant.members": Case("member_read", run_members),
    "Merchant.invitations": Case("member_manage", run_invitations),
    "Merchant.auditEvents": Case("audit_read", run_audit),
    "Viewer.sessions": Case("own_account", run_viewer_sessions, anonymous="allowed"),
    "Store.channelGroups": Case("read", run_store_channel_groups),
    "ApiSecret.networkRules": Case("read", run_secret_network_rules),
    "Mutation.merchantSignUp": Case(None, run_sign_up, "merchantSignUp"),
    "Mutation.sessionCreate": Case(None, run_session_create, "sessionCreate"),
    "Mutation.sessionRevoke": Case("read", run_session_revoke),
    "Mutation.sessionRevokeAll": Case("own_account", run_session_revoke_all, "sessionRevokeAll"),
    "Mutation.passwordChange": Case("own_account", run_password_change, "passwordChange"),
    "Mutation.memberSessionsRevoke": Case(
        "member_manage", run_member_sessions_revoke, "memberSessionsRevoke"
    ),
    "Mutation.storeCreate": Case("store_manage", run_store_create, "storeCreate"),
    "Mutation.storeUpdate": Case("store_manage", run_store_update, "storeUpdate"),
    "Mutation.storeDelete": Case("store_manage", run_store_delete, "storeDelete"),
    "Mutation.memberInvite": Case("member_manage", run_member_invite, "memberInvite"),
    "Mutation.invitationAccept": Case(None, run_invitation_accept, "invitationAccept"),
    "Mutation.invitationRevoke": Case("member_manage", run_invitation_revoke, "invitationRevoke"),
    "Mutation.invitationResend": Case("member_manage", run_invitation_resend, "invitationResend"),
    "Mutation.memberRoleUpdate": Case("member_manage", run_member_role_update, "memberRoleUpdate"),
    "Mutation.memberRemove": Case("member_manage", run_member_remove, "memberRemove"),
    "Mutation.merchantOwnershipTransfer": Case(
        "ownership_transfer", run_ownership_transfer, "merchantOwnershipTransfer"
    ),
}


def test_every_operation_has_a_case() -> None:
    schema = build_schema(Settings(introspection_enabled=True))
    graphql_schema = schema._schema
    fields = {
        f"{type_name}.{name}"
        for type_name in ("Query", "Mutation")
        for name in graphql_schema.type_map[type_name].fields  # type: ignore[attr-defined]
    }
    missing = fields - CASES.keys()
    assert not missing, f"operations without a permission case: {sorted(missing)}"


def _expected(case: Case, role: str | None) -> str:
    if case.operation is None:
        return "allowed"
    if role is None:
        return case.anonymous
    cell = EXPECTED_MATRIX[case.operation].split()[COLUMNS.index(role)]
    return "FORBIDDEN" if cell == "no" else "allowed"


def _outcome(response: GraphQLResponse, case: Case) -> str:
    codes = response.error_codes
    if codes:
        return str(codes[0])
    if case.payload is not None:
        payload = response.body["data"][case.payload]
        if payload["userErrors"]:
            return f"userErrors:{payload['userErrors'][0]['code']}"
    return "allowed"


@pytest.mark.parametrize("name", sorted(CASES))
async def test_operation_follows_the_matrix(api: Api, db_engine: AsyncEngine, name: str) -> None:
    # given a merchant with one member of every role
    world = await build_world(api, db_engine)
    case = CASES[name]
    outcomes: dict[str, str] = {}
    expected: dict[str, str] = {}
    # when each role (and an anonymous caller) runs the operation
    for role in [*COLUMNS, None]:
        key = role or "anonymous"
        token = world.tokens[role] if role else None
        outcomes[key] = _outcome(await case.run(world, token, role), case)
        expected[key] = _expected(case, role)
    # then each outcome is the matrix's
    assert outcomes == expected
