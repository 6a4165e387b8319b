"""Every webhook change and test call is an audit event; none ever contains a secret."""

from __future__ import annotations

import json

from tests.support import Api
from tests.webhooks.helpers import (
    SECRET_EXPIRE,
    SECRET_ISSUE,
    database_text,
    delivered,
    errors_of,
    issue_secret,
    loopback_settings,  # noqa: F401  (the `settings` fixture)
    run_test_call,
    save_setting,
    update_setting,
)
from tests.webhooks.receiver import Receivers

AUDIT = """
query Audit($action: String) {
  merchant {
    auditEvents(first: 50, action: $action) {
      edges { node { id action actor storeId targetId summary occurredAt } }
    }
  }
}
"""


async def test_webhook_actions_are_audited_without_secrets(
    api: Api, receiver_pool: Receivers, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()

    # when
    await save_setting(api, owner.token, store_id, receiver.url)
    kept = await issue_secret(api, owner.token, store_id)
    dropped = await issue_secret(api, owner.token, store_id)
    expired = await api.gql(SECRET_EXPIRE, {"id": dropped.id}, token=owner.token)
    assert expired.data["webhookSecretExpire"]["userErrors"] == []
    delivery = await delivered(api, owner.token, store_id)

    # then
    result = await api.gql(AUDIT, {"action": None}, token=owner.token)
    events = [e["node"] for e in result.data["merchant"]["auditEvents"]["edges"]]
    webhook_events = [e for e in events if e["action"].startswith("webhook")]
    assert sorted(e["action"] for e in webhook_events) == [
        "webhook.test",
        "webhook_secret.expire",
        "webhook_secret.issue",
        "webhook_secret.issue",
        "webhook_setting.update",
    ]
    assert all(e["storeId"] == store_id for e in webhook_events)
    assert all(e["actor"] == owner.email for e in webhook_events)
    by_action = {e["action"]: e for e in webhook_events}
    assert by_action["webhook_secret.expire"]["targetId"] == dropped.id
    assert by_action["webhook.test"]["targetId"] == delivery["id"]
    issued_targets = {
        e["targetId"] for e in webhook_events if e["action"] == "webhook_secret.issue"
    }
    assert issued_targets == {kept.id, dropped.id}
    text = json.dumps(result.body)
    stored = await database_text(database_url)
    for secret in (kept.secret, dropped.secret):
        for haystack in (text, stored):
            assert secret not in haystack
            assert secret.removeprefix("whsec_") not in haystack


async def test_refused_attempts_are_not_audited(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    for _ in range(2):
        await issue_secret(api, owner.token, store_id)
    before = await api.gql(AUDIT, {"action": None}, token=owner.token)

    # when: a refused URL, a third secret, an unknown secret and a call without a URL
    refused_url = await update_setting(api, owner.token, store_id, "http://10.1.2.3/")
    third = await api.gql(
        SECRET_ISSUE, {"input": {"storeId": store_id, "mode": "TEST"}}, token=owner.token
    )
    unknown = await api.gql(SECRET_EXPIRE, {"id": "nope"}, token=owner.token)
    no_url = await run_test_call(api, owner.token, store_id)

    # then
    assert [e[0] for e in errors_of(refused_url)] == ["WEBHOOK_URL_FORBIDDEN"]
    assert [e[0] for e in errors_of(third.data["webhookSecretIssue"])] == ["WEBHOOK_SECRET_LIMIT"]
    assert [e[0] for e in errors_of(unknown.data["webhookSecretExpire"])] == ["NOT_FOUND"]
    assert [e[0] for e in errors_of(no_url.data["webhookTest"])] == ["WEBHOOK_URL_NOT_SET"]
    after = await api.gql(AUDIT, {"action": None}, token=owner.token)
    assert after.data == before.data
