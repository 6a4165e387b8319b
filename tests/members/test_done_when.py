"""Done when: over HTTP, the owner invites a developer and a store manager, each accepts,
and each sees exactly what the permission matrix says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support import ACCEPT, INVITE, Api, GraphQLResponse

STORE_CREATE = """
mutation Create($name: String!) {
  storeCreate(input: { name: $name }) { store { storeId name } userErrors { field code } }
}
"""

LOOK_AROUND = """
{
  viewer { role user { email } }
  merchant {
    stores { nodes { storeId name isRepresentative } }
    members { nodes { role user { email } store { storeId } } }
  }
}
"""

REPRESENTATIVE_STORE = "{ merchant { representativeStore { storeId } } }"

STORE = """
query Store($storeId: String!) {
  store(storeId: $storeId) { storeId name }
}
"""

AUDIT_EVENTS = "{ merchant { auditEvents { nodes { action actor } } } }"

OWNER_EMAIL = "owner@seoul-coffee.example"
DEVELOPER_EMAIL = "developer@seoul-coffee.example"
STORE_MANAGER_EMAIL = "gangnam@seoul-coffee.example"


@dataclass
class Merchant:
    owner_token: str
    representative: str
    gangnam: str
    hongdae: str


async def set_up_the_merchant(api: Api) -> Merchant:
    owner = await api.sign_up(merchant_name="Seoul Coffee", email=OWNER_EMAIL)
    stores = []
    for name in ("Gangnam", "Hongdae"):
        result = await api.gql(STORE_CREATE, {"name": name}, token=owner.token)
        assert result.data["storeCreate"]["userErrors"] == []
        stores.append(result.data["storeCreate"]["store"]["storeId"])
    return Merchant(owner.token, owner.representative_store_id, stores[0], stores[1])


async def invite_and_accept(
    api: Api, owner_token: str, email: str, role: str, store_id: str | None = None
) -> dict[str, Any]:
    invitation: dict[str, Any] = {"email": email, "role": role}
    if store_id is not None:
        invitation["storeId"] = store_id
    invited = (await api.gql(INVITE, {"input": invitation}, token=owner_token)).data["memberInvite"]
    assert invited["userErrors"] == [], invited
    assert invited["invitation"]["role"] == role
    accept = {"token": invited["invitationToken"], "name": role.title(), "password": "a" + email}
    accepted = (await api.gql(ACCEPT, {"input": accept})).data["invitationAccept"]
    assert accepted["userErrors"] == [], accepted
    payload: dict[str, Any] = accepted
    return payload


def stores_of(look: dict[str, Any]) -> list[str]:
    return [store["storeId"] for store in look["merchant"]["stores"]["nodes"]]


def members_of(look: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (m["user"]["email"], m["role"], m["store"]["storeId"] if m["store"] else None)
        for m in look["merchant"]["members"]["nodes"]
    ]


def forbidden(result: GraphQLResponse) -> bool:
    return result.status == 200 and result.error_codes == ["FORBIDDEN"]


async def test_the_owner_invites_a_developer_and_a_store_manager_who_see_what_they_may(
    api: Api,
) -> None:
    # given
    merchant = await set_up_the_merchant(api)
    everything = [merchant.representative, merchant.gangnam, merchant.hongdae]

    # when
    developer = await invite_and_accept(api, merchant.owner_token, DEVELOPER_EMAIL, "DEVELOPER")
    store_manager = await invite_and_accept(
        api, merchant.owner_token, STORE_MANAGER_EMAIL, "STORE_MANAGER", merchant.gangnam
    )

    # then: each joined with the role they were invited with
    assert developer["member"]["role"] == "DEVELOPER"
    assert developer["member"]["store"] is None
    assert store_manager["member"]["role"] == "STORE_MANAGER"
    assert store_manager["member"]["store"] == {"storeId": merchant.gangnam}
    dev_token = developer["session"]["token"]
    manager_token = store_manager["session"]["token"]
    all_members = [
        (OWNER_EMAIL, "OWNER", None),
        (DEVELOPER_EMAIL, "DEVELOPER", None),
        (STORE_MANAGER_EMAIL, "STORE_MANAGER", merchant.gangnam),
    ]

    # then: the owner sees everyone, and the log says who joined
    as_owner = (await api.gql(LOOK_AROUND, token=merchant.owner_token)).data
    assert stores_of(as_owner) == everything
    assert members_of(as_owner) == all_members
    log = (await api.gql(AUDIT_EVENTS, token=merchant.owner_token)).data
    assert log["merchant"]["auditEvents"]["nodes"][:4] == [
        {"action": "invitation.accept", "actor": STORE_MANAGER_EMAIL},
        {"action": "member.invite", "actor": OWNER_EMAIL},
        {"action": "invitation.accept", "actor": DEVELOPER_EMAIL},
        {"action": "member.invite", "actor": OWNER_EMAIL},
    ]

    # then: the developer sees all stores and members, but manages no store and reads no log
    as_developer = (await api.gql(LOOK_AROUND, token=dev_token)).data
    assert as_developer["viewer"] == {"role": "DEVELOPER", "user": {"email": DEVELOPER_EMAIL}}
    assert stores_of(as_developer) == everything
    assert members_of(as_developer) == all_members
    representative = (await api.gql(REPRESENTATIVE_STORE, token=dev_token)).data
    assert representative["merchant"]["representativeStore"]["storeId"] == merchant.representative
    for store_id in everything:
        fetched = (await api.gql(STORE, {"storeId": store_id}, token=dev_token)).data
        assert fetched["store"]["storeId"] == store_id
    assert forbidden(await api.gql(STORE_CREATE, {"name": "Jamsil"}, token=dev_token))
    assert forbidden(await api.gql(AUDIT_EVENTS, token=dev_token))
    invite = {"input": {"email": "someone@example.com", "role": "READ_ONLY"}}
    assert forbidden(await api.gql(INVITE, invite, token=dev_token))

    # then: the store manager sees only its sub-store and its sub-store's members
    as_manager = (await api.gql(LOOK_AROUND, token=manager_token)).data
    assert as_manager["viewer"] == {
        "role": "STORE_MANAGER",
        "user": {"email": STORE_MANAGER_EMAIL},
    }
    assert stores_of(as_manager) == [merchant.gangnam]
    assert members_of(as_manager) == [(STORE_MANAGER_EMAIL, "STORE_MANAGER", merchant.gangnam)]
    own = (await api.gql(STORE, {"storeId": merchant.gangnam}, token=manager_token)).data
    assert own["store"] == {"storeId": merchant.gangnam, "name": "Gangnam"}
    for hidden in (merchant.representative, merchant.hongdae):
        fetched = (await api.gql(STORE, {"storeId": hidden}, token=manager_token)).data
        assert fetched["store"] is None
    representative_result = await api.gql(REPRESENTATIVE_STORE, token=manager_token)
    assert forbidden(representative_result)
    assert representative_result.body["data"]["merchant"] is None
    assert merchant.representative not in str(representative_result.body)
    assert forbidden(await api.gql(STORE_CREATE, {"name": "Jamsil"}, token=manager_token))
    assert forbidden(await api.gql(AUDIT_EVENTS, token=manager_token))

    # then: nothing the two of them tried changed the stores
    after = (await api.gql(LOOK_AROUND, token=merchant.owner_token)).data
    assert stores_of(after) == everything
    assert members_of(after) == all_members
