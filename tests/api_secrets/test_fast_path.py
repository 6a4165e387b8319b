"""argon2 runs in worker threads, once per secret and process; the row is still read on
every request, and lastUsedAt is written at most once a minute."""

from __future__ import annotations

from datetime import datetime, timedelta

from db.types import utcnow
from tests.api_secrets.helpers import (
    LOGIN,
    WHO_AM_I,
    Argon2Calls,
    assert_refused,
    issue,
    listed,
    near_miss,
    portone,
    second_instance,
    set_secret_columns,
)
from tests.support import Api


async def last_used_at(api: Api, token: str, store_id: str) -> str | None:
    [node] = await listed(api, token, store_id)
    value: str | None = node["lastUsedAt"]
    return value


async def test_argon2_verifies_once_for_five_requests_and_never_on_the_event_loop(
    api: Api, argon2_calls: Argon2Calls
) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    argon2_calls.clear()

    # when
    results = [await api.gql(WHO_AM_I, authorization=portone(issued.secret)) for _ in range(5)]

    # then
    assert [r.status for r in results] == [200] * 5
    assert argon2_calls.verify == [False]


async def test_issuing_hashes_in_a_worker_thread(api: Api, argon2_calls: Argon2Calls) -> None:
    # given
    owner = await api.sign_up()
    argon2_calls.clear()

    # when
    await issue(api, owner.token, owner.representative_store_id)

    # then
    assert argon2_calls.hash == [False]


async def test_failed_attempts_verify_off_the_loop_and_are_never_remembered(
    api: Api, database_url: str, argon2_calls: Argon2Calls
) -> None:
    # given: the right secret is remembered; it has no verification tag (issued before they
    # existed), so look-alikes need argon2
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    await set_secret_columns(database_url, issued.pk, verify_tag=None)
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
    await set_secret_columns(database_url, issued.pk, verify_tag=None)
    wrong = near_miss(issued.secret)
    argon2_calls.clear()

    # when: a look-alike with the same key id is tried three times
    for _ in range(3):
        assert_refused(await api.gql(WHO_AM_I, authorization=portone(wrong)), None)

    # then: each try is verified with argon2, off the loop
    assert argon2_calls.verify == [False, False, False]
    # and: the remembered secret still skips argon2, also for the token exchange
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
    login = await api.gql(LOGIN, {"apiSecret": issued.secret})
    assert login.data["apiSecretLogin"]["userErrors"] == []
    assert argon2_calls.verify == [False, False, False]


async def test_each_secret_and_each_process_verifies_on_its_own(
    api: Api, database_url: str, argon2_calls: Argon2Calls
) -> None:
    # given
    owner = await api.sign_up()
    store = owner.representative_store_id
    first = await issue(api, owner.token, store, name="First")
    second = await issue(api, owner.token, store, name="Second")
    argon2_calls.clear()

    # when
    for _ in range(2):
        for secret in (first.secret, second.secret):
            assert (await api.gql(WHO_AM_I, authorization=portone(secret))).status == 200
    async with second_instance(database_url) as other:
        for _ in range(3):
            assert (await other.gql(WHO_AM_I, authorization=portone(first.secret))).status == 200

    # then: one verify per secret here, one in the other process
    assert argon2_calls.verify == [False, False, False]


async def test_a_remembered_secret_still_expires_at_once(
    api: Api, database_url: str, argon2_calls: Argon2Calls
) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id, expiration_days=10)
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
    argon2_calls.clear()

    # when
    await set_secret_columns(database_url, issued.pk, expires_at=utcnow() - timedelta(seconds=1))

    # then
    result = await api.gql(WHO_AM_I, authorization=portone(issued.secret))
    assert_refused(result, "EXPIRED", issued.secret)
    assert argon2_calls.verify == []


async def test_last_used_at_is_written_at_most_once_a_minute(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    store = owner.representative_store_id
    issued = await issue(api, owner.token, store)
    assert await last_used_at(api, owner.token, store) is None

    # when: two uses in a row
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
    first = await last_used_at(api, owner.token, store)
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
    second = await last_used_at(api, owner.token, store)

    # then: set by the first, unchanged by the second
    assert first is not None
    assert second == first

    # when: the last use was two minutes ago
    backdated = datetime.fromisoformat(first) - timedelta(minutes=2)
    await set_secret_columns(database_url, issued.pk, last_used_at=backdated)
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200

    # then: it moves
    moved = await last_used_at(api, owner.token, store)
    assert moved is not None
    assert datetime.fromisoformat(moved) > backdated
    assert datetime.fromisoformat(moved) >= datetime.fromisoformat(first)
