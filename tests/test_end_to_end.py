"""The foundation story over HTTP, as a console user lives it.

Sign up, log in, create two sub-stores, rename one, delete one, list the stores with their
sub-stores and page through them, log out; the old token is then refused.
"""

from __future__ import annotations

from typing import Any

from tests.support import Api

SIGN_UP = """
mutation SignUp($input: MerchantSignUpInput!) {
  merchantSignUp(input: $input) {
    merchant { id name representativeStore { storeId isRepresentative } }
    session { token }
    userErrors { field code }
  }
}
"""

LOG_IN = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    session { token user { email } }
    userErrors { field code }
  }
}
"""

CREATE = """
mutation Create($input: StoreCreateInput!) {
  storeCreate(input: $input) { store { storeId name isRepresentative } userErrors { code } }
}
"""

RENAME = """
mutation Rename($input: StoreUpdateInput!) {
  storeUpdate(input: $input) { store { storeId name } userErrors { code } }
}
"""

DELETE = """
mutation Delete($input: StoreDeleteInput!) {
  storeDelete(input: $input) { deletedStoreId userErrors { code } }
}
"""

STORES = """
query Stores($first: Int, $after: String) {
  viewer { role user { email } }
  merchant {
    name
    stores(first: $first, after: $after) {
      edges {
        cursor
        node {
          storeId
          name
          isRepresentative
          subStores { edges { node { storeId name } } }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

LOG_OUT = "mutation { sessionRevoke { revoked userErrors { code } } }"

EMAIL = "founder@shop.example"
PASSWORD = "a long enough password"


def no_errors(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload
    return payload


async def test_the_foundation_story(api: Api) -> None:
    # given: a merchant signs up
    signed_up = no_errors(
        (
            await api.gql(
                SIGN_UP,
                {
                    "input": {
                        "merchantName": "Corner Shop",
                        "email": EMAIL,
                        "password": PASSWORD,
                        "name": "Founder",
                    }
                },
            )
        ).data["merchantSignUp"]
    )
    representative = signed_up["merchant"]["representativeStore"]
    assert representative["isRepresentative"] is True

    # when: they log in
    logged_in = no_errors(
        (await api.gql(LOG_IN, {"input": {"email": EMAIL, "password": PASSWORD}})).data[
            "sessionCreate"
        ]
    )
    token = logged_in["session"]["token"]
    assert logged_in["session"]["user"]["email"] == EMAIL

    # and: create two sub-stores
    gangnam = no_errors(
        (await api.gql(CREATE, {"input": {"name": "Gangnam"}}, token=token)).data["storeCreate"]
    )["store"]
    seocho = no_errors(
        (await api.gql(CREATE, {"input": {"name": "Seocho"}}, token=token)).data["storeCreate"]
    )["store"]
    assert gangnam["isRepresentative"] is seocho["isRepresentative"] is False

    # and: rename one
    renamed = no_errors(
        (
            await api.gql(
                RENAME,
                {"input": {"storeId": gangnam["storeId"], "name": "Gangnam Station"}},
                token=token,
            )
        ).data["storeUpdate"]
    )["store"]
    assert renamed == {"storeId": gangnam["storeId"], "name": "Gangnam Station"}

    # and: delete the other
    deleted = no_errors(
        (await api.gql(DELETE, {"input": {"storeId": seocho["storeId"]}}, token=token)).data[
            "storeDelete"
        ]
    )
    assert deleted["deletedStoreId"] == seocho["storeId"]

    # then: the stores list the representative store with its one remaining sub-store
    listing = (await api.gql(STORES, token=token)).data
    assert listing["viewer"] == {"role": "OWNER", "user": {"email": EMAIL}}
    assert listing["merchant"]["name"] == "Corner Shop"
    stores = [edge["node"] for edge in listing["merchant"]["stores"]["edges"]]
    assert [(s["storeId"], s["isRepresentative"]) for s in stores] == [
        (representative["storeId"], True),
        (gangnam["storeId"], False),
    ]
    assert stores[0]["subStores"]["edges"] == [
        {"node": {"storeId": gangnam["storeId"], "name": "Gangnam Station"}}
    ]
    assert stores[1]["subStores"]["edges"] == []

    # and: paging one store at a time walks the same list
    seen: list[str] = []
    after = None
    while True:
        page = (await api.gql(STORES, {"first": 1, "after": after}, token=token)).data
        connection = page["merchant"]["stores"]
        assert len(connection["edges"]) == 1
        seen.append(connection["edges"][0]["node"]["storeId"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == [representative["storeId"], gangnam["storeId"]]

    # when: they log out
    logged_out = no_errors((await api.gql(LOG_OUT, token=token)).data["sessionRevoke"])
    assert logged_out["revoked"] is True

    # then: the old token is refused, not treated as anonymous
    refused = await api.gql(STORES, token=token)
    assert refused.status == 401
    assert refused.error_codes == ["UNAUTHENTICATED"]
    assert refused.body["errors"][0]["extensions"]["reason"] == "REVOKED"
    assert token not in str(refused.body)
