"""Done when: over HTTP, an owner issues a secret, copies it, calls the API with
`Authorization: PortOne <secret>`, sees lastUsedAt in the list, deletes it, and the next call
is refused; a developer's attempt to issue is FORBIDDEN."""

from __future__ import annotations

from tests.api_secrets.helpers import (
    DELETE,
    ISSUE,
    STORE_SECRETS,
    assert_refused,
)
from tests.support import Api, invite_and_join

VIEWER_MERCHANT = "{ viewer { merchant { name } } }"


async def test_an_owner_issues_uses_lists_and_deletes_a_secret(api: Api) -> None:
    # given
    owner = await api.sign_up(merchant_name="Seoul Coffee")
    store = owner.representative_store_id
    developer = await invite_and_join(api, owner.token, "DEVELOPER")

    # when: the owner issues a secret and copies it
    issued = await api.gql(
        ISSUE,
        {"input": {"storeId": store, "name": "ERP", "expirationDays": 365}},
        token=owner.token,
    )
    payload = issued.data["apiSecretIssue"]
    assert payload["userErrors"] == []
    secret, secret_id = payload["secret"], payload["apiSecret"]["id"]

    # then: the secret calls the API as the merchant
    used = await api.gql(VIEWER_MERCHANT, authorization=f"PortOne {secret}")
    assert used.status == 200
    assert used.data == {"viewer": {"merchant": {"name": "Seoul Coffee"}}}

    # and: the list shows when it was last used, never the secret
    listing = await api.gql(STORE_SECRETS, {"storeId": store}, token=owner.token)
    [node] = listing.data["store"]["apiSecrets"]["nodes"]
    assert node["name"] == "ERP"
    assert node["lastUsedAt"] is not None
    assert node["isExpired"] is False
    assert secret not in repr(listing.body)

    # when: the owner deletes it
    deleted = await api.gql(DELETE, {"id": secret_id}, token=owner.token)
    assert deleted.data["apiSecretDelete"] == {"deletedApiSecretId": secret_id, "userErrors": []}

    # then: the next call is refused
    refused = await api.gql(VIEWER_MERCHANT, authorization=f"PortOne {secret}")
    assert_refused(refused, "REVOKED", secret)

    # and: a developer may not issue one
    attempt = await api.gql(
        ISSUE, {"input": {"storeId": store, "name": "Mine"}}, token=developer.token
    )
    assert attempt.error_codes == ["FORBIDDEN"]
    assert len(attempt.body["errors"]) == 1
    assert attempt.body.get("data") is None
    after = await api.gql(STORE_SECRETS, {"storeId": store}, token=owner.token)
    assert after.data["store"]["apiSecrets"]["nodes"] == []
