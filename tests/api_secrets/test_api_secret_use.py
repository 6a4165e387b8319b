"""`Authorization: PortOne <secret>`: a partner integration acting as its store, or refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.applications import Starlette

from db.types import utcnow
from gql_api.audit.service import failures_worth_an_event
from tests.api_secrets.helpers import (
    DELETE,
    ISSUE,
    LOGIN,
    PREFIX,
    STORE_SECRETS,
    WHO_AM_I,
    Argon2Calls,
    assert_forbidden,
    assert_nothing_echoed,
    assert_refused,
    delete,
    flip_one_character,
    issue,
    listed,
    near_miss,
    portone,
    random_part,
    second_instance,
    set_secret_columns,
)
from tests.api_secrets.test_throttling import client_at
from tests.support import INVITE, Api, GraphQLResponse, create_store, invite_and_join

LOOK_AROUND = """
query LookAround($one: String!, $two: String!) {
  viewer { user { id } role apiSecret { name } merchant { name } }
  merchant { name stores { nodes { storeId isRepresentative } } }
  one: store(storeId: $one) { storeId }
  two: store(storeId: $two) { storeId }
}
"""

NODE = "query Node($id: ID!) { node(id: $id) { id } }"

ROLE_UPDATE = """
mutation RoleUpdate($memberId: ID!) {
  memberRoleUpdate(input: { memberId: $memberId, role: READ_ONLY }) {
    member { id } userErrors { field code }
  }
}
"""

MEMBER_REMOVE = """
mutation Remove($memberId: ID!) {
  memberRemove(input: { memberId: $memberId }) { removedMemberId userErrors { field code } }
}
"""

STORE_DELETE = """
mutation Delete($storeId: String!) {
  storeDelete(input: { storeId: $storeId }) { deletedStoreId userErrors { field code } }
}
"""

FAILED_USE_EVENTS = """
{
  merchant {
    auditEvents(action: "api_secret.failed_use") {
      nodes { action actor storeId targetId summary }
    }
  }
}
"""


def assert_rate_limited(result: GraphQLResponse, *secrets: str) -> None:
    assert result.status == 429, result.body
    assert result.body.get("data") is None
    assert len(result.body["errors"]) == 1
    assert result.body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert_nothing_echoed(result, *secrets)


async def failed_use_events(api: Api, token: str) -> list[dict[str, str]]:
    result = await api.gql(FAILED_USE_EVENTS, token=token)
    events: list[dict[str, str]] = result.data["merchant"]["auditEvents"]["nodes"]
    return events


# --- reach ---------------------------------------------------------------------------------


async def test_a_representative_store_secret_reaches_every_store(api: Api) -> None:
    # given
    owner = await api.sign_up(merchant_name="Seoul Coffee")
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    hongdae, _ = await create_store(api, owner.token, "Hongdae")
    issued = await issue(api, owner.token, owner.representative_store_id, name="ERP")

    # when
    result = await api.gql(
        LOOK_AROUND, {"one": gangnam, "two": hongdae}, authorization=portone(issued.secret)
    )

    # then
    assert result.status == 200
    data = result.data
    assert data["viewer"] == {
        "user": None,
        "role": None,
        "apiSecret": {"name": "ERP"},
        "merchant": {"name": "Seoul Coffee"},
    }
    stores = {s["storeId"] for s in data["merchant"]["stores"]["nodes"]}
    assert stores == {owner.representative_store_id, gangnam, hongdae}
    assert data["one"] == {"storeId": gangnam}
    assert data["two"] == {"storeId": hongdae}


async def test_a_sub_store_secret_reaches_only_that_sub_store(api: Api) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    hongdae, hongdae_node = await create_store(api, owner.token, "Hongdae")
    issued = await issue(api, owner.token, gangnam, name="Gangnam POS")
    other = await issue(api, owner.token, hongdae, name="Hongdae POS")
    auth = portone(issued.secret)

    # when
    result = await api.gql(
        LOOK_AROUND, {"one": gangnam, "two": owner.representative_store_id}, authorization=auth
    )
    elsewhere = await api.gql(LOOK_AROUND, {"one": hongdae, "two": hongdae}, authorization=auth)
    other_store_node = await api.gql(NODE, {"id": hongdae_node}, authorization=auth)
    other_secret_node = await api.gql(NODE, {"id": other.id}, authorization=auth)
    other_secrets = await api.gql(STORE_SECRETS, {"storeId": hongdae}, authorization=auth)

    # then
    data = result.data
    assert data["viewer"]["apiSecret"] == {"name": "Gangnam POS"}
    assert data["merchant"]["stores"]["nodes"] == [{"storeId": gangnam, "isRepresentative": False}]
    assert data["one"] == {"storeId": gangnam}
    assert data["two"] is None
    assert elsewhere.data["one"] is None
    assert other_store_node.data["node"] is None
    assert other_secret_node.data["node"] is None
    assert other_secrets.data["store"] is None


async def test_a_secret_never_manages_secrets_or_members(api: Api) -> None:
    # given
    owner = await api.sign_up()
    member = await invite_and_join(api, owner.token, "DEVELOPER")
    issued = await issue(api, owner.token, owner.representative_store_id)
    auth = portone(issued.secret)
    store = owner.representative_store_id

    # when
    attempts = [
        await api.gql(ISSUE, {"input": {"storeId": store, "name": "More"}}, authorization=auth),
        await api.gql(DELETE, {"id": issued.id}, authorization=auth),
        await api.gql(
            INVITE, {"input": {"email": "x@example.com", "role": "ADMIN"}}, authorization=auth
        ),
        await api.gql(ROLE_UPDATE, {"memberId": member.member_id}, authorization=auth),
        await api.gql(MEMBER_REMOVE, {"memberId": member.member_id}, authorization=auth),
    ]

    # then
    for result in attempts:
        assert_forbidden(result)
        assert_nothing_echoed(result, issued.secret)
    assert [n["name"] for n in await listed(api, owner.token, store)] == ["Partner integration"]
    still = await api.gql(WHO_AM_I, authorization=auth)
    assert still.status == 200


async def test_the_scheme_name_is_case_insensitive(api: Api) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)

    # when
    result = await api.gql(WHO_AM_I, authorization=f"portone {issued.secret}")

    # then
    assert result.status == 200
    assert result.data["viewer"]["merchant"]["name"]


# --- refused -------------------------------------------------------------------------------


async def test_an_expired_secret_is_refused_as_expired(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    store = owner.representative_store_id
    issued = await issue(api, owner.token, store, expiration_days=30)
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
    await set_secret_columns(database_url, issued.pk, expires_at=utcnow() - timedelta(seconds=1))

    # when
    result = await api.gql(WHO_AM_I, authorization=portone(issued.secret))

    # then
    assert_refused(result, "EXPIRED", issued.secret)
    # and: the owner sees it as expired
    [node] = await listed(api, owner.token, store)
    assert node["isExpired"] is True


async def test_a_deleted_secret_is_refused_as_revoked(api: Api) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
    assert (await delete(api, owner.token, issued.id))["userErrors"] == []

    # when
    result = await api.gql(WHO_AM_I, authorization=portone(issued.secret))

    # then
    assert_refused(result, "REVOKED", issued.secret)


async def test_the_secret_of_a_deleted_sub_store_is_refused_as_revoked(api: Api) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    issued = await issue(api, owner.token, gangnam)
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
    gone = await api.gql(STORE_DELETE, {"storeId": gangnam}, token=owner.token)
    assert gone.data["storeDelete"]["userErrors"] == []

    # when
    result = await api.gql(WHO_AM_I, authorization=portone(issued.secret))

    # then
    assert_refused(result, "REVOKED", issued.secret)


@pytest.mark.parametrize(
    "header",
    [
        "Basic {secret}",
        "Token {secret}",
        "PortOne{secret}",
        "PortOne ",
        "PortOne {secret}x",
        "PortOne {truncated}",
        "PortOne {flipped}",
        "PortOne {lower}",
        "PortOne not-a-secret-at-all",
    ],
)
async def test_a_malformed_header_is_refused_before_any_hashing(
    api: Api, argon2_calls: Argon2Calls, header: str
) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    secret = issued.secret
    value = header.format(
        secret=secret,
        truncated=secret[:-1],
        flipped=flip_one_character(secret),
        lower=PREFIX + secret[len(PREFIX) :].swapcase(),
    )
    argon2_calls.clear()

    # when
    result = await api.gql(WHO_AM_I, authorization=value)

    # then
    assert_refused(result, "MALFORMED", secret, flip_one_character(secret))
    credential = value.partition(" ")[2].strip()
    if credential:
        assert credential not in result.body["errors"][0]["message"]
    assert argon2_calls.verify == []


async def test_a_valid_looking_secret_with_an_unknown_key_id_is_refused(api: Api) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    unknown = near_miss(issued.secret, index=len(PREFIX))

    # when
    result = await api.gql(WHO_AM_I, authorization=portone(unknown))

    # then
    assert_refused(result, None, issued.secret, unknown)


async def test_a_near_miss_with_the_right_key_id_is_refused(api: Api) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    wrong = near_miss(issued.secret)

    # when
    result = await api.gql(WHO_AM_I, authorization=portone(wrong))

    # then
    assert_refused(result, None, issued.secret, wrong)
    # and: the right one still works
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200


# --- throttling ----------------------------------------------------------------------------


async def test_ten_failures_rate_limit_the_guesser_but_never_the_right_secret(api: Api) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    bystander = await issue(api, owner.token, owner.representative_store_id, name="Other")
    wrong = near_miss(issued.secret)
    for _ in range(10):
        failed = await api.gql(WHO_AM_I, authorization=portone(wrong))
        assert_refused(failed, None, issued.secret, wrong)

    # when
    guessed = await api.gql(WHO_AM_I, authorization=portone(wrong))
    right = await api.gql(WHO_AM_I, authorization=portone(issued.secret))

    # then: the guesses are refused; the right secret, from the same address, is served
    assert_rate_limited(guessed, issued.secret, wrong)
    assert right.status == 200, right.body
    # and: another key id is not affected
    assert (await api.gql(WHO_AM_I, authorization=portone(bystander.secret))).status == 200


async def test_guessing_through_another_process_locks_out_neither_process(
    api: Api, database_url: str
) -> None:
    # given: the integration has been working in this process
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
    # and: someone who knows its key id guesses ten times through another process
    wrong = near_miss(issued.secret)
    async with second_instance(database_url) as other:
        for _ in range(10):
            assert_refused(await other.gql(WHO_AM_I, authorization=portone(wrong)), None)

        # when the real secret is used in both processes
        here = await api.gql(WHO_AM_I, authorization=portone(issued.secret))
        there = await other.gql(WHO_AM_I, authorization=portone(issued.secret))

    # then both serve it: the one that verified it before, and the one that has to run argon2
    assert here.status == 200
    assert there.status == 200, there.body


async def test_every_five_failures_write_an_audit_event_for_the_owner(api: Api) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id, name="Webshop")
    wrong = near_miss(issued.secret)

    # when / then
    for _ in range(4):
        assert_refused(await api.gql(WHO_AM_I, authorization=portone(wrong)), None)
    assert await failed_use_events(api, owner.token) == []
    assert_refused(await api.gql(WHO_AM_I, authorization=portone(wrong)), None)
    assert len(await failed_use_events(api, owner.token)) == 1
    for _ in range(5):
        assert_refused(await api.gql(WHO_AM_I, authorization=portone(wrong)), None)
    events = await failed_use_events(api, owner.token)
    assert len(events) == 2
    for event in events:
        assert event["action"] == "api_secret.failed_use"
        assert event["targetId"] == issued.id
        assert "Webshop" in event["summary"]
        assert issued.secret not in repr(event)
        assert issued.random_part not in repr(event)
        assert random_part(wrong) not in repr(event)


async def test_a_flood_of_failures_writes_a_few_audit_events_not_one_per_five(
    api: Api, app: Starlette
) -> None:
    """Rotating addresses get past the per-address limit: 80 failures must not bury the
    merchant's audit log under 16 events. They write 5 (at 5, 10, 20, 40 and 80)."""
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id, name="Webshop")
    wrong = near_miss(issued.secret)

    # when: 8 addresses, 10 failures each
    for n in range(8):
        async with client_at(app, f"127.0.1.{n}") as guesser:
            for _ in range(10):
                assert_refused(await guesser.gql(WHO_AM_I, authorization=portone(wrong)), None)

    # then
    events = await failed_use_events(api, owner.token)
    assert len(events) == 5
    assert any("80 failed attempts" in event["summary"] for event in events)


def test_failure_audit_events_are_written_at_doubling_counts() -> None:
    worth = [count for count in range(1, 1000) if failures_worth_an_event(count)]
    assert worth == [5, 10, 20, 40, 80, 160, 320, 640]


async def test_failed_logins_count_towards_the_limit(api: Api) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    wrong = near_miss(issued.secret)
    for _ in range(10):
        failed = await api.gql(LOGIN, {"apiSecret": wrong})
        codes = [e["code"] for e in failed.data["apiSecretLogin"]["userErrors"]]
        assert codes == ["INVALID_CREDENTIALS"]

    # when
    guessed_by_header = await api.gql(WHO_AM_I, authorization=portone(wrong))
    guessed_by_login = await api.gql(LOGIN, {"apiSecret": wrong})
    by_login = await api.gql(LOGIN, {"apiSecret": issued.secret})

    # then: further guesses are rate limited, either way
    assert_rate_limited(guessed_by_header, issued.secret, wrong)
    assert guessed_by_login.error_codes == ["RATE_LIMITED"], guessed_by_login.body
    assert len(guessed_by_login.body["errors"]) == 1
    assert_nothing_echoed(guessed_by_login, issued.secret, wrong)
    # and: the right secret is still exchanged for tokens
    assert by_login.data["apiSecretLogin"]["userErrors"] == []
    assert len(await failed_use_events(api, owner.token)) == 2
